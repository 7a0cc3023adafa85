"""`lanalab bench --batch`: the engine's batch path (lana.batch=1, docs/design/batching.md)
beside the per-packet path (batch=0) with chains of 1, 10 and 50 fwd blocks, beside Linux,
in the same rounds. Per path: pps, 1 FB / Linux, 10 / 1 FB, 50 FB / Linux (ratios taken
inside a round, then the median), and the per-block cost per packet (median over rounds of
the slope of ns per packet over the chain length) with its 0-block intercept; beside them
issue 19's goals.
"""

from __future__ import annotations

import math
from typing import Any

from lab.bench.plan import BATCH_BLOCKS
from lab.bench.stats import (
    Sample,
    chain_slopes_per_round,
    median,
    ns_per_packet,
    side_by_side_ratio,
)

# issue 19: with batching 10 / 1 FB >= 0.90 and 50 FB / Linux >= 0.6; 1 FB / Linux >= 0.95
GOALS = (("10 / 1 FB", "ten_over_one", 0.90), ("50 FB / Linux", "fifty_over_linux", 0.6),
         ("1 FB / Linux", "one_over_linux", 0.95))
LINUX = "linux@64"


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) or math.isinf(x) else round(x, 4)


def batch_label(batch: int, blocks: int) -> str:
    """The point of a chain of `blocks` with lana.batch=`batch` (batch=0: the lana point)."""
    return f"batch:lana{blocks}@64" if batch else f"lana{blocks}@64"


def _path(samples: list[Sample], batch: int) -> dict[str, Any] | None:
    mode = "batch" if batch else "lana"
    mine = [s for s in samples if s.mode == mode and s.size == 64
            and s.blocks in BATCH_BLOCKS]
    if not mine:
        return None
    chain = []
    for blocks in sorted({s.blocks for s in mine}):
        label = batch_label(batch, blocks)
        pps = median(s.pps for s in mine if s.label == label)
        chain.append({"blocks": blocks, "median_pps": _finite(pps),
                      "ns_per_packet": _finite(ns_per_packet(pps)),
                      "ratio_to_linux": _finite(side_by_side_ratio(samples, label, LINUX))})
    fits = chain_slopes_per_round(mine, 64, mode=mode)
    one, ten, fifty = (batch_label(batch, n) for n in (1, 10, 50))
    return {
        "batch": batch, "chain": chain,
        "ten_over_one": _finite(side_by_side_ratio(samples, ten, one)),
        "fifty_over_linux": _finite(side_by_side_ratio(samples, fifty, LINUX)),
        "one_over_linux": _finite(side_by_side_ratio(samples, one, LINUX)),
        "ns_per_block": _finite(median(f.slope for f in fits)) if fits else None,
        "per_round_ns_per_block": [_finite(f.slope) for f in fits],
        "intercept_ns": _finite(median(f.intercept for f in fits)) if fits else None,
    }


def batch_summary(samples: list[Sample]) -> dict[str, Any] | None:
    """Both paths (batch=0 from the lana points, batch=1 from the batch points) and what
    batching changes; None when the run measured no batch point."""
    if not any(s.mode == "batch" for s in samples):
        return None
    rows = [r for r in (_path(samples, 0), _path(samples, 1)) if r is not None]
    goals = []
    batched = next((r for r in rows if r["batch"] == 1), None)
    for name, key, goal in GOALS:
        measured = batched.get(key) if batched else None
        goals.append({"goal": f"{name} >= {goal}", "measured": measured,
                      "met": None if measured is None else measured >= goal})
    gain = {n: _finite(side_by_side_ratio(samples, batch_label(1, n), batch_label(0, n)))
            for n in BATCH_BLOCKS}
    return {"rows": rows, "linux_pps": _finite(median(s.pps for s in samples
                                                      if s.label == LINUX)),
            "batch1_over_batch0": {str(n): v for n, v in gain.items()}, "goals": goals,
            "note": "ratios are taken inside a round, then the median; per block: median "
                    "over rounds of the slope of ns per packet over 1, 10, 50 blocks"}


def _k(pps: float | None) -> str:
    return "-" if pps is None else f"{pps / 1e3:.1f} k"


def _r(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _n(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def render_batch(summary: dict[str, Any] | None, counts_instructions: bool) -> list[str]:
    """summary.md's section: one row per path, the goals below."""
    if not summary:
        return []
    unit = "instructions" if counts_instructions else "ns"
    lines = ["", "## Batch path (lana.batch, issue 19), 64 B", "",
             f"Linux: {_k(summary['linux_pps'])} pps.", "",
             f"| lana.batch | 1 FB pps | 10 FB pps | 50 FB pps | 1 FB / Linux | 10 / 1 FB | "
             f"50 FB / Linux | per block ({unit}) | intercept ({unit}) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in summary["rows"]:
        by_n = {c["blocks"]: c for c in row["chain"]}
        one, ten, fifty = (by_n.get(n, {}) for n in (1, 10, 50))
        lines.append(
            f"| {row['batch']} | {_k(one.get('median_pps'))} | {_k(ten.get('median_pps'))} | "
            f"{_k(fifty.get('median_pps'))} | {_r(row['one_over_linux'])} | "
            f"{_r(row['ten_over_one'])} | {_r(row['fifty_over_linux'])} | "
            f"{_n(row['ns_per_block'])} | {_n(row['intercept_ns'])} |")
    gain = ", ".join(f"{n} FB {_r(v)}" for n, v in summary["batch1_over_batch0"].items())
    lines += ["", f"batch=1 / batch=0, same round: {gain}.", "",
              "| goal (batch=1) | measured | met |", "|---|---|---|"]
    for g in summary["goals"]:
        met = {True: "yes", False: "no", None: "n/a"}[g["met"]]
        lines.append(f"| {g['goal']} | {_r(g['measured'])} | {met} |")
    return lines
