"""Exercise 6 from a notebook: run the exercise's measure.sh in a VM on the chain chain.sh
built, as a table, and the thesis-style figures (packets per second over the chain
length with Linux for comparison, figure 6.2; time per packet with its slope)."""

from __future__ import annotations

import re
import shlex
import statistics
from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from lab.bench.stats import fit_line
from lab.grading.exercise import find_exercise
from lab.notebook.nodes import VmNode
from lab.notebook.show import show

GUEST_TOOL = "/tmp/measure-lana.sh"


def measure_chain(vm: VmNode, lengths: Sequence[int], rounds: int = 8,
                  seconds: float = 0.5) -> pd.DataFrame:
    """Linux and LANA chains of the given lengths, `rounds` rounds of `seconds` per point
    (needs what chain.sh builds: va/vb, fwd1..fwdN, sink).
    -> one row per round and point: round, point ("linux", "lana3"), blocks (0 for Linux),
    pps."""
    tool = find_exercise("06-measure-lana").path / "tools" / "measure.sh"
    vm.put_file(GUEST_TOOL, tool.read_bytes())
    points = shlex.quote(" ".join(str(n) for n in lengths))
    # a guest second of the instruction clock takes 2-4 s of wall time on a free core and
    # ten or more on a loaded machine: the timeout is there to catch a hang
    out = vm.sh(f"bash {GUEST_TOOL} {int(rounds)} {seconds:g} {points}",
                timeout=120 + rounds * (len(lengths) + 1) * (20 * seconds + 3))
    rows = [{"round": int(m[1]), "point": m[2],
             "blocks": 0 if m[2] == "linux" else int(m[2][4:]), "pps": float(m[3])}
            for m in re.finditer(r"^point (\d+) (\w+) (\d+)$", out, re.M)]
    return pd.DataFrame(rows, columns=["round", "point", "blocks", "pps"])


def medians(results: pd.DataFrame) -> pd.Series:
    """Median pps per point ("linux", "lana1", ...), as measure.sh prints them."""
    return results.groupby("point", sort=False)["pps"].median()


def report_figures(results: pd.DataFrame, n: int) -> dict[str, float]:
    """The figures of report.toml, from the medians of a measurement that has the points
    linux, lana1 and lana<n>."""
    med = medians(results)
    linux, one, full = med["linux"], med["lana1"], med[f"lana{n}"]
    return {"blocks": n, "linux_pps": round(linux), "lana1_pps": round(one),
            "lanaN_pps": round(full), "lana1_vs_linux": round(one / linux, 2),
            "lanaN_vs_lana1": round(full / one, 2),
            "ns_per_block": round((1e9 / full - 1e9 / one) / (n - 1), 1)}


def report_toml(figures: dict[str, float]) -> str:
    # .10g, not g: g keeps 6 digits, and 1234567 pps would come out as 1.23457e+06
    return "".join(f"{key} = {value:.10g}\n" for key, value in figures.items())


def chain_figure(results: pd.DataFrame, title: str = "Linux versus LANA, 64-byte frames") \
        -> Figure:
    """Left: pps over the chain length, every round as a dot, the medians as a line, Linux
    as a dashed line with its range. Right: ns per packet (1e9 / median pps) over the
    chain length with a least-squares line: its slope is the cost of one block."""
    fig, (rate, cost) = plt.subplots(1, 2, figsize=(11, 4))
    lana = results[results["blocks"] > 0]
    linux = results[results["blocks"] == 0]["pps"]
    med = lana.groupby("blocks")["pps"].median()
    if len(linux):
        rate.axhline(statistics.median(linux), color="black", ls="--", label="Linux (median)")
        rate.axhspan(linux.min(), linux.max(), color="black", alpha=0.08,
                     label="Linux (range over rounds)")
    rate.scatter(lana["blocks"], lana["pps"], s=10, alpha=0.35, label="LANA, one round")
    rate.plot(med.index, med.values, marker="o", label="LANA (median)")
    rate.set(xlabel="fwd blocks in the chain", ylabel="packets per second",
             title="rate", ylim=(0, None))
    ns = 1e9 / med
    cost.plot(ns.index, ns.values, marker="o", label="LANA (1e9 / median pps)")
    if len(ns) >= 2:
        fit = fit_line([float(b) for b in ns.index], list(ns.values))
        xs = [float(min(ns.index)), float(max(ns.index))]
        cost.plot(xs, [fit.slope * x + fit.intercept for x in xs], ls=":",
                  label=f"fit: {fit.slope:.0f} ns per block (r² {fit.r2:.2f})")
    if len(linux):
        cost.axhline(1e9 / statistics.median(linux), color="black", ls="--",
                     label="Linux (1e9 / median pps)")
    cost.set(xlabel="fwd blocks in the chain", ylabel="ns per packet",
             title="time per packet", ylim=(0, None))
    for ax in (rate, cost):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_chain(results: pd.DataFrame, **kwargs: str) -> Figure | None:
    return show(chain_figure(results, **kwargs))
