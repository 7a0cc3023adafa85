"""`lanalab grade N --class DIR` on real labs: a generated class for exercises 3 and 4
(references, starters, wrong submissions, a block that crashes the guest kernel, an empty
folder, a folder of garbage), its gradebook rows checked exactly against grading each
folder singly; and a batch killed with SIGKILL half-way, then run again: every student
graded exactly once, nothing left after `lanalab clean`."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.grading.engine import grade
from lab.grading.exercise import Exercise, find_exercise
from lab.grading.lifecycle import restart_vm, unusable_guests
from lab.labrun import LabRun
from lab.runstate import process_matches, run_base_dir

pytestmark = [pytest.mark.vm, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
LANALAB = [sys.executable, "-m", "lab.cli"]


def make_class(exercise: Exercise, root: Path, kinds: dict[str, str]) -> Path:
    """student id -> what to copy: solution, starter, wrong/<name>, empty, garbage."""
    root.mkdir(parents=True)
    for student, kind in kinds.items():
        folder = root / student
        if kind == "empty":
            folder.mkdir()
        elif kind == "garbage":
            folder.mkdir()
            (folder / "fb_sampler.c").write_bytes(os.urandom(4000))
            for name in ("stack.sh", "arp.bpf", "udp.bpf"):
                (folder / name).write_bytes(os.urandom(700))
            (folder / "core.bin").write_bytes(os.urandom(300_000))  # over the size limit
        else:
            shutil.copytree(exercise.path / kind, folder)
            (folder / "expect.toml").unlink(missing_ok=True)
    (root / "roster.csv").write_text("id,name,email\n" + "".join(
        f"{s},Student {s},{s}@example.org\n" for s in kinds))
    return root


def class_grade(exercise: Exercise, class_dir: Path, out: Path, *extra: str,
                timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LANALAB, "grade", exercise.name, "--class", str(class_dir),
                           "--out", str(out), *extra], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv", newline="") as f:
        return {row["Student ID"]: row for row in csv.DictReader(f)}


# exercise 3: per-student variants (the reference fails a student's own ports), a filter
# that does not compile (failed on the host), empty and garbage folders; exercise 4: a
# compile error, a guest crash, copies. Each VM-graded row costs two gradings, so few.
EX3 = {"s3ref": "solution", "s3syntax": "wrong/arp-syntax-error", "s3empty": "empty",
       "s3junk": "garbage"}
EX4 = {"s4ref": "solution", "s4copy": "solution", "s4start": "starter",
       "s4lic": "wrong/no-license", "s4crash": "wrong/state-not-allocated",
       "s4empty": "empty", "s4junk": "garbage"}


@pytest.mark.parametrize(("number", "kinds"), [("3", EX3), ("4", EX4)], ids=["ex3", "ex4"])
def test_class_gradebook_matches_single_grading(number: str, kinds: dict[str, str],
                                                tmp_path: Path, image) -> None:
    exercise = find_exercise(number)
    class_dir = make_class(exercise, tmp_path / "class", kinds)
    out = tmp_path / "grades"
    started = time.monotonic()
    proc = class_grade(exercise, class_dir, out, "--jobs", "2")
    batch_s = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done" in proc.stdout and "ETA" in proc.stdout
    book = gradebook(out)
    assert sorted(book) == sorted(kinds)
    for name in ("gradebook.json", "summary.html"):
        assert (out / name).is_file()
    # the same folders graded one by one, with the same student ids, on one lab
    from lab.labrun import icount_for
    from lab.topology.loader import load_topology

    lab = LabRun(load_topology(exercise.topology), image, share=None,
                 icount_shift=icount_for(exercise.clock))
    lab.up()
    try:
        assert lab.run is not None
        for student in sorted(kinds):
            single = grade(exercise, class_dir / student, run_id=lab.run.id, student=student,
                           hidden=True, out_dir=tmp_path / "single" / student, timeout=600)
            for name in unusable_guests(lab.run.id):
                restart_vm(lab, name)
            row = book[student]
            for check in single.checks:
                assert int(row[check["check"]]) == check["points"], (student, check, row)
            assert int(row["Total"]) == single.score and int(row["Max"]) == single.max_score
            if kinds[student] == "garbage":  # a clean failure, not a grader error
                assert {c["status"] for c in single.checks} == {"fail"}, single.checks
                assert any("plain" in c["feedback"] and "text" in c["feedback"]
                           for c in single.checks), single.checks
            crashed = any(c["status"] == "crash" for c in single.checks)
            assert (row["Status"] == "crash") == crashed, (student, row)
            for part in ("report.txt", "score.json", "junit.xml"):
                assert (out / "students" / student / part).is_file()
            assert json.loads((out / "students" / student / "score.json").read_text())[
                "score"] == single.score
    finally:
        lab.down()
    if "s4ref" in kinds:
        assert int(book["s4ref"]["Total"]) == int(book["s4ref"]["Max"])
        assert book["s4crash"]["Status"] == "crash"
        assert "BUG: kernel NULL pointer dereference" in book["s4crash"]["Note"]
        assert "s4copy, s4ref" in (out / "summary.html").read_text()
    print(f"class of {len(kinds)} graded in {batch_s:.0f} s")


def _live_runs(run_ids: list[str]) -> list[str]:
    return [r for r in run_ids if (run_base_dir() / r).is_dir()]


def test_sigkill_half_way_then_rerun_grades_everyone_once(tmp_path: Path, image) -> None:
    exercise = find_exercise("3")
    kinds = {f"k{i}": kind for i, kind in enumerate(
        ["solution", "starter", "wrong/arp-syntax-error", "empty", "garbage",
         "wrong/udp-wrong-port"])}
    class_dir = make_class(exercise, tmp_path / "class", kinds)
    out = tmp_path / "grades"
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115 - closed below
    batch = subprocess.Popen([*LANALAB, "grade", "3", "--class", str(class_dir), "--out",
                              str(out), "--jobs", "2"], cwd=REPO_ROOT, stdout=log,
                             stderr=subprocess.STDOUT)
    state = out / "batch.json"
    deadline = time.monotonic() + 600
    first: dict = {}
    while time.monotonic() < deadline and batch.poll() is None:
        if state.is_file():
            first = json.loads(state.read_text())
            if len(first["students"]) >= 2:
                break
        time.sleep(0.2)
    assert batch.poll() is None, "the batch finished before it could be killed"
    batch.send_signal(signal.SIGKILL)
    batch.wait()
    log.close()
    first = json.loads(state.read_text())
    done_first = set(first["students"])
    assert 2 <= len(done_first) < len(kinds)
    labs = list(first["labs"])
    records = [json.loads(line) for r in _live_runs(labs)
               for line in (run_base_dir() / r / "resources.jsonl").read_text().splitlines()
               if line.strip()]
    proc = class_grade(exercise, class_dir, out, "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    regraded = {line.split("grading ")[1].strip() for line in proc.stdout.splitlines()
                if "  grading " in line}
    assert regraded == set(kinds) - done_first, proc.stdout
    final = json.loads(state.read_text())
    assert set(final["students"]) == set(kinds)
    for student in done_first:  # finished results were kept, not graded again
        assert final["students"][student] == first["students"][student]
    assert sorted(gradebook(out)) == sorted(kinds)
    subprocess.run([*LANALAB, "clean"], cwd=REPO_ROOT, capture_output=True, check=True)
    assert _live_runs(json.loads(state.read_text())["labs"]) == []
    links = [r["ifname"] for r in records if r["kind"] == "link"
             and Path("/sys/class/net", r["ifname"]).exists()]
    assert links == []
    alive = [r["pid"] for r in records if r["kind"] == "process"
             and process_matches(r["pid"], r["starttime"])]
    assert alive == []


def test_a_hang_costs_its_own_row_and_the_lab_is_rebooted_after_it(tmp_path: Path,
                                                                  image) -> None:
    """A script that never ends outlives the grader's time limit: that row says so, every VM
    of the lab is rebooted (the script still runs in the guest), and the next student is
    graded in full on the same lab."""
    exercise = find_exercise("1")
    class_dir = make_class(exercise, tmp_path / "class", {"h1ang": "solution",
                                                          "h2ref": "solution"})
    (class_dir / "h1ang" / "stack.sh").write_text("modprobe lana\nsleep 100000\n")
    out = tmp_path / "grades"
    limit = 60  # the solution grades in ~10 s; the script's own timeout is 120 s
    proc = class_grade(exercise, class_dir, out, "--jobs", "1", "--time-limit", str(limit))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    book = gradebook(out)
    assert book["h1ang"]["Status"] == "timeout", book["h1ang"]
    assert f"ran longer than {limit} s" in book["h1ang"]["Note"]
    assert "ran out of time" in proc.stdout, proc.stdout
    assert book["h2ref"]["Status"] == "graded"
    assert book["h2ref"]["Total"] == book["h2ref"]["Max"], book["h2ref"]
    report = (out / "students" / "h1ang" / "report.txt").read_text()
    assert "a hang" in report
