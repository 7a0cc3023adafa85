"""Grading parts that need no VM: exercise layout, variants, bpfc on the host, the
fast-feedback path (a filter that does not compile fails before any VM boots), reports."""

from __future__ import annotations

import json
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.errors import GradingError, LabError
from lab.grading.bpf import compile_filter
from lab.grading.engine import GradeResult, grade
from lab.grading.exercise import Exercise, find_exercise, list_exercises
from lab.grading.report import render_report

EXERCISES = list_exercises()


def test_exercises_are_complete() -> None:
    assert [e.name for e in EXERCISES] == ["01-first-stack", "02-tee-and-counters",
                                           "03-bpf-filtering", "04-write-a-block",
                                           "05-voice-live-change", "06-measure-lana",
                                           "07-one-filter-two-ways",
                                           "08-autonomic-stack"]
    for ex in EXERCISES:
        for part in ("README.md", "starter", "solution", "grader", "hidden"):
            assert (ex.path / part).exists(), f"{ex.name}: no {part}"
        assert len(ex.wrong_solutions()) >= 5, f"{ex.name}: fewer than 5 wrong solutions"
        for wrong in ex.wrong_solutions():
            with open(wrong / "expect.toml", "rb") as f:
                expected = tomllib.load(f)
            assert expected["check"].startswith("test_") and expected["message"]


def test_exercises_6_and_7_are_graded_with_the_instruction_clock_the_others_with_the_real() -> None:
    clocks = {e.name: e.clock for e in EXERCISES}
    assert clocks.pop("06-measure-lana") == "instructions"
    assert clocks.pop("07-one-filter-two-ways") == "instructions"  # report.toml's ratio
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


def test_only_runs_the_named_checks_and_refuses_unknown_names(tmp_path: Path) -> None:
    """`lanalab grade --only`: host checks alone need no VM; a name the grader does not
    have is an error that lists the names it has, not an empty (passing) grade."""
    ex = find_exercise("3")
    result = grade(ex, ex.path / "wrong/arp-syntax-error", out_dir=tmp_path, timeout=120,
                   only=["test_udp_bpf_compiles", "test_arp_bpf_compiles"])
    assert sorted(c["check"] for c in result.checks) == ["test_arp_bpf_compiles",
                                                         "test_udp_bpf_compiles"]
    assert not result.passed and result.score == 1 and result.max_score == 2
    with pytest.raises(GradingError, match="ran no check named test_nosuch") as info:
        grade(ex, ex.path / "solution", out_dir=tmp_path / "2", timeout=120,
              only=["test_nosuch"])
    assert "test_vlan_bpf_compiles" in str(info.value)


def test_report_shows_feedback_of_failures_only() -> None:
    result = GradeResult("x", "s1", {"udp_port": 53}, [
        {"check": "test_a", "title": "a works", "hidden": False, "max_points": 2,
         "points": 2, "status": "pass", "feedback": ""},
        {"check": "test_b", "title": "b works", "hidden": True, "max_points": 3,
         "points": 0, "status": "crash", "feedback": "the guest kernel crashed: BUG"}], 1)
    text = render_report(result)
    assert "score: 2 / 5" in text and "udp_port=53" in text
    assert "CRASH 0/3  b works [hidden]" in text and "the guest kernel crashed" in text


def test_exercise_7_files_compile_where_they_should() -> None:
    """The reference and every wrong submission compile on the host (with bpfc and clang)
    except the one whose mistake is a C syntax error: the integrity suite's cases then
    fail where their expect.toml says, not earlier."""
    from lab.ebpf.compile import compile_program

    ex = find_exercise("7")
    for folder in [ex.folder("solution"), ex.folder("starter"), *ex.wrong_solutions()]:
        assert compile_filter(folder / "filter.bpf").ok, folder
        if folder.name == "xdp-clang-error":
            with pytest.raises(LabError, match="filter.bpf.c:23: error"):
                compile_program(folder / "filter.bpf.c")
        else:
            assert compile_program(folder / "filter.bpf.c").path.is_file(), folder


def test_exercise_7_variant_is_a_udp_port_per_student() -> None:
    ex = find_exercise("7")
    assert ex.variant(None) == {"udp_port": 5353}
    assert ex.variant("s1234567") == ex.variant(" S1234567 ")
    ports = {ex.variant(f"student{i}")["udp_port"] for i in range(30)}
    assert len(ports) > 5


def test_exercise_7_clang_error_fails_before_any_vm_boots(tmp_path: Path) -> None:
    """clang's complaint is the feedback, with the file's name (not the grader's path),
    and no VM boots: the checks that need one are not run."""
    ex = find_exercise("7")
    result = grade(ex, ex.path / "wrong/xdp-clang-error", out_dir=tmp_path, timeout=120)
    assert result.check("test_cbpf_filter_compiles")["status"] == "pass"
    failed = result.check("test_xdp_program_compiles")
    assert failed["status"] == "fail"
    assert "filter.bpf.c: filter.bpf.c:23: error: expected ';'" in failed["feedback"]
    assert str(ex.path) not in failed["feedback"]
    live = result.check("test_xdp_program_passes_the_verifier")
    assert live["status"] == "fail" and "not run: fix the host-side checks first" in \
        live["feedback"]
    assert result.score == 3 and result.max_score == 14  # 1 + the optional report's 2
