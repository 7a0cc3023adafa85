"""Class grading without VMs: roster, identical submissions, gradebook CSV/JSON, the
summary page, the progress line, and rows for submissions the grader could not grade."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from lab.errors import GradingError
from lab.grading.classroom.batch import BatchOptions, BatchState, grade_one
from lab.grading.classroom.duplicates import identical_groups, normalised
from lab.grading.classroom.gradebook import write_gradebook
from lab.grading.classroom.html import histogram_svg, render_summary
from lab.grading.classroom.progress import Progress
from lab.grading.classroom.roster import Student, discover
from lab.grading.exercise import find_exercise

ROWS = [
    {"id": "b2", "name": "Bo", "email": "bo@x", "status": "graded", "note": "", "score": 3,
     "max_score": 3, "checks": {"test_a": 1, "test_b": 2}, "max_checks": {"test_a": 1,
                                                                        "test_b": 2},
     "seconds": 30.0},
    {"id": "a1", "name": "", "email": "", "status": "crash", "score": 1, "max_score": 3,
     "note": "test_b: the guest kernel crashed: BUG: kernel NULL pointer dereference",
     "checks": {"test_a": 1, "test_b": 0}, "max_checks": {"test_a": 1, "test_b": 2},
     "seconds": 80.0},
    {"id": "c3", "name": "", "email": "", "status": "timeout", "score": 0, "max_score": 0,
     "note": "no grade: the grader ran longer than 600 s (a hang)", "checks": {},
     "seconds": 600.0},
]


def test_roster_names_students_by_folder_and_adds_names(tmp_path: Path) -> None:
    for s in ("s2", "s1", ".git"):
        (tmp_path / s).mkdir()
    (tmp_path / "roster.csv").write_text("id,name,email\ns1,Ada Lovelace,ada@example.org\n")
    students = discover(tmp_path)
    assert [s.id for s in students] == ["s1", "s2"]
    assert (students[0].name, students[0].email) == ("Ada Lovelace", "ada@example.org")
    assert students[1].name == ""


def test_identical_submissions_ignore_whitespace_and_comments(tmp_path: Path) -> None:
    for sid, text in (("a", "ldh [12]\n  ret #0\n"), ("b", "# mine\nldh  [12]\n\nret #0"),
                      ("c", "ldh [14]\n"), ("d", "")):
        (tmp_path / sid).mkdir()
        if text:
            (tmp_path / sid / "f.bpf").write_text(text)
    students = [Student(p.name, p) for p in sorted(tmp_path.iterdir())]
    assert identical_groups(students) == [["a", "b"]]
    assert normalised(b"  x   y \n// c\n") == b"x y"


def test_gradebook_csv_has_one_row_per_student_and_one_column_per_check(
        tmp_path: Path) -> None:
    csv_path, json_path = write_gradebook(ROWS, tmp_path)
    rows = list(csv.reader(io.StringIO(csv_path.read_text())))
    assert rows[0] == ["Student ID", "Name", "Email", "test_a", "test_b", "Total", "Max",
                       "Status", "Note"]
    assert rows[1][:8] == ["a1", "", "", "1", "0", "1", "3", "crash"]
    assert "NULL pointer" in rows[1][8]
    assert rows[3][:8] == ["c3", "", "", "0", "0", "0", "3", "timeout"]
    book = json.loads(json_path.read_text())
    assert book["max_score"] == 3 and len(book["students"]) == 3


def test_summary_page_has_rates_histogram_crashes_and_identical() -> None:
    page = render_summary("04-write-a-block", ROWS, [["a1", "b2"]])
    assert "<svg" in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"',
                                                          "")
    assert "1/3 (33%)" in page  # test_b: full marks for b2 only
    assert "NULL pointer" in page and "timeout" in page
    assert "a1, b2" in page
    assert histogram_svg([0, 3, 3], 3).count("<rect") == 4


def test_progress_line_counts_and_eta() -> None:
    out = io.StringIO()
    progress = Progress(4, 2, stream=out)
    progress.start("a")
    progress.start("b")
    progress.finish("a", "graded", "3/3")
    progress.finish("b", "crash", "1/3")
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("[class] 2/4 done, 0 running, 1 failed, ETA ")
    assert "b: 1/3 (crash)" in last


def test_a_grader_that_hangs_or_cannot_run_is_that_students_row_only(
        tmp_path: Path) -> None:
    exercise = find_exercise("1")
    student = Student("s9", tmp_path)

    def hangs(*args: object, **kwargs: object) -> object:
        raise GradingError("the grader of 01-first-stack ran longer than 5 s")

    row = grade_one(exercise, student, "lab0000", tmp_path / "out",
                    BatchOptions(jobs=1, time_limit=5), grade=hangs)
    assert row["status"] == "timeout" and "longer than 5 s" in row["note"]
    folder = tmp_path / "out" / "students" / "s9"
    assert json.loads((folder / "score.json").read_text())["status"] == "timeout"
    assert "<error" in (folder / "junit.xml").read_text()
    state = BatchState.load(tmp_path / "out", exercise.name)
    state.finish(row)
    again = BatchState.load(tmp_path / "out", exercise.name)
    assert again.rows["s9"]["status"] == "timeout"


def test_summary_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    """The page as a browser shows it: Debian's chromium, headless, screenshot and DOM."""
    import shutil
    import subprocess

    import pytest

    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (scripts/host-packages.txt lists it)")
    page = tmp_path / "summary.html"
    page.write_text(render_summary("04-write-a-block", ROWS, [["a1", "b2"]]))
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--window-size=1200,900"]
    shot = tmp_path / "summary.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "<svg" in dom and "rect" in dom and "NULL pointer" in dom and "a1, b2" in dom
