"""`lanalab bench --batch` without a VM: the plan (chains of 1, 10, 50 FBs with lana.batch=0
and =1 one after the other beside Linux), the guest script of a batch point, and the report
(pps, 10 / 1 FB, 50 FB / Linux, 1 FB / Linux and per-block cost per path, the goals) from
synthetic samples."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lab.bench.batching import batch_label, batch_summary, render_batch
from lab.bench.guest import GuestBench, parse_output, point_script
from lab.bench.plan import BATCH_PLAN, PLANS, Point
from lab.bench.report import build_results, render_summary
from lab.bench.runner import RawRun
from lab.bench.stats import Sample

# instructions per packet (the fixture's truth): base + per block, per path
BASE = {0: 1330, 1: 1300}
PER_BLOCK = {0: 45, 1: 15}
LINUX_NS = 1305


def raw_run() -> RawRun:
    raw = RawRun(BATCH_PLAN)
    for r, order in enumerate(BATCH_PLAN.rounds_order()):
        speed = 1.0 if r != 1 else 0.8  # a slower round: ratios and slopes must not move
        for p in order:
            batch = 1 if p.mode == "batch" else 0
            ns = LINUX_NS if p.mode == "linux" else BASE[batch] + PER_BLOCK[batch] * p.blocks
            pps = int(1e9 / ns * speed)
            raw.samples.append(Sample(p.label, p.mode, p.size, p.blocks, r, 1.0, pps, pps,
                                      pps, pps))
    raw.guest = {"kernel": "6.1.0-test", "cpus": "1", "cpu_model": "QEMU", "accel": "tcg",
                 "clock": "instructions"}
    return raw


def test_plan_puts_each_chain_with_batch_0_and_1_side_by_side_beside_linux() -> None:
    assert PLANS["batch"] is BATCH_PLAN
    (group,) = BATCH_PLAN.series()
    assert [p.label for p in group] == [
        "linux@64", "lana1@64", "batch:lana1@64", "lana10@64", "batch:lana10@64",
        "lana50@64", "batch:lana50@64"]
    assert BATCH_PLAN.max_blocks == 50
    rounds = BATCH_PLAN.rounds_order()
    assert len(rounds) == 3 and rounds[1] == rounds[0][::-1]
    assert BATCH_PLAN.to_json()["points_per_round"] == 7
    # the other plans measure no batch point: their runs stay as they were
    assert not any(p.mode == "batch" for name in ("quick", "default", "full", "engines")
                   for g in PLANS[name].series() for p in g)


def test_batch_point_sets_batch_1_and_back() -> None:
    plan = BATCH_PLAN.for_clock("instructions")
    script = point_script(Point("batch", 64, 10), plan)
    assert script == ("lb_batch 1 && lb_mode lana 10 && lb_measure batch:lana10@64 "
                      "lanagen 64 0.2 0.5 && lb_batch 0")
    out = "point batch:lana10@64 0 0 0 0 0 500000000 0 1000 300 300\n"
    (sample,) = parse_output(out, [Point("batch", 64, 10)], 0)
    assert (sample.mode, sample.packets, sample.lana_dropped) == ("batch", 300, 300)
    assert sample.pps == 600.0


def test_batch_points_skipped_on_an_image_without_the_batch_path() -> None:
    bench = GuestBench(lambda cmd, timeout: "", lambda path, data: None)
    bench.batch_reason = "no batch path"
    assert bench._skip_reason(Point("batch", 64, 1)) == "no batch path"
    assert bench._skip_reason(Point("lana", 64, 1)) is None


def test_summary_per_path_ratios_cost_and_goals() -> None:
    raw = raw_run()
    summary = batch_summary(raw.samples)
    assert summary is not None
    rows = {r["batch"]: r for r in summary["rows"]}
    assert list(rows) == [0, 1]
    for batch, row in rows.items():
        base, per = BASE[batch], PER_BLOCK[batch]
        assert row["ns_per_block"] == pytest.approx(per, rel=1e-3)
        assert row["intercept_ns"] == pytest.approx(base, rel=1e-3)
        assert row["ten_over_one"] == pytest.approx((base + per) / (base + 10 * per),
                                                    rel=1e-3)
        assert row["fifty_over_linux"] == pytest.approx(LINUX_NS / (base + 50 * per),
                                                        rel=1e-3)
        assert row["one_over_linux"] == pytest.approx(LINUX_NS / (base + per), rel=1e-3)
    assert summary["batch1_over_batch0"]["50"] == pytest.approx(
        (BASE[0] + 50 * PER_BLOCK[0]) / (BASE[1] + 50 * PER_BLOCK[1]), rel=1e-3)
    goals = {g["goal"]: g["met"] for g in summary["goals"]}
    # 10/1: 1315/1450 = 0.907; 50/Linux: 1305/2050 = 0.64; 1/Linux: 1305/1315 = 0.99
    assert goals == {"10 / 1 FB >= 0.9": True, "50 FB / Linux >= 0.6": True,
                     "1 FB / Linux >= 0.95": True}
    text = "\n".join(render_batch(summary, True))
    assert "## Batch path (lana.batch, issue 19), 64 B" in text
    assert "per block (instructions)" in text and "| 1 | " in text and "| 0 | " in text
    assert batch_summary([s for s in raw.samples if s.mode != "batch"]) is None
    assert batch_label(1, 50) == "batch:lana50@64" and batch_label(0, 1) == "lana1@64"


def test_results_and_summary_carry_the_batch_section() -> None:
    results = build_results(raw_run())
    assert results["batching"]["rows"][1]["batch"] == 1
    points = {p["label"]: p for p in results["points"]}
    assert points["batch:lana10@64"]["ratio_to_batch0"] == pytest.approx(
        (BASE[0] + 450) / (BASE[1] + 150), rel=1e-3)
    assert points["batch:lana10@64"]["ratio_to_lana1"] == pytest.approx(
        (BASE[1] + 15) / (BASE[1] + 150), rel=1e-3)
    summary = render_summary(results)
    assert "## Batch path (lana.batch, issue 19), 64 B" in summary
    assert "| batch:lana50@64 |" in summary


def test_cli_batch_flag_picks_the_batch_plan(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    import lab.bench.session as session
    from lab.commands import bench

    seen = {}

    def fake_session(plan, out, progress, cold_build=False):  # type: ignore[no-untyped-def]
        seen["plan"] = plan
        (out / "summary.md").parent.mkdir(parents=True, exist_ok=True)
        (out / "summary.md").write_text("summary\n")
        return {}

    monkeypatch.setattr(session, "run_session", fake_session)
    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers())
    args = parser.parse_args(["bench", "--batch", "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert seen["plan"].name == "batch" and seen["plan"].batch_blocks == (1, 10, 50)
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--batch", "--engines"])
