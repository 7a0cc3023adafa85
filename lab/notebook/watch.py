"""Counters over time: sample a VM's counters while something runs, and plot them; and
the thesis-style packets-per-second figures (rate per frame size, one line per setup)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from lab.lana.procfs import ppe_total
from lab.notebook.nodes import VmNode
from lab.notebook.show import show

ENGINE = "(engine)"  # the packet processing engine's total, next to the counters


def watch_counters(node: VmNode, seconds: float = 5.0, interval: float = 0.5,
                   during: Callable[[], object] | None = None) -> pd.DataFrame:
    """Sample every counter (and the engine's total) of `node` for `seconds`; `during`,
    if given, runs in the background from the first sample on (e.g. traffic from a host)
    and the sampling goes on until it has finished too.
    -> one row per sample and block: time (s), block, packets, bytes, pps."""
    rows: list[dict[str, object]] = []
    errors: list[BaseException] = []
    worker = None
    start = time.monotonic()

    def sample() -> None:
        snap = node.snapshot()
        t = snap.taken - start
        for c in snap.counters.values():
            rows.append({"time": t, "block": c.name, "packets": c.packets, "bytes": c.bytes})
        if snap.ppe:
            total = ppe_total(snap.ppe)
            rows.append({"time": t, "block": ENGINE, "packets": total.packets,
                         "bytes": total.bytes})

    sample()
    if during is not None:
        def run() -> None:
            try:
                during()
            except BaseException as exc:  # reported in the caller's thread below
                errors.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
    deadline = start + seconds
    while time.monotonic() < deadline or (worker is not None and worker.is_alive()):
        time.sleep(max(0.0, interval - (time.monotonic() - start) % interval))
        sample()
    if worker is not None:
        worker.join()
    if errors:
        raise errors[0]
    return with_rates(pd.DataFrame(rows, columns=["time", "block", "packets", "bytes"]))


def with_rates(samples: pd.DataFrame) -> pd.DataFrame:
    """Add pps: packets per second since the block's previous sample (0 for the first)."""
    out = samples.sort_values(["block", "time"]).copy()
    dt = out.groupby("block")["time"].diff()
    dp = out.groupby("block")["packets"].diff()
    out["pps"] = (dp / dt).fillna(0.0)
    return out.sort_values(["time", "block"]).reset_index(drop=True)


def counters_figure(samples: pd.DataFrame, title: str = "LANA counters over time") -> Figure:
    fig, (total, rate) = plt.subplots(1, 2, figsize=(11, 3.6))
    for block, data in samples.groupby("block", sort=False):
        style = "--" if block == ENGINE else "-"
        total.plot(data["time"], data["packets"] - data["packets"].iloc[0], style,
                   marker=".", label=str(block))
        rate.plot(data["time"], data["pps"], style, marker=".", label=str(block))
    total.set(xlabel="time (s)", ylabel="packets since the first sample", title="packets")
    rate.set(xlabel="time (s)", ylabel="packets per second", title="rate")
    for ax in (total, rate):
        ax.grid(alpha=0.3)
    total.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_counters(samples: pd.DataFrame, title: str = "LANA counters over time") -> \
        Figure | None:
    """Packets (since the first sample) and packet rate over time, one line per block."""
    return show(counters_figure(samples, title))


def pps_figure(results: pd.DataFrame, x: str = "size", series: str = "setup",
               y: str = "pps", title: str = "Packets per second",
               xlabel: str = "packet size (bytes)") -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, data in results.groupby(series, sort=False):
        data = data.sort_values(x)
        ax.plot(data[x], data[y], marker="o", label=str(name))
    ax.set(xlabel=xlabel, ylabel="packets per second", title=title)
    if x == "size":
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(results[x].unique()), [str(v) for v in
                                                    sorted(results[x].unique())])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pps(results: pd.DataFrame, **kwargs: str) -> Figure | None:
    """The thesis's figure style (6.2, 6.3): rate per packet size, one line per setup
    (e.g. "Linux", "LANA, 1 FB", "LANA, 5 FBs"). results: columns setup, size, pps."""
    return show(pps_figure(results, **kwargs))
