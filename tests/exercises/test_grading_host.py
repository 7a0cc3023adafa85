"""Grading parts that need no VM: exercise layout, variants, bpfc on the host, the
fast-feedback path (a filter that does not compile fails before any VM boots), reports."""

from __future__ import annotations

import json
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.errors import GradingError
from lab.grading.bpf import compile_filter
from lab.grading.engine import GradeResult, grade
from lab.grading.exercise import Exercise, find_exercise, list_exercises
from lab.grading.report import render_report

EXERCISES = list_exercises()


def test_exercises_are_complete() -> None:
    assert [e.name for e in EXERCISES] == ["01-first-stack", "02-tee-and-counters",
                                           "03-bpf-filtering", "04-write-a-block",
                                           "05-voice-live-change", "06-measure-lana"]
    for ex in EXERCISES:
        for part in ("README.md", "starter", "solution", "grader", "hidden"):
            assert (ex.path / part).exists(), f"{ex.name}: no {part}"
        assert len(ex.wrong_solutions()) >= 5, f"{ex.name}: fewer than 5 wrong solutions"
        for wrong in ex.wrong_solutions():
            with open(wrong / "expect.toml", "rb") as f:
                expected = tomllib.load(f)
            assert expected["check"].startswith("test_") and expected["message"]


def test_exercise_6_is_graded_with_the_instruction_clock_the_others_with_the_real() -> None:
    clocks = {e.name: e.clock for e in EXERCISES}
    assert clocks.pop("06-measure-lana") == "instructions"
    assert set(clocks.values()) == {"real"}
    with pytest.raises(GradingError, match="cycles"):
        _ = Exercise(Path("99-x"), {"clock": "cycles"}).clock


@pytest.mark.parametrize("name", ["1", "01", "first-stack", "01-first-stack"])
def test_find_exercise_by_number_slug_or_name(name: str) -> None:
    assert find_exercise(name).name == "01-first-stack"


def test_variants_are_stable_per_student_and_differ_between_students() -> None:
    ex = find_exercise("3")
    assert ex.variant(None) == {"udp_port": 5353, "tcp_port": 8080, "vlan_id": 42}
    assert ex.variant("s1234567") == ex.variant(" S1234567 ")
    variants = {json.dumps(ex.variant(f"student{i}"), sort_keys=True) for i in range(20)}
    assert len(variants) > 10


def test_reference_filters_compile_and_the_broken_one_does_not() -> None:
    ex = find_exercise("3")
    for name in ("arp", "udp", "vlan", "index"):
        assert compile_filter(ex.path / "solution" / f"{name}.bpf").ok
    broken = compile_filter(ex.path / "wrong/arp-syntax-error/arp.bpf")
    assert not broken.ok and "line 3" in broken.error


def test_filter_that_does_not_compile_fails_before_any_vm_boots(tmp_path: Path) -> None:
    """No run id and no root needed: the host checks fail, so the grader never boots."""
    ex = find_exercise("3")
    result = grade(ex, ex.path / "wrong/arp-syntax-error", out_dir=tmp_path, timeout=120)
    assert result.check("test_arp_bpf_compiles")["status"] == "fail"
    assert result.check("test_udp_bpf_compiles")["status"] == "pass"
    live = result.check("test_arp_filter_passes_exactly_arp")
    assert live["status"] == "fail" and "not run: fix the host-side checks first" in \
        live["feedback"]
    score = json.loads(result.outputs["score"].read_text())
    assert score["score"] == 3 and score["max_score"] == 17
    suite = ET.parse(result.outputs["junit"]).getroot()
    assert int(suite.find("testsuite").get("failures", "0")) + \
        int(suite.find("testsuite").get("errors", "0")) >= 1
    assert "FAIL  0/1  arp.bpf compiles" in result.outputs["report"].read_text()


def test_report_shows_feedback_of_failures_only() -> None:
    result = GradeResult("x", "s1", {"udp_port": 53}, [
        {"check": "test_a", "title": "a works", "hidden": False, "max_points": 2,
         "points": 2, "status": "pass", "feedback": ""},
        {"check": "test_b", "title": "b works", "hidden": True, "max_points": 3,
         "points": 0, "status": "crash", "feedback": "the guest kernel crashed: BUG"}], 1)
    text = render_report(result)
    assert "score: 2 / 5" in text and "udp_port=53" in text
    assert "CRASH 0/3  b works [hidden]" in text and "the guest kernel crashed" in text
