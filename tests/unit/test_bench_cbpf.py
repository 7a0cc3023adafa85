"""The bench's cBPF points (issue 14): one classic-BPF filter in LANA's bpf block, as a
socket filter and as XDP. Plans, guest scripts, parsing of their counts, the summary."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from lab.bench.guest import (
    CBPF_PROGRAM,
    GuestBench,
    compile_cbpf,
    parse_output,
    point_script,
)
from lab.bench.plan import CBPF_MODES, DEFAULT, FULL, QUICK, Point
from lab.bench.report import build_results, render_summary
from lab.bench.runner import RawRun
from lab.bench.stats import Sample

# instructions per frame of each path in the fixture run
NS = {"linux": 1300, "lana": 1370, "xdp_generic_drop": 1000, "tc_drop": 1100,
      "xdp_parse_drop": 1040, "lana_bpf": 1500, "cbpf_socket": 8000, "cbpf_xdp": 1250}
PLAN = replace(QUICK, sizes=(), chain_blocks=(1,), socket_sizes=(), cbpf_sizes=(64,))


def test_plans_measure_the_cbpf_points_beside_linux() -> None:
    for plan in (QUICK, DEFAULT, FULL):
        labels = [p.label for group in plan.series() for p in group]
        assert plan.cbpf_sizes and "xdp_cbpf" in plan.bpf_objects
        for size in plan.cbpf_sizes:
            assert f"linux@{size}" in labels
            assert [f"{m}@{size}" for m in CBPF_MODES] == [
                x for x in labels if x.split("@")[0] in CBPF_MODES and x.endswith(f"@{size}")]
        assert plan.ebpf_programs == ["xdp_drop", "tc_drop", "xdp_parse_drop"]
    assert QUICK.cbpf_sizes == (64,)
    # three points more per round, the quick plan stays short
    assert QUICK.estimate_seconds() - replace(QUICK, cbpf_sizes=()).estimate_seconds() < 20
    assert "xdp_cbpf" not in replace(QUICK, cbpf_sizes=()).bpf_objects


def test_point_scripts() -> None:
    assert point_script(Point("lana_bpf", 64), QUICK) == (
        "lb_mode lana_bpf && lb_measure lana_bpf@64 lanagen 64 0.3 1")
    assert point_script(Point("cbpf_xdp", 1518), QUICK) == (
        "lb_mode cbpf_xdp && lb_measure cbpf_xdp@1518 lanagen 1518 0.3 1")
    assert point_script(Point("cbpf_socket", 64), QUICK) == (
        f"lb_mode linux && lb_sniff cbpf_socket@64 lanagen 64 0.3 1 {CBPF_PROGRAM}")


def test_what_the_filter_passed_is_what_the_point_counts() -> None:
    out = ("point lana_bpf@64 1000000000 100 100 7 3 1500000000 600 600 407 503\n"
           "point cbpf_xdp@64 1000000000 100 100 40 40 1500000000 700 700 540 540\n"
           "sniff cbpf_socket@64 1000 60000 500000000 2\n")
    points = [Point("lana_bpf", 64), Point("cbpf_xdp", 64), Point("cbpf_socket", 64)]
    bpf, xdp, sock = parse_output(out, points, round_no=1)
    assert (bpf.packets, bpf.lana_dropped, bpf.pps) == (400, 500, pytest.approx(800))
    assert (xdp.packets, xdp.pps) == (500, pytest.approx(1000))
    assert (sock.packets, sock.received, sock.pps) == (1000, 1002, pytest.approx(2000))


class FakeGuest:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.commands: list[str] = []

    def shell(self, command: str, timeout: float) -> str:
        self.commands.append(command)
        return "ip utility, iproute2-6.1.0, libbpf 1.1.2" if command == "ip -V" else ""

    def put(self, path: str, data: bytes) -> None:
        self.files[path] = data


@pytest.mark.skipif(shutil.which("bpfc") is None, reason="no bpfc (netsniff-ng)")
def test_the_filter_and_the_xdp_object_go_to_the_guest() -> None:
    program = compile_cbpf()
    assert program.splitlines()[0] == "{ 0x28, 0, 0, 0x0000000c },"
    assert "0x00000009 }" in program and len(program.splitlines()) == 11
    fake = FakeGuest()
    bench = GuestBench(fake.shell, fake.put, {"xdp_cbpf": b"obj"})
    bench.cbpf_reason = bench._install_cbpf()
    assert bench.cbpf_reason is None
    bench.cbpf_xdp_reason = bench._install_bpf(["xdp_cbpf"])
    assert fake.files[CBPF_PROGRAM] == program.encode()
    assert fake.files["/tmp/lanabench-xdp_cbpf.bpf.o"] == b"obj"
    assert any("lb_cbpf_setup" in c for c in fake.commands)
    bench.sniffer_ok = True
    assert all(bench._skip_reason(Point(m, 64)) is None for m in CBPF_MODES)
    assert "pktgen" in (bench._skip_reason(Point("cbpf_xdp", 64), "pktgen") or "")
    assert bench._skip_reason(Point("lana_bpf", 64), "pktgen") is None


def test_points_say_why_they_are_skipped() -> None:
    fake = FakeGuest()
    bench = GuestBench(fake.shell, fake.put, None, bpf_missing="no clang on this host")
    bench.sniffer_ok = True
    assert bench._skip_reason(Point("lana_bpf", 64)) == "the cBPF filter was not installed"
    bench.cbpf_reason = None
    assert bench._skip_reason(Point("lana_bpf", 64)) is None
    assert bench._skip_reason(Point("cbpf_xdp", 64)) == "no clang on this host"
    bench.sniffer_ok = False
    assert "socket receiver" in (bench._skip_reason(Point("cbpf_socket", 64)) or "")


def _raw() -> RawRun:
    raw = RawRun(PLAN)
    for r in range(PLAN.rounds):
        speed = 1.0 if r == 0 else 0.5
        for p in (pt for group in PLAN.series() for pt in group):
            pps = int(1e9 / NS[p.mode] * speed)
            raw.samples.append(Sample(p.label, p.mode, p.size, p.blocks, r, 1.0, pps, pps,
                                      pps, 0))
    raw.guest = {"kernel": "6.1.0-test", "cpus": "1", "accel": "tcg", "clock": "instructions"}
    return raw


def test_summary_puts_the_cbpf_points_beside_the_others() -> None:
    results = build_results(_raw())
    points = {p["label"]: p for p in results["points"]}
    assert points["lana_bpf@64"]["ratio_to_linux"] == pytest.approx(1300 / 1500, rel=1e-3)
    assert points["cbpf_xdp@64"]["ratio_to_linux"] == pytest.approx(1300 / 1250, rel=1e-3)
    assert points["cbpf_xdp@64"]["ratio_to_lana_bpf"] == pytest.approx(1500 / 1250, rel=1e-3)
    assert points["cbpf_socket@64"]["ratio_to_lana_bpf"] == pytest.approx(1500 / 8000,
                                                                         rel=1e-3)
    labels = [r["label"] for r in results["beside_ebpf"]["rows"]]
    assert labels == ["linux@64", "lana1@64", "xdp_generic_drop@64", "tc_drop@64",
                      "xdp_parse_drop@64", "lana_bpf@64", "cbpf_socket@64", "cbpf_xdp@64"]
    text = render_summary(results)
    row = next(line for line in text.splitlines() if line.startswith("| cbpf_xdp@64 |"))
    assert "restricted C" in row and row.endswith("| 1.04 |")
    assert "SO_ATTACH_FILTER" in text


def test_the_figure_names_the_cbpf_points(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from lab.bench.plots import _name, write_plots

    assert _name("lana_bpf") == "LANA bpf block (cBPF)" and _name("lana10") == "LANA, 10 FBs"
    assert "lana-beside-ebpf.png" in {p.name for p in write_plots(build_results(_raw()),
                                                                   tmp_path)}
