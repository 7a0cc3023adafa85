"""Grade every submission of a class in K labs at once.

Each worker thread boots one lab (LabRun, recorded in its run folder like any lab, so
`lanalab clean` removes it after a kill) and grades submission after submission on it,
each in its own pytest process (lab.grading.engine.grade with the lab's run id and a time
limit: a hang or a grader crash ends that process only). Between submissions the graders
reset LANA; a VM the reset cannot bring back (a kernel crash, a block holding LANA) is
rebooted alone, and after a grader that ran out of time every VM of its lab is (what the
killed grader started in the guests may still run). Every finished student is written to
batch.json in --out at once, so a rerun (or a run after SIGKILL) grades only who is missing.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import GradingError, LabError
from lab.grading.buildas import NOBODY, BuildUser, build_user
from lab.grading.classroom.progress import Progress
from lab.grading.classroom.roster import Student
from lab.grading.exercise import Exercise

STATE_FILE = "batch.json"
LAB_OVERHEAD_MB = 512  # qemu, the Mininet host and the grader's pytest, per lab


def auto_jobs(exercise: Exercise) -> int:
    """K from this machine: one lab per core, as long as the labs' guest memory (plus
    overhead) fits in what is available now."""
    from lab.topology.loader import load_topology

    topo = load_topology(exercise.topology)
    lab_mb = sum(vm.memory_mb for vm in topo.vms) + LAB_OVERHEAD_MB
    avail_mb = _available_mb()
    return max(1, min(os.cpu_count() or 1, avail_mb // lab_mb))


def _available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 1024


@dataclass
class BatchState:
    """batch.json: the labs this batch booted and every finished student's row."""

    path: Path
    exercise: str
    labs: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, out: Path, exercise: str) -> BatchState:
        path = out / STATE_FILE
        state = cls(path, exercise)
        if path.is_file():
            data = json.loads(path.read_text())
            if data.get("exercise") != exercise:
                raise GradingError(f"{out} holds the grades of {data.get('exercise')}, "
                                   f"not {exercise}", "choose another --out")
            state.labs = list(data.get("labs", []))
            state.rows = dict(data.get("students", {}))
        return state

    def save(self) -> None:
        with self.lock:
            data = {"exercise": self.exercise, "labs": self.labs, "students": self.rows}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2))
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            tmp.replace(self.path)

    def add_lab(self, run_id: str) -> None:
        with self.lock:
            self.labs.append(run_id)
        self.save()

    def finish(self, row: dict[str, Any]) -> None:
        with self.lock:
            self.rows[row["id"]] = row
        self.save()


def clean_stale_labs(state: BatchState) -> list[str]:
    """Labs an earlier (killed) run of this batch booted and whose owner is dead."""
    from lab.runstate import RunRecord, clean, run_base_dir

    cleaned = []
    for run_id in state.labs:
        folder = run_base_dir() / run_id
        if folder.is_dir() and not RunRecord(run_id, folder).owner_alive():
            clean(run_id)
            cleaned.append(run_id)
    state.labs = [r for r in state.labs if (run_base_dir() / r).is_dir()]
    state.save()
    return cleaned


@dataclass
class BatchOptions:
    jobs: int
    hidden: bool = True
    regrade: bool = False
    time_limit: float = 600.0


def student_dir(out: Path, student: str) -> Path:
    return out / "students" / student


