"""The bench's userspace receivers (issue 14): UDP recvfrom / recvmmsg, TPACKET_V3, AF_XDP
beside pf_packet and pf_lana: plans, guest scripts, parsing, skip reasons, the summary's
table with seed 003's ratios, and the figure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lab.bench.beside import seed_ratio, seed_size
from lab.bench.guest import GuestBench, parse_output, point_script
from lab.bench.plan import DEFAULT, FULL, QUICK, RECEIVER_MODES, Plan, Point
from lab.bench.report import build_results, render_summary
from lab.bench.runner import RawRun
from lab.bench.stats import Sample

PLAN = Plan("fixture", rounds=2, warmup=0.1, seconds=1.0, chain_blocks=(1,), sizes=(),
            size_blocks=(), socket_sizes=(64,), lab_speed="basic")
# instructions per frame a receiver got
NS = {"linux": 1300, "lana": 1370, "pf_packet": 8500, "pf_lana": 7400,
      "udp_recvfrom": 10_000, "udp_recvmmsg": 5_000, "tpacket_v3": 4_000, "af_xdp": 2_500}


def test_plans_measure_the_receivers_beside_pf_packet() -> None:
    for plan in (QUICK, DEFAULT, FULL):
        labels = {p.label for group in plan.series() for p in group}
        for size in plan.receivers_at:
            assert {f"{m}@{size}" for m in ("pf_packet", "pf_lana", *RECEIVER_MODES)} <= labels
        assert plan.bpf_objects[-1] == "xdp_xsk"
    assert QUICK.receivers_at == (64,) and DEFAULT.receivers_at == (64,)
    assert FULL.receivers_at == FULL.socket_sizes
    # pf_packet and pf_lana stay at every socket size; the receivers where the plan says
    default = {p.label for group in DEFAULT.series() for p in group}
    assert "pf_packet@1518" in default and "af_xdp@1518" not in default
    assert "xdp_xsk" not in replace(QUICK, socket_sizes=()).bpf_objects
    assert QUICK.estimate_seconds() < 90  # the quick plan is the VM smoke test


def test_point_scripts_start_the_receiver_of_each_kind() -> None:
    kinds = {"udp_recvfrom": "udp", "udp_recvmmsg": "mmsg", "tpacket_v3": "tpacket3",
             "af_xdp": "xdp"}
    for mode, kind in kinds.items():
        assert point_script(Point(mode, 64), QUICK) == (
            f"lb_mode linux && lb_recv {mode}@64 lanagen 64 0.3 1 {kind}")
    assert point_script(Point("af_xdp", 1518), replace(QUICK, source="pktgen")) == (
        "lb_mode linux && lb_recv af_xdp@1518 va 1518 0.3 1 xdp")


def test_a_receivers_line_counts_what_the_program_got() -> None:
    (s,) = parse_output("sniff udp_recvmmsg@64 50000 900000 500000000 120\n",
                        [Point("udp_recvmmsg", 64)], round_no=1)
    assert (s.packets, s.received, s.round) == (50_000, 50_120, 1)
    assert s.pps == pytest.approx(100_000)


class FakeGuest:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def shell(self, command: str, timeout: float) -> str:
        return ""

    def put(self, path: str, data: bytes) -> None:
        self.files[path] = data


def test_af_xdp_needs_its_object_the_others_do_not(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    import lab.bench.guest as guest

    binary = tmp_path / "lanabench-recv"
    binary.write_bytes(b"\x7fELF")
    monkeypatch.setattr(guest, "build_receivers", lambda workdir: binary)
    fake = FakeGuest()
    bench = GuestBench(fake.shell, fake.put, {"xdp_xsk": b"obj"})
    assert bench._skip_reason(Point("af_xdp", 64)) == "the receivers were not installed"
    bench.receivers_reason = bench._install_receivers()  # as install() does
    assert bench.receivers_reason is None
    assert fake.files[guest.RECEIVERS] == b"\x7fELF"
    assert fake.files["/tmp/lanabench-xdp_xsk.bpf.o"] == b"obj"
    assert all(bench._skip_reason(Point(m, 64)) is None for m in RECEIVER_MODES)
    no_clang = GuestBench(fake.shell, fake.put, None, bpf_missing="no clang on this host")
    no_clang.receivers_reason = no_clang._install_receivers()
    assert no_clang.receivers_reason is None
    assert no_clang._skip_reason(Point("af_xdp", 64)) == "no clang on this host"
    assert no_clang._skip_reason(Point("udp_recvmmsg", 64)) is None
    no_object = GuestBench(fake.shell, fake.put, {})
    no_object.receivers_reason = no_object._install_receivers()
    assert "xdp_xsk" in (no_object._skip_reason(Point("af_xdp", 64)) or "")


def test_generic_xdp_points_are_skipped_with_pktgen() -> None:
    """pktgen's frames arrive shared; 6.1's generic XDP BUG()s on them (the guest panics)."""
    fake = FakeGuest()
    bench = GuestBench(fake.shell, fake.put, {"xdp_xsk": b"obj"})
    bench.receivers_reason = None
    for mode in ("af_xdp", "xdp_generic_drop", "xdp_parse_drop"):
        assert "shared" in (bench._skip_reason(Point(mode, 64), "pktgen") or "")
        assert bench._skip_reason(Point(mode, 64), "lanagen") == bench._skip_reason(
            Point(mode, 64))
    assert bench._skip_reason(Point("tpacket_v3", 64), "pktgen") is None
    assert bench._skip_reason(Point("tc_drop", 64), "pktgen") is None


def test_receivers_that_cannot_be_built_are_skipped_with_the_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import lab.bench.guest as guest
    from lab.errors import LabError

    def broken(workdir: Path) -> Path:
        raise LabError("building the receivers failed: cannot find -l:libbpf.a")

    monkeypatch.setattr(guest, "build_receivers", broken)
    fake = FakeGuest()
    bench = GuestBench(fake.shell, fake.put, {"xdp_xsk": b"obj"})
    bench.receivers_reason = bench._install_receivers()
    assert "libbpf.a" in (bench._skip_reason(Point("udp_recvfrom", 64)) or "")
    assert not fake.files


def _raw() -> RawRun:
    raw = RawRun(PLAN)
    for r in range(PLAN.rounds):
        speed = 1.0 if r == 0 else 0.5
        for p in (pt for group in PLAN.series() for pt in group):
            pps = int(1e9 / NS[p.mode] * speed)
            raw.samples.append(Sample(p.label, p.mode, p.size, p.blocks, r, 1.0, pps, pps,
                                      pps))
    raw.guest = {"kernel": "6.1.0-test", "cpus": "1", "accel": "tcg", "clock": "instructions"}
    return raw


def test_summary_puts_the_receivers_beside_seed_003(tmp_path: Path) -> None:
    results = build_results(_raw())
    points = {p["label"]: p for p in results["points"]}
    assert points["af_xdp@64"]["ratio_to_udp_recvfrom"] == pytest.approx(4.0)
    assert points["udp_recvmmsg@64"]["ratio_to_linux"] == pytest.approx(1300 / 5000)
    assert "ratio_to_udp_recvfrom" not in points["udp_recvfrom@64"]
    order = [p["label"] for p in results["points"]]
    assert order.index("pf_lana@64") < order.index("udp_recvfrom@64") < order.index(
        "af_xdp@64")
    recv = results["beside_receivers"]
    assert [r["mode"] for r in recv["rows"]] == ["pf_packet", "pf_lana", *RECEIVER_MODES]
    af_xdp = recv["rows"][-1]
    assert af_xdp["seed_003_ratio"] == pytest.approx(1359 / 220)
    assert af_xdp["seed_003_size"] == 200 and seed_size(1518) == 1400
    assert seed_ratio("udp_recvmmsg", 1400) == pytest.approx(199 / 140)
    assert seed_ratio("tpacket_v3") is None
    text = render_summary(results)
    assert "## Userspace receivers beside seed 003" in text
    row = next(line for line in text.splitlines() if line.startswith("| af_xdp@64 |"))
    assert row.endswith("| 0.52 | 4.00 | 6.18 |"), row  # 1300/2500, 10000/2500, 1359/220
    assert ("Order here: 64 B: af_xdp > tpacket_v3 > udp_recvmmsg > pf_lana > pf_packet > "
            "udp_recvfrom.") in text
    assert "AF_XDP > recvmmsg > simple socket" in text and "generic mode" in text
    assert "beside seed 003" not in render_summary({**results, "beside_receivers": None})
    pytest.importorskip("matplotlib")
    from lab.bench.plots import write_plots

    made = {p.name for p in write_plots(results, tmp_path)}
    assert "lana-beside-ebpf.png" in made and "fig6.4-pf-lana-vs-pf-packet.png" in made
    assert (tmp_path / "lana-beside-ebpf.png").stat().st_size > 10_000
