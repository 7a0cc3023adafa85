"""lab.bench.report / plots / guest parsing / the command: JSON schema, targets, thesis
table, summary and plots from a results file, without a VM."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pytest

from lab.bench.guest import parse_output, point_script
from lab.bench.plan import QUICK, Plan, Point
from lab.bench.report import SCHEMA, THESIS, build_results, render_summary
from lab.bench.runner import RawRun
from lab.bench.stats import Sample
from lab.errors import LabError

PLAN = Plan("fixture", rounds=2, warmup=0.1, seconds=1.0, chain_blocks=(1, 10, 50),
            sizes=(1518,), size_blocks=(1,), socket_sizes=(64,), lab_speed="basic",
            source="pktgen", receiver_sizes=())  # receivers: tests/unit/test_bench_receivers.py

# time per packet (ns) per point: sender 3000, Linux 5000, LANA 7000 + 200 per block
NS = {"sender": 3000, "linux": 5000, "pf_packet": 50_000}


def raw_run() -> RawRun:
    raw = RawRun(PLAN)
    for r in range(PLAN.rounds):
        speed = 1.0 if r == 0 else 0.5  # round 1 runs at half speed: ratios must not move
        for p in [pt for group in PLAN.series() for pt in group]:
            if p.mode == "pf_lana":
                continue
            ns = 6800 + 200 * p.blocks if p.mode == "lana" else NS[p.mode]
            pps = 1e9 / ns * speed
            raw.samples.append(Sample(p.label, p.mode, p.size, p.blocks, r, 1.0, int(pps),
                                      int(pps), int(pps)))
    raw.skipped["pf_lana@64"] = "no pflana block in this guest image"
    raw.guest = {"kernel": "6.1.0-test", "cpus": "1", "cpu_model": "QEMU", "accel": "tcg"}
    raw.timings = {"lab_up_s": 5.0, "vm_boot_to_ready_s": 4.0, "lab_down_s": 0.2}
    return raw


@pytest.fixture
def results() -> dict:
    return build_results(raw_run(), {"bench topology up (1 VM, 1 host)": 5.0},
                         ([1.0, 1.0, 1.0], [2.0, 2.0, 2.0]))


def test_schema_and_environment(results: dict) -> None:
    assert results["schema"] == SCHEMA
    for key in ("started", "finished", "duration_s", "plan", "environment", "traffic",
                "timings", "samples", "skipped", "points", "chain_slope", "targets",
                "thesis_comparison", "lab_speed"):
        assert key in results, key
    env = results["environment"]
    assert env["accel"] == "tcg" and env["guest"]["kernel"] == "6.1.0-test"
    assert env["host"]["cores"] >= 1 and env["host"]["cpu_model"]
    assert env["host"]["loadavg_end"] == [2.0, 2.0, 2.0]
    assert len(results["samples"]) == 2 * 9
    json.dumps(results)  # serialisable as is, no NaN objects left
    assert "NaN" not in json.dumps(results)


def test_points_ratios_and_slope(results: dict) -> None:
    points = {p["label"]: p for p in results["points"]}
    lana1, lana10, linux = points["lana1@64"], points["lana10@64"], points["linux@64"]
    assert lana1["ratio_to_linux"] == pytest.approx(5000 / 7000, rel=1e-3)
    assert lana10["ratio_to_lana1"] == pytest.approx(7000 / 8800, rel=1e-3)
    # receive only: Linux 2000 ns, LANA 1 FB 4000 ns
    assert lana1["receive_only_ratio_to_linux"] == pytest.approx(0.5, rel=1e-3)
    assert linux["rounds"] == 2 and linux["min_pps"] < linux["max_pps"]
    slope = results["chain_slope"]
    # round 0 at full speed: 200 ns per block, round 1 at half speed: 400 ns
    assert slope["per_round_ns_per_block"] == pytest.approx([200, 400], rel=1e-3)
    assert slope["ns_per_block"] == pytest.approx(300, rel=1e-3)
    # the fit over the medians (in median ns) sees 200 * 4/3
    assert slope["fit_of_medians_ns_per_block"] == pytest.approx(200 * (1 / 0.75), rel=1e-3)
    assert slope["chain_lengths"] == 3 and slope["r2"] == pytest.approx(1.0)


def test_targets_report_without_enforcing(results: dict) -> None:
    targets = {t["target"]: t for t in results["targets"]}
    one = targets["1 block >= 95% of Linux (64 B)"]
    assert one["met"] is False and one["goal"] == 0.95
    ten = targets["10 blocks >= 90% of 1 block (64 B)"]
    assert ten["measured"] == pytest.approx(0.795, abs=1e-3) and ten["met"] is False
    pf = targets["PF_LANA >= PF_PACKET (64 B)"]
    assert pf["met"] is None and "pflana" in pf["note"]


def test_thesis_table(results: dict) -> None:
    rows = {r["what"]: r for r in results["thesis_comparison"]}
    assert rows["Linux receive-and-drop, 64 B"]["thesis"] == 1.38e6
    assert rows["LANA 10 FB / 1 FB, 64 B"]["thesis"] == pytest.approx(0.855, abs=1e-3)
    assert THESIS["ns_per_block"] == pytest.approx(13.65, abs=0.05)
    assert rows["PF_LANA / PF_PACKET, 64 B"]["measured"] is None
    assert rows["PF_LANA / PF_PACKET, 64 B"]["note"]


def test_summary_markdown(results: dict) -> None:
    text = render_summary(results)
    assert text.startswith("# LANA lab benchmark (fixture")
    assert "| 1 block >= 95% of Linux (64 B) | 0.71 | no |" in text
    assert "| LANA 10 FB, 64 B | 1.18 M | 85.2 k |" in text
    assert "Engine cost per fwd block (64 B): **300 ns**" in text
    assert "Skipped pf_lana@64" in text and "## Lab speed" in text


def test_plots_from_a_results_file(results: dict, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from lab.commands.bench import cmd_bench

    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    out = tmp_path / "replot"
    args = argparse.Namespace(replot=path, out=out, quick=False, full=False, cold_build=False)
    assert cmd_bench(args) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["chain-slope-64B.png", "fig6.2-linux-vs-lana-1-10.png",
                    "fig6.3-linux-vs-lana-10-50.png", "fig6.4-pf-lana-vs-pf-packet.png",
                    "ratio-to-linux.png"]
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (out / "summary.md").read_text() == render_summary(results)


def test_replot_of_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    from lab.commands.bench import cmd_bench

    args = argparse.Namespace(replot=tmp_path / "nope.json", out=None, quick=False,
                              full=False, cold_build=False)
    with pytest.raises(LabError) as err:
        cmd_bench(args)
    assert "results.json" in (err.value.hint or "")


def test_guest_output_parsing() -> None:
    points = [Point("linux", 64), Point("lana", 64, 10), Point("pf_packet", 64)]
    out = ("noise line\n"
           "point linux@64 1000000000 100 110 0 0 3000000000 200100 200120 0 0\n"
           "point lana10@64 0 0 0 5 5 2000000000 90000 90010 90005 90004\n"
           "sniff pf_packet@64 3000 192000 1500000000 77\n")
    samples = {s.label: s for s in parse_output(out, points, round_no=2)}
    assert samples["linux@64"].pps == pytest.approx(100_000)
    assert samples["linux@64"].sent == 200_010
    assert samples["lana10@64"].packets == 90_000 and samples["lana10@64"].round == 2
    assert samples["lana10@64"].lana_dropped == 89_999  # the chain's end dropped them
    assert samples["pf_packet@64"].pps == pytest.approx(2000)
    assert samples["pf_packet@64"].received == 3077  # got + socket drops
    with pytest.raises(LabError, match="no result for"):
        parse_output(out, [*points, Point("lana", 64, 1)], 0)
    with pytest.raises(LabError, match="malformed"):
        parse_output("point linux@64 1 2 3\n", points[:1], 0)


def test_point_scripts() -> None:
    assert point_script(Point("lana", 256, 7), QUICK) == (
        "lb_mode lana 7 && lb_measure lana7@256 lanagen 256 0.3 1")
    assert point_script(Point("lana", 256, 7), replace(QUICK, source="pktgen")) == (
        "lb_mode lana 7 && lb_measure lana7@256 va 256 0.3 1")
    assert "lb_sniff pf_packet@64 lanagen 64 " in point_script(Point("pf_packet", 64), QUICK)
    assert "bd0" in point_script(Point("sender", 64), QUICK)
    assert "lb_sniff " in point_script(Point("pf_packet", 64), QUICK)
    assert "lb_sniff_lana " in point_script(Point("pf_lana", 64), QUICK)
    with pytest.raises(ValueError):
        point_script(Point("bogus", 64), QUICK)


def test_pf_lana_against_pf_packet_side_by_side() -> None:
    raw = raw_run()
    raw.skipped.clear()
    for r, (packet, lana) in enumerate(((10e3, 11e3), (20e3, 21e3), (5e3, 6e3))):
        for label, pps in (("pf_packet@64", packet), ("pf_lana@64", lana)):
            raw.samples.append(Sample(label, label.split("@")[0], 64, 0, r, 1.0, int(pps),
                                      0, int(pps)))
    results = build_results(raw)
    pf_lana = next(p for p in results["points"] if p["label"] == "pf_lana@64")
    assert pf_lana["ratio_to_pf_packet"] == pytest.approx(1.1)  # rounds: 1.1, 1.05, 1.2
    target = next(t for t in results["targets"] if t["target"].startswith("PF_LANA"))
    assert target["met"] is True and target["measured"] == pytest.approx(1.1)
    row = next(r for r in results["thesis_comparison"] if r["what"].startswith("PF_LANA"))
    assert row["measured"] == pytest.approx(1.1) and row["note"] == ""


def test_command_options() -> None:
    from lab.commands.bench import register

    parser = argparse.ArgumentParser(prog="lanalab")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--quick", "--out", "x"])
    assert args.quick and not args.full and args.out == Path("x") and args.func
    assert not parser.parse_args(["bench"]).quick
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--quick", "--full"])


def test_summary_says_when_the_clock_counts_instructions() -> None:
    raw = raw_run()
    assert "counts instructions" not in render_summary(build_results(raw))
    raw.guest["clock"] = "instructions"
    summary = render_summary(build_results(raw))
    assert "the guest's clock counts instructions" in summary
    assert "ns** (instructions)" in summary and "ratios drift" not in summary
