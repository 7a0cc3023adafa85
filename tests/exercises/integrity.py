"""Integrity of the graded exercises (shared by test_integrity_wall_clock.py and
test_integrity_instruction_clock.py, one per guest clock, so that pytest-xdist can run
them side by side): for every exercise, the reference solution passes
every check (hidden ones included), the untouched starter fails, and every wrong solution
in wrong/<name>/ fails the check its expect.toml names, with feedback that names the
mistake (graded on that check and the checks of its `fails` list alone, which must be
exactly the ones that fail, to keep the suite's time down). One lab is booted for the
whole module and every submission is graded on it; the graders reset the guests' LANA
state in between (checked here). A submission that leaves a guest beyond reset (a kernel
crash, a block whose bookkeeping holds LANA in place) must say so in its expect.toml; the
suite then reboots just that VM.

Each test file grades the exercises of one guest clock (exercise.toml `clock`: exercises
6 and 7 measure with the instruction clock) on one lab booted with it. expect.toml may
also carry `fails` (the exact list of checks that must fail, no more) and
`clock = "instructions"` (a mistake only the instruction clock can catch: under KVM, whose
clock is real, that case is skipped).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.grading.engine import GradeResult, grade
from lab.grading.exercise import Exercise, list_exercises
from lab.grading.lifecycle import restart_vm, unusable_guests
from lab.image.store import ImageInfo
from lab.labrun import LabRun

EXERCISES = list_exercises()


def cases(clock: str) -> list:
    """The solution, the starter and every wrong submission of the exercises graded with
    `clock` ("real" or "instructions")."""
    cases = []
    for ex in (ex for ex in EXERCISES if ex.clock == clock):
        cases.append(pytest.param(ex, "solution", id=f"{ex.name}-solution"))
        cases.append(pytest.param(ex, "starter", id=f"{ex.name}-starter"))
        for wrong in ex.wrong_solutions():
            cases.append(pytest.param(ex, f"wrong/{wrong.name}",
                                      id=f"{ex.name}-wrong-{wrong.name}"))
    return cases


class Labs:
    """The module's one lab, booted with its clock at first use, every submission graded
    on it."""

    def __init__(self, image: ImageInfo, clock: str) -> None:
        self.image, self.clock = image, clock
        self.current: LabRun | None = None

    def get(self, clock: str) -> LabRun:
        from lab.labrun import icount_for
        from lab.topology.loader import load_topology

        assert clock == self.clock, f"this module's lab has the {self.clock} clock, not {clock}"
        if self.current is None:
            self.current = LabRun(load_topology("default"), self.image, share=None,
                                  icount_shift=icount_for(clock))
            self.current.up()
        return self.current

    def close(self) -> None:
        if self.current is not None:
            lab, self.current = self.current, None
            lab.down()


def module_labs(image: ImageInfo, clock: str) -> Iterator[Labs]:
    """The body of each test module's `labs` fixture: its lab, taken down at the end."""
    topologies = {ex.topology for ex in EXERCISES}
    assert topologies == {"default"}, "the suite boots one lab per clock: all exercises share it"
    labs = Labs(image, clock)
    try:
        yield labs
    finally:
        labs.close()


def lab_clock(lab: LabRun) -> str:
    """"instructions" if every VM got the instruction clock, else "real" (KVM)."""
    clocks = {lab.clock_of(vm) for vm in lab.vms.values()}
    return "instructions" if clocks == {"instructions"} else "real"


def _report(result: GradeResult) -> str:
    return (result.outputs["report"].read_text() + "\n--- pytest log (tail) ---\n"
            + result.log[-2500:])


def _reboot_unusable(lab: LabRun) -> dict[str, str]:
    """Guests the grader could not leave clean, rebooted so the next submission runs."""
    assert lab.run is not None
    broken = unusable_guests(lab.run.id)
    for name in broken:
        restart_vm(lab, name)
    return broken


def student_variant_changes_what_must_pass(labs: Labs, tmp_path: Path) -> None:
    """The reference filters are written for the default variant: graded for a student
    whose ports and VLAN differ, they must fail, and the feedback names that student's
    parameters."""
    exercise = next(ex for ex in EXERCISES if ex.name == "03-bpf-filtering")
    lab = labs.get(exercise.clock)
    assert lab.run is not None
    student = "s1234567"
    variant = exercise.variant(student)
    assert variant != exercise.variant(None)
    result = grade(exercise, exercise.path / "solution", run_id=lab.run.id, student=student,
                   out_dir=tmp_path)
    assert result.variant == variant
    assert result.check("test_arp_filter_passes_exactly_arp")["status"] == "pass"
    vlan = result.check("test_vlan_filter_passes_exactly_your_vlan")
    assert vlan["status"] == "fail" and f"802.1Q VLAN {variant['vlan_id']}: passed 0" in \
        vlan["feedback"], _report(result)
    index = result.check("test_index_filter_passes_exactly_tcp_to_your_port")
    assert index["status"] == "fail" and f"TCP to port {variant['tcp_port']}" in \
        index["feedback"], _report(result)
    assert f"student {student}" in result.outputs["report"].read_text()


def grade_and_check(exercise: Exercise, kind: str, labs: Labs, tmp_path: Path) -> None:
    """Grade `kind` of `exercise` on the module's lab and check the result against the
    expectation: every check passes (solution), something fails (starter), or exactly the
    named check fails with the named feedback (wrong/<name>)."""
    lab = labs.get(exercise.clock)
    assert lab.run is not None
    clock = lab_clock(lab)
    if exercise.clock == "instructions":  # TCG gives it; under KVM the clock stays real
        accels = {vm.describe().get("accel") for vm in lab.vms.values()}
        assert clock == "instructions" or accels == {"kvm"}, (clock, accels)
    expected = {}
    if kind.startswith("wrong/"):
        with open(exercise.path / kind / "expect.toml", "rb") as f:
            expected = tomllib.load(f)
        if expected.get("clock") == "instructions" and clock != "instructions":
            pytest.skip(f"{kind}: only the instruction clock catches it; this lab's is {clock}")
    # hidden checks for the reference only: they must pass there; wrong ones fail earlier.
    # A wrong submission is graded on the checks it must fail (its named check, and the
    # `fails` list when it has one): the reference's grade shows every check can pass.
    only = sorted({expected["check"], *expected.get("fails", [])}) if expected else None
    result = grade(exercise, exercise.path / kind, run_id=lab.run.id,
                   hidden=kind == "solution", out_dir=tmp_path, only=only)
    for name in ("report", "score", "junit"):
        assert result.outputs[name].is_file(), f"no {name} written"
    broken = _reboot_unusable(lab)
    may_break = expected.get("status") == "crash" or expected.get("leaves_guest_unclean")
    assert not broken or may_break, f"{kind} left guests unclean: {broken}"
    if kind == "solution":
        assert result.passed and result.score == result.max_score, _report(result)
        assert any(c["hidden"] for c in result.checks), "hidden checks did not run"
        return
    assert not result.passed and result.score < result.max_score, _report(result)
    if kind == "starter":
        return
    check = result.check(expected["check"])
    assert check["status"] == expected.get("status", "fail"), _report(result)
    if "fails" in expected:  # exactly these checks fail, every other one passes
        failed = sorted(c["check"] for c in result.checks if c["status"] != "pass")
        assert failed == sorted(expected["fails"]), f"{kind}: failed {failed}\n{_report(result)}"
    for text in [expected["message"], *expected.get("also", [])]:
        assert text in check["feedback"], (
            f"{kind}: {expected['check']} failed, but its feedback does not say "
            f"{text!r}:\n{_report(result)}")
