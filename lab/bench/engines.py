"""`lanalab bench --engines`: the engine models of thesis 6.5 side by side (fig. 6.12).

Each engine (kernel/core/engine_*.c) runs the same chains of 1, 10 and 50 fwd blocks in
the same rounds as Linux; per engine: pps, the ratio to Linux and to 1 FB (same round),
and the per-block cost per packet (median over rounds of the slope of ns per packet over
the chain length). Next to them, the figures the thesis's text gives for its models.
"""

from __future__ import annotations

import math
from typing import Any

from lab.bench.plan import ENGINES
from lab.bench.stats import (
    Sample,
    chain_slopes_per_round,
    median,
    ns_per_packet,
    side_by_side_ratio,
)

# thesis 6.5 (64-byte frames, Core 2 Q6600, e1000e): the name in its fig. 6.12 and the
# rate its text gives. hrtimer: "did not really improve" on kthr cs (no figure of its own)
THESIS_MODELS = {
    "kthread-hp": ("kthr hp", 700_000.0, "about 700,000 pps"),
    "kthread-np": ("kthr np", 750_000.0, "about 750,000 pps"),
    "kthread-cs": ("kthr cs", 900_000.0, "about 900,000 pps"),
    "hrtimer": ("kthr ksirq-hrt", 900_000.0, "no gain over kthr cs (about 900,000 pps)"),
    "softirq": ("kthr ksirq-nrx", 1_400_000.0, "about 1.4 Mpps (1.3-1.4)"),
}
THESIS_LINUX_PPS = 1_380_000.0


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) or math.isinf(x) else round(x, 4)


def engine_label(engine: str, blocks: int, size: int = 64) -> str:
    return f"{engine}:lana{blocks}@{size}"


def engines_summary(samples: list[Sample]) -> dict[str, Any] | None:
    """Per engine: its chain points, ratios and per-block cost; the ordering by 1-FB pps
    beside the thesis's; None when the run measured no engine."""
    engine_samples = [s for s in samples if s.mode == "engine"]
    if not engine_samples:
        return None
    rows = []
    for engine in ENGINES:
        mine = [s for s in engine_samples if s.label.startswith(f"{engine}:")]
        if not mine:
            continue
        chain = []
        for blocks in sorted({s.blocks for s in mine}):
            label = engine_label(engine, blocks)
            pps = median(s.pps for s in mine if s.label == label)
            chain.append({
                "blocks": blocks, "median_pps": _finite(pps),
                "ns_per_packet": _finite(ns_per_packet(pps)),
                "ratio_to_linux": _finite(side_by_side_ratio(samples, label, "linux@64")),
                "ratio_to_lana1": _finite(side_by_side_ratio(
                    samples, label, engine_label(engine, 1))),
                # the chain's end drops every frame it ran; more drops than that were
                # frames refused at a full queue (window edges blur it by a queue's worth)
                "queue_drops": _finite(median(max(0, s.lana_dropped - s.packets)
                                              for s in mine if s.label == label)),
            })
        fits = chain_slopes_per_round(mine, 64, mode="engine")
        model, thesis_pps, thesis_text = THESIS_MODELS[engine]
        one = engine_label(engine, 1)
        rows.append({
            "engine": engine, "thesis_model": model, "thesis_pps": thesis_pps,
            "thesis_text": thesis_text, "thesis_ratio_to_linux": round(
                thesis_pps / THESIS_LINUX_PPS, 4),
            "chain": chain,
            "ns_per_block": _finite(median(f.slope for f in fits)) if fits else None,
            "intercept_ns": _finite(median(f.intercept for f in fits)) if fits else None,
            "ratio_to_softirq": _finite(side_by_side_ratio(
                samples, one, engine_label("softirq", 1))),
        })
    if not rows:
        return None

    def pps1(row: dict[str, Any]) -> float:
        return next((c["median_pps"] or 0.0 for c in row["chain"] if c["blocks"] == 1), 0.0)

    ours = [r["engine"] for r in sorted(rows, key=pps1)]
    thesis = [r["engine"] for r in sorted(rows, key=lambda r: (r["thesis_pps"],
                                                                ENGINES.index(r["engine"])))]
    linux = median(s.pps for s in samples if s.label == "linux@64")
    return {"rows": rows, "linux_pps": _finite(linux), "thesis_linux_pps": THESIS_LINUX_PPS,
            "order_slowest_first": ours, "thesis_order_slowest_first": thesis,
            "order_matches_thesis": ours == thesis,
            "note": "pps of 1 FB decide the order; ratios are taken inside a round; the "
                    "thesis gives no figure for hrtimer (no gain over kthr cs): it is "
                    "placed just after kthr cs"}


def _k(pps: float | None) -> str:
    return "-" if pps is None else f"{pps / 1e3:.1f} k"


def _r(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def render_engines(summary: dict[str, Any] | None, counts_instructions: bool) -> list[str]:
    """summary.md's section: one row per engine, the thesis beside it."""
    if not summary:
        return []
    unit = "instructions" if counts_instructions else "ns"
    lines = ["", "## Engine models (thesis 6.5, fig. 6.12), 64 B", "",
             f"Linux: {_k(summary['linux_pps'])} pps here, thesis 1.38 Mpps.", "",
             f"| engine (thesis model) | 1 FB pps | 10 FB pps | 50 FB pps | 1 FB / Linux | "
             f"10 / 1 FB | per block ({unit}) | 1 FB / softirq | thesis pps | thesis / "
             "Linux |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in summary["rows"]:
        by_n = {c["blocks"]: c for c in row["chain"]}
        one, ten, fifty = (by_n.get(n, {}) for n in (1, 10, 50))
        cost = "-" if row["ns_per_block"] is None else f"{row['ns_per_block']:.0f}"
        lines.append(
            f"| {row['engine']} ({row['thesis_model']}) | {_k(one.get('median_pps'))} | "
            f"{_k(ten.get('median_pps'))} | {_k(fifty.get('median_pps'))} | "
            f"{_r(one.get('ratio_to_linux'))} | {_r(ten.get('ratio_to_lana1'))} | {cost} | "
            f"{_r(row['ratio_to_softirq'])} | {row['thesis_text']} | "
            f"{_r(row['thesis_ratio_to_linux'])} |")
    same = "matches" if summary["order_matches_thesis"] else "differs from"
    lines += ["", f"Order here, slowest first: {' < '.join(summary['order_slowest_first'])}; "
              f"thesis: {' < '.join(summary['thesis_order_slowest_first'])} (this run "
              f"{same} the thesis's order; docs/benchmarks.md says why)."]
    return lines
