"""The bench's eBPF points (issue 14): plans, guest scripts, parsing of the programs'
counters, the summary's "LANA beside XDP and tc-eBPF" table and figure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lab.bench.guest import GuestBench, parse_output, point_script
from lab.bench.plan import DEFAULT, EBPF_MODES, FULL, QUICK, Plan, Point
from lab.bench.report import build_results, render_summary
from lab.bench.runner import RawRun
from lab.bench.stats import Sample

PLAN = Plan("fixture", rounds=2, warmup=0.1, seconds=1.0, chain_blocks=(1, 10),
            sizes=(1518,), size_blocks=(1,), socket_sizes=(), lab_speed="basic",
            ebpf_sizes=(64, 1518))
# instructions per frame of each path
NS = {"linux": 1300, "lana": 1370, "xdp_generic_drop": 1000, "tc_drop": 1100,
      "xdp_parse_drop": 1040}


def test_plans_measure_the_ebpf_points_beside_linux() -> None:
    for plan in (QUICK, DEFAULT, FULL):
        labels = {p.label for group in plan.series() for p in group}
        for size in plan.ebpf_sizes:
            assert f"linux@{size}" in labels and f"lana1@{size}" in labels
            assert {f"{m}@{size}" for m in EBPF_MODES} <= labels
        assert plan.ebpf_programs == ["xdp_drop", "tc_drop", "xdp_parse_drop"]
    assert QUICK.ebpf_sizes == (64,) and QUICK.estimate_seconds() < 90
    assert replace(QUICK, ebpf_sizes=()).ebpf_programs == []


def test_point_scripts_attach_then_measure() -> None:
    assert point_script(Point("xdp_generic_drop", 64), QUICK) == (
        "lb_mode xdp_generic_drop && lb_measure xdp_generic_drop@64 lanagen 64 0.3 1")
    assert point_script(Point("tc_drop", 1518), replace(QUICK, source="pktgen")) == (
        "lb_mode tc_drop && lb_measure tc_drop@1518 va 1518 0.3 1")


def test_the_programs_counter_is_what_the_point_counts() -> None:
    out = "point xdp_parse_drop@64 1000000000 0 100 40 40 1500000000 0 500100 500038 500038\n"
    (s,) = parse_output(out, [Point("xdp_parse_drop", 64)], round_no=0)
    assert s.packets == 499_998 and s.lana_dropped == 499_998 and s.sent == 500_000
    assert s.pps == pytest.approx(999_996)


class FakeGuest:
    def __init__(self, ip_version: str) -> None:
        self.ip_version = ip_version
        self.files: dict[str, bytes] = {}

    def shell(self, command: str, timeout: float) -> str:
        return self.ip_version if command == "ip -V" else ""

    def put(self, path: str, data: bytes) -> None:
        self.files[path] = data


def test_objects_go_to_the_guest_or_the_points_say_why_not() -> None:
    objects = {"xdp_drop": b"a", "tc_drop": b"b", "xdp_parse_drop": b"c"}
    fake = FakeGuest("ip utility, iproute2-6.1.0, libbpf 1.1.2")
    bench = GuestBench(fake.shell, fake.put, objects)
    assert bench._install_bpf(QUICK.ebpf_programs) is None
    assert fake.files["/tmp/lanabench-tc_drop.bpf.o"] == b"b"
    assert bench._skip_reason(Point("tc_drop", 64)) is None
    old = FakeGuest("ip utility, iproute2-5.10.0")
    assert "libbpf" in (GuestBench(old.shell, old.put, objects)._install_bpf(["xdp_drop"])
                        or "")
    assert not old.files
    none = GuestBench(fake.shell, fake.put, None, bpf_missing="no clang on this host")
    assert none._skip_reason(Point("xdp_parse_drop", 64)) == "no clang on this host"


def _raw() -> RawRun:
    raw = RawRun(PLAN)
    for r in range(PLAN.rounds):
        speed = 1.0 if r == 0 else 0.5
        for p in (pt for group in PLAN.series() for pt in group):
            ns = NS[p.mode] + 45 * (p.blocks - 1) if p.mode == "lana" else NS[p.mode]
            pps = int(1e9 / ns * speed)
            raw.samples.append(Sample(p.label, p.mode, p.size, p.blocks, r, 1.0, pps, pps,
                                      pps, pps if p.mode != "linux" else 0))
    raw.guest = {"kernel": "6.1.0-test", "cpus": "1", "accel": "tcg", "clock": "instructions"}
    return raw


def test_summary_puts_lana_beside_xdp_and_tc(tmp_path: Path) -> None:
    results = build_results(_raw())
    points = {p["label"]: p for p in results["points"]}
    assert points["xdp_generic_drop@64"]["ratio_to_linux"] == pytest.approx(1.3, rel=1e-3)
    assert points["xdp_parse_drop@64"]["ratio_to_lana1"] == pytest.approx(1370 / 1040,
                                                                          rel=1e-3)
    beside = results["beside_ebpf"]
    labels = [r["label"] for r in beside["rows"]]
    assert labels[:5] == ["linux@64", "lana1@64", "xdp_generic_drop@64", "tc_drop@64",
                          "xdp_parse_drop@64"] and len(labels) == 10
    assert beside["seed_003"]["kpps"][200]["af_xdp"] == 1359
    text = render_summary(results)
    assert "## LANA beside XDP and tc-eBPF" in text
    row = next(line for line in text.splitlines() if line.startswith("| tc_drop@64 |"))
    assert "cls_bpf direct action" in row and row.endswith("| 1.18 |")  # 1300 / 1100
    assert "instructions per frame" in text and "AF_XDP 1,359" in text
    assert "generic mode" in text
    # an older results.json without the table still renders
    assert "beside XDP" not in render_summary({**results, "beside_ebpf": None})
    pytest.importorskip("matplotlib")
    from lab.bench.plots import write_plots

    made = {p.name for p in write_plots(results, tmp_path)}
    assert "lana-beside-ebpf.png" in made
    assert (tmp_path / "lana-beside-ebpf.png").stat().st_size > 10_000
