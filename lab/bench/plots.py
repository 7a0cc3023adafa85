"""Figures in the style of the thesis's 6.2 (1-10 FBs), 6.3 (10-50 FBs) and 6.4 (socket
receivers): packets per second over the frame size, one line per configuration; plus the
chain plot (pps and ns per packet over the chain length, with the fitted slope).
Drawn from results.json alone, so old runs can be re-plotted."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from lab.bench.beside import seed_ratio


def matplotlib_missing() -> str | None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ("matplotlib is not installed: no plots (pip install 'lanalab[bench]' or "
                ".venv/bin/pip install matplotlib); results.json and summary.md are written")
    return None


def _series(points: list[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """label without size -> {size: median pps}"""
    series: dict[str, dict[int, float]] = defaultdict(dict)
    for p in points:
        if p.get("median_pps"):
            series[p["label"].split("@")[0]][p["size"]] = p["median_pps"]
    return series


def _name(key: str) -> str:
    if key.startswith("lana") and key[4:].isdigit():
        n = int(key[4:])
        return f"LANA, {n} FB" + ("s" if n > 1 else "")
    return {"linux": "Linux", "sender": "sender only (pktgen)", "pf_packet": "PF_PACKET",
            "pf_lana": "PF_LANA", "xdp_generic_drop": "XDP_DROP (generic)",
            "tc_drop": "tc drop (cls_bpf)", "xdp_parse_drop": "XDP parse + drop",
            "udp_recvfrom": "UDP recvfrom", "udp_recvmmsg": "UDP recvmmsg (64)",
            "tpacket_v3": "TPACKET_V3 ring", "af_xdp": "AF_XDP (copy)",
            "lana_bpf": "LANA bpf block (cBPF)", "cbpf_socket": "cBPF socket filter",
            "cbpf_xdp": "cBPF filter as XDP"}.get(key, key)


def _size_figure(series: dict[str, dict[int, float]], keys: list[str], title: str,
                 path: Path, subtitle: str) -> Path | None:
    import matplotlib.pyplot as plt

    keys = [k for k in keys if k in series]
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for key in keys:
        sizes = sorted(series[key])
        linux = key == "linux"  # the reference line, bold and black as in the thesis
        ax.plot(sizes, [series[key][s] / 1e3 for s in sizes], marker="o", markersize=4,
                label=_name(key), linewidth=2.4 if linux else 1.5,
                color="black" if linux else None)
    ax.set_xlabel("Packet size [Byte]")
    ax.set_ylabel("Packets per second [kpps]")
    ax.set_title(f"{title}\n{subtitle}", fontsize=10)
    ax.grid(True, linestyle=":")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _chain_figure(points: list[dict[str, Any]], slope: dict[str, Any] | None,
                  path: Path, subtitle: str) -> Path | None:
    import matplotlib.pyplot as plt

    lana = sorted((p["blocks"], p["median_pps"]) for p in points
                  if p["mode"] == "lana" and p["size"] == 64 and p.get("median_pps"))
    linux = next((p["median_pps"] for p in points if p["label"] == "linux@64"), None)
    if len(lana) < 2:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    xs = [b for b, _ in lana]
    left.plot(xs, [v / 1e3 for _, v in lana], marker="o", label="LANA, N FBs")
    if linux:
        left.axhline(linux / 1e3, color="black", linewidth=2, label="Linux")
    left.set_xlabel("Chained fwd blocks N")
    left.set_ylabel("Packets per second [kpps], 64 Byte")
    left.set_ylim(bottom=0)
    left.grid(True, linestyle=":")
    left.legend(fontsize=8)
    right.plot(xs, [1e6 / v for _, v in lana], marker="o", label="measured (median)")
    fitted = (slope or {}).get("fit_of_medians_ns_per_block", (slope or {}).get("ns_per_block"))
    if slope and fitted is not None and slope.get("intercept_ns") is not None:
        fit = [(slope["intercept_ns"] + fitted * x) / 1e3 for x in xs]
        right.plot(xs, fit, linestyle="--", label=f"fit of medians: {fitted:.0f} ns/block "
                   f"(median of rounds: {slope['ns_per_block']:.0f})")
    if linux:
        right.axhline(1e6 / linux, color="black", linewidth=2, label="Linux")
    right.set_xlabel("Chained fwd blocks N")
    right.set_ylabel("Time per packet [µs] (source + receive)")
    right.set_ylim(bottom=0)
    right.grid(True, linestyle=":")
    right.legend(fontsize=8)
    fig.suptitle(f"LANA chain scaling, 64 Byte frames\n{subtitle}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ratio_figure(points: list[dict[str, Any]], path: Path, subtitle: str) -> Path | None:
    """Side-by-side ratios (same round) over the frame size: the figure that holds on a
    noisy machine, unlike absolute pps."""
    import matplotlib.pyplot as plt

    series: dict[int, dict[int, float]] = defaultdict(dict)
    for p in points:
        if p["mode"] == "lana" and p.get("ratio_to_linux"):
            series[p["blocks"]][p["size"]] = p["ratio_to_linux"]
    series = {n: s for n, s in series.items() if len(s) >= 2}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.axhline(1.0, color="black", linewidth=2, label="Linux = 1")
    ax.axhline(0.95, color="grey", linestyle="--", linewidth=1, label="target for 1 FB: 0.95")
    for n in sorted(series):
        sizes = sorted(series[n])
        ax.plot(sizes, [series[n][s] for s in sizes], marker="o",
                label=f"LANA, {n} FB{'s' if n > 1 else ''}")
    ax.set_xlabel("Packet size [Byte]")
    ax.set_ylabel("pps relative to Linux (same round)")
    ax.set_ylim(0, 1.2)
    ax.grid(True, linestyle=":")
    ax.set_title(f"LANA / Linux receive-and-drop rate\n{subtitle}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bars(ax: Any, rows: list[dict[str, Any]], value: str, scale: float = 1.0,
          note: str | None = None) -> None:
    """One group of bars per frame size, one bar per path (label prefix), `note` above."""
    sizes = sorted({r["size"] for r in rows})
    keys = list(dict.fromkeys(r["label"].split("@")[0] for r in rows))
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        values = {r["size"]: r for r in rows if r["label"].split("@")[0] == key}
        here = [s for s in sizes if s in values]
        bars = ax.bar([sizes.index(s) + i * width for s in here],
                      [values[s][value] / scale for s in here], width, label=_name(key),
                      color="black" if key == "linux" else None)
        for bar, size in zip(bars, here, strict=True):
            shown = values[size].get(note) if note else None
            if shown is not None:
                ax.annotate(f"{shown:.2f}", (bar.get_x() + bar.get_width() / 2,
                                             bar.get_height()), ha="center", va="bottom",
                            fontsize=7)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(sizes))])
    ax.set_xticklabels([f"{s} B" for s in sizes])
    ax.grid(True, axis="y", linestyle=":")


def _beside_figure(beside: dict[str, Any] | None, receivers: dict[str, Any] | None,
                   path: Path, subtitle: str) -> Path | None:
    """Bars: pps of Linux, LANA 1 FB and the eBPF paths, one group per frame size; beside
    them (when measured) the userspace receivers, and their ratio to the simple UDP socket
    next to seed 003's."""
    import matplotlib.pyplot as plt

    rows = [r for r in (beside or {}).get("rows", []) if r.get("median_pps")]
    recv = [r for r in (receivers or {}).get("rows", []) if r.get("median_pps")]
    if not rows and not recv:
        return None
    panels = [x for x in ("drop" if rows else "", "recv" if recv else "",
                          "seed" if recv else "") if x]
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 4.8),
                             squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "drop":
            _bars(ax, rows, "median_pps", 1e3, "ratio_to_linux")
            ax.set_ylabel("Packets per second [kpps] (label: ratio to Linux)")
            ax.set_title("Receive and drop on vb", fontsize=10)
            ax.legend(fontsize=8, loc="lower right")
        elif panel == "recv":
            _bars(ax, recv, "median_pps", 1e3, "ratio_to_udp_recvfrom")
            ax.set_ylabel("Frames a program got per second [kpps]")
            ax.set_title("Userspace receivers on vb (label: ratio to UDP recvfrom)",
                         fontsize=10)
            ax.legend(fontsize=8, loc="upper left")
        else:
            ours = [r for r in recv if r.get("ratio_to_udp_recvfrom") is not None]
            keys = list(dict.fromkeys(r["mode"] for r in ours))
            seed = {r["mode"]: seed_ratio(r["mode"]) for r in ours}
            xs = range(len(keys))
            sizes = sorted({r["size"] for r in ours})
            width = 0.8 / (len(sizes) + 1)
            for j, size in enumerate(sizes):
                by_mode = {r["mode"]: r["ratio_to_udp_recvfrom"] for r in ours
                           if r["size"] == size}
                ax.bar([x + j * width for x in xs], [by_mode.get(k, 0) for k in keys],
                       width, label=f"this lab, {size} B")
            ax.bar([x + len(sizes) * width for x in xs], [seed[k] or 0 for k in keys],
                   width, color="grey", hatch="//", label="seed 003, 200 B (its hardware)")
            ax.set_xticks([x + len(sizes) * width / 2 for x in xs])
            ax.set_xticklabels([_name(k) for k in keys], fontsize=7, rotation=15)
            ax.axhline(1.0, color="black", linewidth=1)
            ax.set_ylabel("pps relative to the simple UDP socket")
            ax.set_title("Ratio to recvfrom: this lab beside seed 003", fontsize=10)
            ax.grid(True, axis="y", linestyle=":")
            ax.legend(fontsize=8)
    fig.suptitle(f"Where each programmable path stands\n{subtitle}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _engines_figure(engines: dict[str, Any] | None, path: Path,
                    subtitle: str) -> Path | None:
    """Thesis fig. 6.12 with our numbers: one bar pair per engine model (slowest model of
    the thesis first), 1 FB pps relative to Linux here and in the thesis (the absolute
    rates are of different machines); beside it, the per-block cost of each engine."""
    import matplotlib.pyplot as plt

    rows = (engines or {}).get("rows", [])
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (r["thesis_pps"], r["engine"] == "softirq"))
    names = [f"{r['engine']}\n({r['thesis_model']})" for r in rows]
    xs = range(len(rows))
    ours = [next((c["ratio_to_linux"] or 0 for c in r["chain"] if c["blocks"] == 1), 0)
            for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8),
                                      gridspec_kw={"width_ratios": [3, 2]})
    width = 0.38
    bars = left.bar([x - width / 2 for x in xs], ours, width, label="this lab, 1 FB")
    thesis = left.bar([x + width / 2 for x in xs], [r["thesis_ratio_to_linux"] for r in rows],
                      width, color="grey", hatch="//", label="thesis (Q6600, e1000e)")
    for bar, r in zip(bars, rows, strict=True):
        pps = next((c["median_pps"] for c in r["chain"] if c["blocks"] == 1), None)
        if pps:
            left.annotate(f"{pps / 1e3:.0f}k", (bar.get_x() + bar.get_width() / 2,
                                                 bar.get_height()), ha="center",
                          va="bottom", fontsize=7)
    for bar, r in zip(thesis, rows, strict=True):
        left.annotate(f"{r['thesis_pps'] / 1e3:.0f}k", (bar.get_x() + bar.get_width() / 2,
                                                         bar.get_height()), ha="center",
                      va="bottom", fontsize=7)
    left.axhline(1.0, color="black", linewidth=2, label="Linux = 1")
    left.set_xticks(list(xs))
    left.set_xticklabels(names, fontsize=7)
    left.set_ylabel("64 Byte pps relative to Linux (label: pps)")
    left.set_title("LANA's road to Linux's rate (cf. thesis fig. 6.12)", fontsize=10)
    left.grid(True, axis="y", linestyle=":")
    left.legend(fontsize=8, loc="upper left")
    costs = [r["ns_per_block"] or 0 for r in rows]
    right.bar(list(xs), costs, 0.6, color=[bar.get_facecolor() for bar in bars])
    for x, cost in zip(xs, costs, strict=True):
        right.annotate(f"{cost:.0f}", (x, cost), ha="center", va="bottom", fontsize=7)
    right.set_xticks(list(xs))
    right.set_xticklabels([r["engine"] for r in rows], fontsize=7, rotation=15)
    right.set_ylabel("cost per fwd block per packet [ns]\n(instructions on the instruction "
                     "clock)")
    right.set_title("Per-block cost (slope over 1/10/50 FBs)", fontsize=10)
    right.grid(True, axis="y", linestyle=":")
    fig.suptitle(f"Engine models of thesis 6.5\n{subtitle}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(results: dict[str, Any], out: Path) -> list[Path]:
    """Write the figures into out/ and return their paths (none without matplotlib)."""
    if matplotlib_missing():
        return []
    import matplotlib

    matplotlib.use("Agg")
    points = results["points"]
    series = _series(points)
    env = results["environment"]
    clock = env.get("guest", {}).get("clock", "real")
    timing = "instruction clock: 1 ns = 1 instruction, " if clock == "instructions" else ""
    subtitle = (f"{env.get('accel', '?')}, {timing}guest "
                f"{env.get('guest', {}).get('kernel', '?')}, "
                f"{results['plan']['name']} run {results['started']}")
    lana_keys = sorted((k for k in series if k.startswith("lana") and k[4:].isdigit()),
                       key=lambda k: int(k[4:]))
    short = [k for k in lana_keys if int(k[4:]) <= 10]
    long = [k for k in lana_keys if int(k[4:]) >= 10]
    made = [
        _size_figure(series, ["linux", *short], "Linux versus LANA, 1-10 FBs (cf. thesis "
                     "fig. 6.2)", out / "fig6.2-linux-vs-lana-1-10.png", subtitle),
        _size_figure(series, ["linux", *long], "Linux versus LANA, 10-50 FBs (cf. thesis "
                     "fig. 6.3)", out / "fig6.3-linux-vs-lana-10-50.png", subtitle),
        _size_figure(series, ["linux", "lana1", "pf_packet", "pf_lana", "udp_recvfrom",
                              "udp_recvmmsg", "tpacket_v3", "af_xdp"],
                     "Userspace socket receiver: PF_LANA versus PF_PACKET (cf. thesis "
                     "fig. 6.4)", out / "fig6.4-pf-lana-vs-pf-packet.png", subtitle)
        if "pf_packet" in series or "pf_lana" in series else None,
        _chain_figure(points, results.get("chain_slope"), out / "chain-slope-64B.png",
                      subtitle),
        _ratio_figure(points, out / "ratio-to-linux.png", subtitle),
        _beside_figure(results.get("beside_ebpf"), results.get("beside_receivers"),
                       out / "lana-beside-ebpf.png", subtitle),
        _engines_figure(results.get("engines"), out / "fig6.12-engine-models.png", subtitle),
    ]
    return [p for p in made if p is not None]
