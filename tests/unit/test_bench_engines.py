"""`lanalab bench --engines` without a VM: the plan (every engine at 1, 10, 50 FBs beside
Linux, in one group of rounds), the guest script of an engine point, and the report
(pps, ratios and per-block cost per engine, the order beside the thesis's, summary and
the fig. 6.12 plot) from synthetic samples."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lab.bench.engines import engine_label, engines_summary, render_engines
from lab.bench.guest import GuestBench, parse_output, point_script
from lab.bench.plan import ENGINES, ENGINES_PLAN, PLANS, Point
from lab.bench.plots import matplotlib_missing, write_plots
from lab.bench.report import build_results, render_summary
from lab.bench.runner import RawRun
from lab.bench.stats import Sample

# instructions per packet: base per engine + cost per block (the fixture's truth)
BASE = {"kthread-hp": 2400, "kthread-np": 2600, "kthread-cs": 1900, "hrtimer": 1800,
        "softirq": 1330}
PER_BLOCK = {"kthread-hp": 45, "kthread-np": 45, "kthread-cs": 46, "hrtimer": 45,
             "softirq": 45}
LINUX_NS = 1305


def raw_run() -> RawRun:
    raw = RawRun(ENGINES_PLAN)
    for r, order in enumerate(ENGINES_PLAN.rounds_order()):
        speed = 1.0 if r != 1 else 0.8  # a slower round: ratios and slopes must not move
        for p in order:
            ns = LINUX_NS if p.mode == "linux" else BASE[p.engine] + PER_BLOCK[p.engine] * p.blocks
            pps = int(1e9 / ns * speed)
            raw.samples.append(Sample(p.label, p.mode, p.size, p.blocks, r, 1.0, pps, pps,
                                      pps, pps + (100 if p.engine == "kthread-np" else 0)))
    raw.guest = {"kernel": "6.1.0-test", "cpus": "1", "cpu_model": "QEMU", "accel": "tcg",
                 "clock": "instructions"}
    return raw


def test_plan_measures_every_engine_at_each_chain_length_beside_linux() -> None:
    assert PLANS["engines"] is ENGINES_PLAN
    assert ENGINES == ("kthread-hp", "kthread-np", "kthread-cs", "hrtimer", "softirq")
    (group,) = ENGINES_PLAN.series()
    assert group[0] == Point("linux", 64)
    assert [(p.engine, p.blocks) for p in group[1:]] == [
        (e, n) for e in ENGINES for n in (1, 10, 50)]
    assert {p.mode for p in group[1:]} == {"engine"}
    assert len({p.label for p in group}) == len(group) == 16
    assert ENGINES_PLAN.max_blocks == 50
    rounds = ENGINES_PLAN.rounds_order()
    assert len(rounds) == 3 and rounds[1] == rounds[0][::-1]
    assert Point("engine", 64, 10, "kthread-cs").label == "kthread-cs:lana10@64"
    assert ENGINES_PLAN.to_json()["points_per_round"] == 16
    assert "engines" in ENGINES_PLAN.to_json()
    # the other plans measure no engine point: their runs stay as they were
    assert not any(p.mode == "engine" for name in ("quick", "default", "full")
                   for g in PLANS[name].series() for p in g)


def test_engine_point_switches_engine_and_back() -> None:
    plan = ENGINES_PLAN.for_clock("instructions")
    script = point_script(Point("engine", 64, 10, "hrtimer"), plan)
    assert script == ("lb_engine hrtimer && lb_mode lana 10 && lb_measure "
                      "hrtimer:lana10@64 lanagen 64 0.2 0.5 && lb_engine softirq")
    out = "point hrtimer:lana10@64 0 0 0 0 0 500000000 0 1000 300 310\n"
    (sample,) = parse_output(out, [Point("engine", 64, 10, "hrtimer")], 0)
    assert (sample.mode, sample.packets, sample.lana_dropped) == ("engine", 300, 310)
    assert sample.pps == 600.0


def test_engine_points_skipped_on_an_image_without_engine_models() -> None:
    bench = GuestBench(lambda cmd, timeout: "", lambda path, data: None)
    bench.engines_reason = "no engine models"
    assert bench._skip_reason(Point("engine", 64, 1, "softirq")) == "no engine models"
    assert bench._skip_reason(Point("linux", 64)) is None


def test_summary_per_engine_pps_ratios_cost_and_order() -> None:
    raw = raw_run()
    summary = engines_summary(raw.samples)
    assert summary is not None
    rows = {r["engine"]: r for r in summary["rows"]}
    assert list(rows) == list(ENGINES)
    for engine, row in rows.items():
        assert row["ns_per_block"] == pytest.approx(PER_BLOCK[engine], rel=1e-3)
        assert row["intercept_ns"] == pytest.approx(BASE[engine], rel=1e-3)
        one = next(c for c in row["chain"] if c["blocks"] == 1)
        ten = next(c for c in row["chain"] if c["blocks"] == 10)
        ns1 = BASE[engine] + PER_BLOCK[engine]
        assert one["ratio_to_linux"] == pytest.approx(LINUX_NS / ns1, rel=1e-3)
        assert ten["ratio_to_lana1"] == pytest.approx(
            ns1 / (BASE[engine] + 10 * PER_BLOCK[engine]), rel=1e-3)
        assert row["ratio_to_softirq"] == pytest.approx(
            (BASE["softirq"] + 45) / ns1, rel=1e-3)
    assert rows["kthread-np"]["chain"][0]["queue_drops"] == 100
    assert rows["softirq"]["chain"][0]["queue_drops"] == 0
    assert rows["softirq"]["thesis_model"] == "kthr ksirq-nrx"
    assert rows["kthread-hp"]["thesis_pps"] == 700_000
    # slowest first: np < hp < cs < hrtimer < softirq here; the thesis: hp < np < cs ...
    assert summary["order_slowest_first"] == ["kthread-np", "kthread-hp", "kthread-cs",
                                              "hrtimer", "softirq"]
    assert summary["thesis_order_slowest_first"] == list(ENGINES)
    assert summary["order_matches_thesis"] is False
    text = "\n".join(render_engines(summary, True))
    assert "| kthread-cs (kthr cs) |" in text and "per block (instructions)" in text
    assert "differs from the thesis" in text
    assert engines_summary([s for s in raw.samples if s.mode == "linux"]) is None
    assert engine_label("softirq", 50) == "softirq:lana50@64"


def test_results_summary_and_fig_6_12(tmp_path: Path) -> None:
    results = build_results(raw_run())
    assert results["engines"]["rows"][0]["engine"] == "kthread-hp"
    points = {p["label"]: p for p in results["points"]}
    assert points["kthread-cs:lana1@64"]["ratio_to_linux"] == pytest.approx(
        LINUX_NS / (1900 + 46), rel=1e-3)
    summary = render_summary(results)
    assert "## Engine models (thesis 6.5, fig. 6.12), 64 B" in summary
    assert "| softirq (kthr ksirq-nrx) |" in summary
    if matplotlib_missing():
        pytest.skip("matplotlib not installed")
    written = write_plots(results, tmp_path)
    assert tmp_path / "fig6.12-engine-models.png" in written


def test_cli_engines_flag_picks_the_engines_plan(monkeypatch: pytest.MonkeyPatch,
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
    args = parser.parse_args(["bench", "--engines", "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert seen["plan"].name == "engines" and seen["plan"].engines == ENGINES
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--engines", "--quick"])


def test_the_storm_knows_the_same_engine_models_as_the_bench() -> None:
    from lab.reliability.storm import ENGINES as STORM_ENGINES

    assert set(STORM_ENGINES) == set(ENGINES)
