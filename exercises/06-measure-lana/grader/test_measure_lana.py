"""Grader of exercise 6: the figures in report.toml hang together (host checks, before any
VM boots), chain.sh builds vb -> fwd1 .. fwdN -> sink in vm1 and every frame reaches
sink, and the grader re-measures Linux, 1 block and N blocks on that chain and accepts
the student's ratios within a tolerance (absolute pps differ between machines and loads;
ratios measured side by side much less)."""

from __future__ import annotations

from typing import Any

import pytest

from lab.grading.apply import script_feedback
from lab.grading.checks import expect
from lab.grading.nodes import GuestNode
from lab.vm.qga import ExecResult

# Consistency of the report with itself: ratios rounded to 2 decimals are within 3 %.
RATIO_SLACK = 0.03
SLOPE_SLACK = 0.05  # or 2 ns, for slopes near zero
MIN_PPS = 1000  # below this, a figure is not packets per second (kpps? Mpps?)

# How far a reported ratio may be from the grader's re-measured one (absolute), with the
# instruction clock (exercise.toml; 1 ns per guest instruction under TCG). Measured (README,
# "Noise"), lanagen source, measure.sh's defaults, default topology, load 0.8-3.5 on 2
# shared cores: N = 10, 8 runs: the median over 8 rounds of lana1/linux was 0.9167..0.9171,
# of lana10/lana1 0.7778..0.7780 (rounds within a run 0.9165..0.9176 and 0.7777..0.7782);
# N = 6 and N = 12, 3 runs each: lana1/linux 0.9168..0.9170, lana6/lana1 0.8630..0.8631,
# lana12/lana1 0.7412..0.7413. The spread is a few ten-thousandths; what a truthful report
# differs by is its rounding to two decimals (up to 0.005), and ~0.001 between topologies
# and window lengths (notebook 06's bench topology, measure.sh 4 1.0). 0.015 covers that
# three times over, and is below the 0.018 by which the lanaN/lana1 of neighbouring chain
# lengths differ (N = 6..12), so the figures of another N fail, as do 1.0 for both
# (0.92 and 0.78 measured) and the thesis's 0.855 (0.86 only at N = 6, where 0.855 is not
# far from the truth). wrong/ has one submission for each.
TOLERANCE = {"lana1_vs_linux": 0.015, "lanaN_vs_lana1": 0.015}
# Under KVM the clock is real (qemu's -icount is TCG only) and rates move with the host's
# load. No KVM host was at hand to measure that; these are the wall-clock tolerances this
# grader had under TCG (pktgen source, load 4-5: medians of lana1/linux 0.69..0.81, of
# lana10/lana1 0.75..0.99, one CI run 1.18), an upper bound for a KVM guest.
TOLERANCE_REAL = {"lana1_vs_linux": 0.25, "lanaN_vs_lana1": 0.45}


@pytest.mark.host
@pytest.mark.points(1)
def test_report_has_every_figure(report: Any) -> None:
    """report.toml has every figure, as positive numbers (checked on the host)"""
    expect(report.problem is None, report.problem or "")


@pytest.mark.host
@pytest.mark.points(1)
def test_report_is_for_your_chain_length(report: Any, variant: dict[str, Any]) -> None:
    """report.toml is for your chain length N (checked on the host)"""
    expect(report.problem is None, f"fix report.toml first: {report.problem}")
    n = int(variant["blocks"])
    got = report.figures["blocks"]
    expect(got == n, f"report.toml says blocks = {got:g}, but your variant's chain has "
           f"N = {n} fwd blocks: build that chain, measure it and report it")


@pytest.mark.host
@pytest.mark.points(1)
def test_figures_are_packets_per_second(report: Any) -> None:
    """linux_pps, lana1_pps and lanaN_pps are in packets per second (checked on the host)"""
    expect(report.problem is None, f"fix report.toml first: {report.problem}")
    small = [f"{k} = {report.figures[k]:g}" for k in ("linux_pps", "lana1_pps", "lanaN_pps")
             if report.figures[k] < MIN_PPS]
    expect(not small, ", ".join(small) + f": below {MIN_PPS} packets per second, which even "
           "an emulated guest beats many times over; are these kpps? measure.sh prints "
           "packets per second: copy its figures as they are")


