"""Integrity of the graded exercises: for every exercise, the reference solution passes
every check (hidden ones included), the untouched starter fails, and every wrong solution
in wrong/<name>/ fails the check its expect.toml names, with feedback that names the
mistake. One lab is booted for the whole module and every submission is graded on it;
the graders reset the guests' LANA state in between (checked here too).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.grading.engine import GradeResult, grade
from lab.grading.exercise import Exercise, list_exercises
from lab.grading.nodes import LabNodes

pytestmark = [pytest.mark.vm, pytest.mark.slow]

EXERCISES = list_exercises()


def _cases() -> list:
    cases = []
    for ex in EXERCISES:
        cases.append(pytest.param(ex, "solution", id=f"{ex.name}-solution"))
        cases.append(pytest.param(ex, "starter", id=f"{ex.name}-starter"))
        for wrong in ex.wrong_solutions():
            cases.append(pytest.param(ex, f"wrong/{wrong.name}",
                                      id=f"{ex.name}-wrong-{wrong.name}"))
    return cases


@pytest.fixture(scope="module")
def lab_run(image) -> Iterator[str]:
    from lab.labrun import LabRun
    from lab.topology.loader import load_topology

    topologies = {ex.topology for ex in EXERCISES}
    assert topologies == {"default"}, "the suite boots one lab: all exercises share it"
    lab = LabRun(load_topology("default"), image, share=None)
    lab.up()
    try:
        assert lab.run is not None
        yield lab.run.id
    finally:
        lab.down()


def _report(result: GradeResult) -> str:
    return (result.outputs["report"].read_text() + "\n--- pytest log (tail) ---\n"
            + result.log[-2500:])


def _assert_guests_reset(run_id: str) -> None:
    nodes = LabNodes.attach(run_id)
    for guest in nodes.vms.values():
        left = guest.run("cat /proc/net/lana/fblocks 2>/dev/null; grep '^lana ' /proc/modules")
        assert left.stdout.strip() == "", f"{guest.name} not reset: {left.stdout}"


@pytest.mark.parametrize(("exercise", "kind"), _cases())
def test_submission(exercise: Exercise, kind: str, lab_run: str, tmp_path: Path) -> None:
    # hidden checks for the reference only: they must pass there; wrong ones fail earlier
    result = grade(exercise, exercise.path / kind, run_id=lab_run, hidden=kind == "solution",
                   out_dir=tmp_path)
    for name in ("report", "score", "junit"):
        assert result.outputs[name].is_file(), f"no {name} written"
    _assert_guests_reset(lab_run)
    if kind == "solution":
        assert result.passed and result.score == result.max_score, _report(result)
        assert any(c["hidden"] for c in result.checks), "hidden checks did not run"
        return
    assert not result.passed and result.score < result.max_score, _report(result)
    if kind == "starter":
        return
    with open(exercise.path / kind / "expect.toml", "rb") as f:
        expected = tomllib.load(f)
    check = result.check(expected["check"])
    assert check["status"] == expected.get("status", "fail"), _report(result)
    assert expected["message"] in check["feedback"], (
        f"{kind}: {expected['check']} failed, but its feedback does not say "
        f"{expected['message']!r}:\n{_report(result)}")
