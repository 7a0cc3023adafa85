"""`grade_class`: an instructor grades every participant's work folder for an exercise
(the bootcamp server's homes, [classroom] in the service config). Each folder is read by a
process running as its owner, so a participant's symlink reaches nothing of root's; the
copies are unpacked with the submission limits, then `lanalab grade N --class` runs on
them as root and the gradebook, summary page and reports go back to the instructor."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.grading.buildas import NOBODY, BuildUser
from lab.privileges import as_user
from lab.service.core import (
    Caller,
    Forbidden,
    Notify,
    ServiceState,
    clip,
    run_lanalab,
    take,
)
from lab.service.ops_grade import EXERCISE, STUDENT
from lab.service.untar import SubmissionError, unpack

CLASS_TIMEOUT_S = 3 * 3600.0
MAX_JOBS = 4

# Runs as the folder's owner: the folder's files as a tar on stdout (nothing if absent).
_PACK = r"""
import sys
from pathlib import Path
from lab.service.untar import pack
folder = Path(sys.argv[1])
if folder.is_dir() and not folder.is_symlink():
    sys.stdout.buffer.write(pack(folder, int(sys.argv[2])))
"""


def op_grade_class(state: ServiceState, caller: Caller, args: dict[str, Any],
                   notify: Notify) -> dict[str, Any]:
    take("grade_class", args, {"exercise": str, "jobs": int}, ("exercise",))
    if not caller.instructor:
        raise Forbidden("grade_class: grading the class is for instructors only",
                        "grade your own work with `lanalab grade N`")
    homes = state.config.classroom.homes
    if homes is None or not homes.is_dir():
        raise LabError("this lab service has no classroom (no participants' homes)",
                       "set [classroom] homes in its config; `lanalab serve` does that")
    if not EXERCISE.match(args["exercise"]):
        raise LabError(f"grade_class: {args['exercise']!r} is not an exercise name or number")
    from lab.grading.exercise import find_exercise

    exercise = find_exercise(args["exercise"])
    jobs = min(max(int(args.get("jobs") or 1), 1), MAX_JOBS)
    folder = Path(tempfile.mkdtemp(prefix="class-", dir=state.workdir))
    try:
        class_dir, out = folder / "class", folder / "out"
        class_dir.mkdir()
        notes = _collect(state, homes, exercise.name, class_dir)
        notify("grading", exercise=exercise.name, students=len(list(class_dir.iterdir())))
        argv = ["grade", exercise.name, "--class", str(class_dir), "--out", str(out),
                "--jobs", str(jobs)]
        # the class's C (exercises 4 and 7) is compiled as nobody, never as root
        proc = run_lanalab(state, argv, {"service": True, "owner_uid": caller.uid},
                           CLASS_TIMEOUT_S, build_as=BuildUser(*NOBODY))
        if not (out / "gradebook.csv").is_file():
            raise LabError("class grading failed:\n" + clip(proc.stdout + proc.stderr, 4000))
        reports = {p.parent.name: p.read_text(errors="replace")
                   for p in sorted((out / "students").glob("*/report.txt"))}
        return {"gradebook": (out / "gradebook.csv").read_text(),
                "summary": (out / "summary.html").read_text(), "reports": reports,
                "notes": notes, "log": clip(proc.stdout, 20000)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _collect(state: ServiceState, homes: Path, exercise: str, class_dir: Path) -> list[str]:
    """Copy each participant's <work>/<exercise>/ into class_dir/<id>/ (an empty folder
    when there is none); -> notes on folders that could not be taken."""
    limits, notes = state.config.limits, []
    for home in sorted(homes.iterdir()):
        found = home.lstat()
        owner, group = found.st_uid, found.st_gid
        if home.is_symlink() or not home.is_dir() or owner == 0 or not STUDENT.match(home.name):
            continue
        target = class_dir / home.name
        target.mkdir()
        work = home / state.config.classroom.work / exercise
        try:
            data = _pack_as(owner, group, work, limits.max_submission_bytes)
            if data:
                unpack(data, target, limits.max_submission_bytes, limits.max_submission_files)
        except (SubmissionError, LabError) as exc:
            notes.append(f"{home.name}: {exc}")
            shutil.rmtree(target)
            target.mkdir()  # graded as an empty submission
    return notes


def _pack_as(uid: int, gid: int, folder: Path, max_bytes: int) -> bytes:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([*as_user(uid, gid), sys.executable, "-c", _PACK, str(folder),
                           str(max_bytes)],
                          capture_output=True, timeout=120, check=False, cwd="/",
                          env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
    if proc.returncode != 0:
        said = proc.stderr.decode(errors="replace").strip().splitlines()
        raise LabError(f"could not read {folder} as its owner: {said[-1] if said else ''}")
    return proc.stdout
