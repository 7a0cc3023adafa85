"""lab.bench.stats and lab.bench.plan: rates, side-by-side ratios, the chain slope."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from lab.bench.plan import DEFAULT, FULL, PLANS, QUICK, Point
from lab.bench.stats import (
    Sample,
    chain_slope,
    counted_packets,
    fit_line,
    median_pps,
    ns_per_packet,
    receive_only_ratio,
    side_by_side_ratio,
)


def sample(label: str, pps: float, round_no: int = 0, seconds: float = 2.0) -> Sample:
    name, _, size = label.partition("@")
    mode = "lana" if name.startswith("lana") else name
    blocks = int(name[4:]) if mode == "lana" else 0
    return Sample(label, mode, int(size), blocks, round_no, seconds, int(pps * seconds),
                  int(pps * seconds), int(pps * seconds))


def test_pps_is_packets_over_seconds() -> None:
    s = Sample("linux@64", "linux", 64, 0, 0, 1.5, 150_000, 0, 0)
    assert s.pps == pytest.approx(100_000)
    assert Sample("x", "linux", 64, 0, 0, 0.0, 5, 0, 0).pps == 0.0


def test_counted_packets_per_mode() -> None:
    assert counted_packets("lana", received=10, sent=11, counter=9, sniffed=0) == 9
    assert counted_packets("linux", received=10, sent=11, counter=9, sniffed=0) == 10
    assert counted_packets("sender", received=10, sent=11, counter=9, sniffed=0) == 11
    assert counted_packets("pf_packet", received=10, sent=11, counter=9, sniffed=7) == 7


def test_ratio_is_taken_inside_each_round() -> None:
    # the machine doubles its speed in round 1: per-round ratios stay 0.8 and 0.8
    samples = [sample("linux@64", 100e3, 0), sample("lana1@64", 80e3, 0),
               sample("linux@64", 200e3, 1), sample("lana1@64", 160e3, 1),
               sample("linux@64", 150e3, 2), sample("lana1@64", 120e3, 2)]
    assert side_by_side_ratio(samples, "lana1@64", "linux@64") == pytest.approx(0.8)
    # the ratio of the medians would be the same here; with an unpaired round it differs
    samples.append(sample("lana1@64", 10e3, 3))
    assert side_by_side_ratio(samples, "lana1@64", "linux@64") == pytest.approx(0.8)
    assert median_pps(samples)["lana1@64"] == pytest.approx(100e3)


def test_ratio_without_reference_is_nan() -> None:
    assert math.isnan(side_by_side_ratio([sample("lana1@64", 1e3)], "lana1@64", "linux@64"))


def test_receive_only_ratio_takes_the_sender_out() -> None:
    # sender 1000 ns, Linux 1000+1000 ns, LANA 1000+2000 ns per packet
    ratio = receive_only_ratio(pps=1e9 / 3000, reference_pps=1e9 / 2000, sender_pps=1e9 / 1000)
    assert ratio == pytest.approx(0.5)
    assert math.isnan(receive_only_ratio(1e3, 1e3, 0.0))
    assert ns_per_packet(2e6) == pytest.approx(500)


def test_fit_line_exact_and_r2() -> None:
    fit = fit_line([1, 2, 3, 4], [12, 14, 16, 18])
    assert (fit.slope, fit.intercept, fit.r2, fit.points) == (2, 10, 1.0, 4)
    noisy = fit_line([1, 2, 3, 4], [12, 15, 15, 18])
    assert noisy.slope == pytest.approx(1.8) and 0 < noisy.r2 < 1
    with pytest.raises(ValueError):
        fit_line([1], [2])
    with pytest.raises(ValueError):
        fit_line([3, 3], [1, 2])


def test_chain_slope_is_ns_per_block() -> None:
    # time per packet 5000 ns + 200 ns per block, two rounds with some noise
    samples = []
    for r, jitter in enumerate((0.98, 1.02)):
        for n in (1, 2, 5, 10, 50):
            samples.append(sample(f"lana{n}@64", 1e9 / ((5000 + 200 * n) * jitter), r))
    samples.append(sample("linux@64", 1e9 / 4000))
    samples.append(sample("lana1@1518", 1e3))  # other sizes do not enter the fit
    fit = chain_slope(samples, 64)
    assert fit is not None
    assert fit.slope == pytest.approx(200, rel=0.01)
    assert fit.intercept == pytest.approx(5000, rel=0.01)
    assert fit.points == 5 and fit.r2 > 0.999
    assert chain_slope([sample("lana1@64", 1e5)]) is None


def test_plans_cover_the_brief() -> None:
    assert set(PLANS) == {"quick", "default", "full", "engines"}  # engines: test_bench_engines
    full_chain = set(FULL.chain_blocks)
    assert set(range(1, 11)) <= full_chain and set(range(10, 51, 5)) <= full_chain
    assert FULL.sizes[-1] == 1518 and FULL.rounds >= 7
    assert QUICK.estimate_seconds() < 90
    assert DEFAULT.estimate_seconds() < 275  # 252 s before the three cBPF points
    for plan in PLANS.values():
        assert plan.source == "lanagen" and plan.clock == "instructions"
        assert plan.series()[0][0] == Point("linux", 64)
        assert replace(plan, source="pktgen").series()[0][:2] == [Point("sender", 64),
                                                                  Point("linux", 64)]
        assert plan.max_blocks == max(plan.chain_blocks or plan.engine_blocks)
    assert all(p.mode != "sender" for group in DEFAULT.series() for p in group)


def test_rounds_alternate_direction() -> None:
    order = QUICK.rounds_order()
    assert len(order) == QUICK.rounds
    assert order[1] == order[0][::-1]
    labels = [p.label for p in order[0]]
    assert len(labels) == len(set(labels))
    assert "lana10@64" in labels and "pf_lana@64" in labels


def test_target_points_are_measured_next_to_each_other() -> None:
    labels = [p.label for p in DEFAULT.series()[0]]
    assert labels[:3] == ["linux@64", "lana1@64", "lana10@64"]
    assert sorted(labels[3:], key=lambda x: int(x[4:-3])) == labels[3:]


def test_instruction_clock_shortens_the_windows_a_real_clock_keeps_them() -> None:
    timed = DEFAULT.for_clock("instructions")
    assert (timed.warmup, timed.seconds, timed.clock) == (0.2, 0.5, "instructions")
    real = DEFAULT.for_clock("real")  # e.g. KVM, where -icount does not exist
    assert (real.warmup, real.seconds, real.clock) == (DEFAULT.warmup, DEFAULT.seconds, "real")
    assert timed.series() == DEFAULT.series()