def run_batch(exercise: Exercise, students: list[Student], out: Path, options: BatchOptions,
              progress: Progress | None = None) -> BatchState:
    out.mkdir(parents=True, exist_ok=True)
    state = BatchState.load(out, exercise.name)
    clean_stale_labs(state)
    todo = [s for s in students if options.regrade or s.id not in state.rows]
    progress = progress or Progress(len(todo), options.jobs)
    work: queue.Queue[Student] = queue.Queue()
    for student in todo:
        work.put(student)
    jobs = max(1, min(options.jobs, len(todo)))
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_worker, name=f"class-lab-{i}", daemon=True,
                                args=(exercise, work, out, options, state, progress, errors))
               for i in range(jobs if todo else 0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors and not work.empty():
        raise errors[0]
    return state


def _worker(exercise: Exercise, work: queue.Queue[Student], out: Path, options: BatchOptions,
            state: BatchState, progress: Progress, errors: list[BaseException]) -> None:
    lab = None
    try:
        lab = _boot(exercise, state, progress)
        while True:
            try:
                student = work.get_nowait()
            except queue.Empty:
                return
            progress.start(student.id)
            row = grade_one(exercise, student, lab.run.id if lab.run else "", out, options)
            state.finish(row)
            progress.finish(student.id, row["status"], f"{row['score']}/{row['max_score']}")
            lab = _repair(exercise, lab, state, progress,
                          timed_out=row["status"] == "timeout")
    except BaseException as exc:  # noqa: BLE001 - reported by run_batch
        errors.append(exc)
        progress.note(f"a lab failed: {exc}")
    finally:
        if lab is not None:
            lab.down()


def _boot(exercise: Exercise, state: BatchState, progress: Progress) -> Any:
    from lab.image.store import resolve_image
    from lab.labrun import LabRun, icount_for
    from lab.topology.loader import load_topology

    lab = LabRun(load_topology(exercise.topology), resolve_image(), share=None,
                 icount_shift=icount_for(exercise.clock))
    lab.up()
    assert lab.run is not None
    state.add_lab(lab.run.id)
    lab.release_agents()  # the graders reach the guests through their sockets
    progress.note(f"lab {lab.run.id} up")
    return lab


def _repair(exercise: Exercise, lab: Any, state: BatchState, progress: Progress,
            timed_out: bool = False) -> Any:
    """Reboot only what the last submission broke (all VMs after a grader killed at the
    time limit: a student's script it started may still be running, and would change the
    next student's stack); a lab that cannot be repaired is replaced by a new one."""
    from lab.grading.lifecycle import restart_vm, unusable_guests

    try:
        broken = ({name: "the last grader ran out of time; what it started may still run"
                   for name in lab.vms} if timed_out else unusable_guests(lab.run.id))
        for name, why in broken.items():
            progress.note(f"lab {lab.run.id}: rebooting {name} ({why.splitlines()[0]})")
            restart_vm(lab, name)
        if broken:
            lab.release_agents()
        return lab
    except LabError as exc:
        progress.note(f"lab {lab.run.id} is beyond repair ({exc}): booting a new one")
        lab.down()
        return _boot(exercise, state, progress)


def grade_one(exercise: Exercise, student: Student, run_id: str, out: Path,
              options: BatchOptions, grade: Callable[..., Any] | None = None) -> dict[str, Any]:
    """One student's row; whatever happens to the grader stays in this row."""
    from lab.grading.engine import grade as engine_grade

    grade = grade or engine_grade
    folder = student_dir(out, student.id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    row: dict[str, Any] = {"id": student.id, "name": student.name, "email": student.email,
                           "status": "graded", "note": "", "checks": {}, "score": 0,
                           "max_score": 0, "lab": run_id}
    start = time.monotonic()
    try:
        # a class's C is never compiled as root: its build logs go back to the students
        result = grade(exercise, student.folder, run_id=run_id, student=student.id,
                       hidden=options.hidden, out_dir=folder, timeout=options.time_limit,
                       build_as=build_user() or BuildUser(*NOBODY))
    except GradingError as exc:
        timed_out = "ran longer than" in str(exc)
        row["status"] = "timeout" if timed_out else "error"
        row["note"] = (f"no grade: the grader ran longer than {options.time_limit:g} s "
                       "(a hang)" if timed_out else f"no grade: {str(exc).splitlines()[0]}")
        _write_failed(folder, exercise, student, row)
    else:
        row["checks"] = {c["check"]: c["points"] for c in result.checks}
        row["max_checks"] = {c["check"]: c["max_points"] for c in result.checks}
        row["score"], row["max_score"] = result.score, result.max_score
        crashes = [c for c in result.checks if c["status"] == "crash"]
        errors = [c for c in result.checks if c["status"] == "error"]
        if crashes:
            headline = crashes[0]["feedback"].splitlines()[0]
            row["status"] = "crash"
            row["note"] = f"{crashes[0]['check']}: {headline}"
        elif errors:
            row["note"] = f"{errors[0]['check']}: {errors[0]['feedback'].splitlines()[0]}"
        row["failed"] = [c["check"] for c in result.checks if c["status"] != "pass"]
    row["seconds"] = round(time.monotonic() - start, 1)
    return row


def _write_failed(folder: Path, exercise: Exercise, student: Student,
                  row: dict[str, Any]) -> None:
    """report.txt, score.json and junit.xml for a submission the grader could not grade."""
    from xml.sax.saxutils import escape

    (folder / "report.txt").write_text(f"LANA lab: {exercise.name}  (student {student.id})\n"
                                       f"score: 0\n\n{row['note']}\n")
    (folder / "score.json").write_text(json.dumps(
        {"exercise": exercise.name, "student": student.id, "score": 0, "max_score": 0,
         "passed": False, "status": row["status"], "note": row["note"], "checks": []},
        indent=2))
    (folder / "junit.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="'
        f'{escape(exercise.name)}" tests="1" errors="1"><testcase name="grading">'
        f'<error message="{escape(row["note"], {chr(34): "&quot;"})}"/></testcase>'
        "</testsuite></testsuites>\n")