@pytest.mark.host
@pytest.mark.points(2)
def test_ratios_and_slope_follow_from_your_pps(report: Any) -> None:
    """the ratios and ns_per_block in report.toml follow from its pps figures (host)"""
    expect(report.problem is None, f"fix report.toml first: {report.problem}")
    f = report.figures
    wrong = []
    for key, upper, lower in (("lana1_vs_linux", "lana1_pps", "linux_pps"),
                              ("lanaN_vs_lana1", "lanaN_pps", "lana1_pps")):
        want = f[upper] / f[lower]
        if abs(f[key] - want) > RATIO_SLACK * want:
            wrong.append(f"{key} = {f[key]:g}, but {upper} / {lower} = {want:.3f}")
    slope = (1e9 / f["lanaN_pps"] - 1e9 / f["lana1_pps"]) / (f["blocks"] - 1)
    if abs(f["ns_per_block"] - slope) > max(SLOPE_SLACK * abs(slope), 2.0):
        wrong.append(f"ns_per_block = {f['ns_per_block']:g}, but (1e9 / lanaN_pps - 1e9 / "
                     f"lana1_pps) / (N - 1) = {slope:.1f} (time per packet grows by this "
                     "much with each block)")
    expect(not wrong, "report.toml does not agree with itself: " + "; ".join(wrong))


@pytest.mark.points(1)
def test_chain_sh_runs_to_the_end(chain: ExecResult) -> None:
    """chain.sh runs in vm1 without a failing command"""
    expect(chain.exit_code == 0, script_feedback(chain, "chain.sh"))


@pytest.mark.points(3)
def test_chain_is_vb_fwd1_to_fwdN_sink(chain_problem: str | None) -> None:
    """vb is hooked and carries fwd1 .. fwdN (your N) with the counter sink on top"""
    expect(chain_problem is None, chain_problem or "")


@pytest.mark.points(2)
def test_every_frame_reaches_sink(chain: ExecResult, vm1: GuestNode) -> None:
    """pktgen sends 2000 frames on va: sink counts every frame vb received"""
    from conftest import BURST, send_burst

    b = send_burst(vm1, BURST, 64)
    expect(b.vb_packets > 0, f"pktgen sent {b.sent} frames on va, but vb received none: "
           "are va and vb a veth pair (`ip link add name va type veth peer name vb`) "
           "and both up?")
    expect(b.sink_packets == b.vb_packets,
           f"vb received {b.vb_packets} frames, but sink counted {b.sink_packets}; "
           + ("nothing reached sink: is every block bound on the one below it, and sink "
              "on top of the last fwd block?" if b.sink_packets == 0 else
              "every frame that arrives on vb must pass the chain and reach sink once"))


def _ratio_check(report: Any, remeasured: Any, key: str, upper: str, lower: str,
                 what: str) -> None:
    from conftest import median

    expect(report.problem is None, f"fix report.toml first: {report.problem}")
    expect(remeasured.problem is None, remeasured.problem or "")
    ratios = remeasured.ratios(upper, lower)
    expect(ratios, "the grader's measurement gave no figures (see its log)")
    mine = median(ratios)
    yours = report.figures[key]
    rounds = ", ".join(f"{r:.3f}" for r in ratios)
    instructions = remeasured.clock == "instructions"
    tolerance = (TOLERANCE if instructions else TOLERANCE_REAL)[key]
    clock = ("with the instruction clock" if instructions else
             "with the real clock (KVM: no instruction clock)")
    expect(abs(yours - mine) <= tolerance,
           f"you report {key} = {yours:g} ({what}); the grader measured {mine:.3f} on "
           f"your chain {clock} (median of rounds {rounds}) and accepts +-{tolerance:g}. "
           + ("LANA cannot be faster than Linux receiving and dropping: it runs Linux's "
              "receive path up to the rx handler and then its own blocks. "
              if key == "lana1_vs_linux" and yours > 1 + tolerance else "")
           + "Measure again with measure.sh on your chain"
           + (" in a lab booted with `lanalab up --clock instructions`" if instructions else "")
           + " and report its medians.")


@pytest.mark.points(3)
def test_lana1_vs_linux_matches_the_grader(report: Any, remeasured: Any) -> None:
    """your lana1_vs_linux agrees with the grader's re-measurement"""
    _ratio_check(report, remeasured, "lana1_vs_linux", "lana1", "linux",
                 "LANA with 1 fwd block / Linux")


@pytest.mark.points(3)
def test_lanaN_vs_lana1_matches_the_grader(report: Any, remeasured: Any) -> None:
    """your lanaN_vs_lana1 agrees with the grader's re-measurement"""
    _ratio_check(report, remeasured, "lanaN_vs_lana1", "lanaN", "lana1",
                 "LANA with N fwd blocks / 1 fwd block")
