"""Grader of exercise 7: one specification, two filters. Host checks first (bpfc and
clang, no VM); then the XDP program is attached in vm2 (the verifier has its say), the
classic BPF filter is loaded into a LANA bpf block in vm1, and both are fed a corpus."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from lab.grading.bpf import Compiled
from lab.grading.checks import expect

if TYPE_CHECKING:
    from conftest import Remeasured, Report, Stacks, Verdicts, XdpObject


@pytest.mark.host
@pytest.mark.points(1)
def test_cbpf_filter_compiles(compiled_cbpf: Compiled) -> None:
    """filter.bpf compiles with bpfc (on the host, before any VM boots)"""
    expect(compiled_cbpf.ok, compiled_cbpf.error)


@pytest.mark.host
@pytest.mark.points(1)
def test_xdp_program_compiles(compiled_xdp: XdpObject) -> None:
    """filter.bpf.c compiles with clang -target bpf (on the host, before any VM boots)"""
    expect(compiled_xdp.path is not None, compiled_xdp.error)


@pytest.mark.points(2)
def test_xdp_program_passes_the_verifier(stacks: Stacks) -> None:
    """filter.bpf.c passes the kernel's verifier when attached (nothing stays attached if not)"""
    expect(stacks.left_attached is None,
           f"a refused program left eth0 with an XDP program: {stacks.left_attached}")
    expect(stacks.xdp_error is None, stacks.xdp_error or "")


def _graded(which: str, verdicts: Verdicts, error: str | None) -> None:
    from conftest import verdict_feedback

    problem = verdict_feedback(which, verdicts, error)
    expect(problem is None, problem or "")


@pytest.mark.points(4)
def test_cbpf_filter_gives_the_specified_verdicts(stacks: Stacks, verdicts: Verdicts) -> None:
    """filter.bpf in a LANA bpf block passes exactly ARP and IPv4 UDP to your port"""
    _graded("cbpf", verdicts, stacks.cbpf_error)


@pytest.mark.points(4)
def test_xdp_filter_gives_the_specified_verdicts(stacks: Stacks, verdicts: Verdicts) -> None:
    """filter.bpf.c at XDP passes exactly ARP and IPv4 UDP to your port"""
    error = stacks.xdp_error and ("not checked: your XDP program did not load (see the "
                                  "verifier check)")
    _graded("xdp", verdicts, error)


@pytest.mark.points(2)
def test_reported_ratio_matches_the_grader(report: Report,
                                           request: pytest.FixtureRequest) -> None:
    """report.toml (optional): your xdp_vs_lana agrees with the grader's measurement"""
    from conftest import TOLERANCE

    if not report.present:  # no VM needed, nothing measured
        pytest.skip("no report.toml: the measurement is optional")
    expect(report.problem is None, report.problem or "")
    remeasured: Remeasured | None = request.getfixturevalue("remeasured")
    assert remeasured is not None and report.ratio is not None
    expect(remeasured.problem is None, remeasured.problem or "")
    assert remeasured.ratio is not None
    tolerance = TOLERANCE[remeasured.clock]
    clock = "instruction" if remeasured.clock == "instructions" else "real"
    expect(abs(report.ratio - remeasured.ratio) <= tolerance,
           f"you report xdp_vs_lana = {report.ratio:g} ({report.ratio:.3f}); the grader "
           f"measured {remeasured.ratio:.3f} with the {clock} clock, on your two "
           f"filters with tools/measure.sh; accepted: within ±{tolerance:g}. Measure with "
           "measure.sh in a lab booted with `lanalab up --clock instructions` and copy its "
           "`ratio xdp_vs_lana` line")
