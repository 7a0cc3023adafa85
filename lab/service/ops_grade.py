"""Grading through the service: the submission arrives as a tar in the request and is
unpacked into root's scratch; the report, score and JUnit XML go back in the reply."""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.grading.buildas import BuildUser
from lab.service.core import (
    BadArgs,
    Caller,
    Forbidden,
    Notify,
    ServiceState,
    clip,
    run_lanalab,
    take,
)
from lab.service.ops_labs import usage
from lab.service.ownership import find_visible
from lab.service.quota import check_quota
from lab.service.untar import unpack

STUDENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
EXERCISE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
GRADE_TIMEOUT_S = 1500.0
OUTPUTS = {"report": "report.txt", "score": "score.json", "junit": "junit.xml"}


def op_grade(state: ServiceState, caller: Caller, args: dict[str, Any],
             notify: Notify) -> dict[str, Any]:
    take("grade", args, {"exercise": str, "run": str, "student": str, "hidden": bool,
                         "submission": str}, ("exercise", "submission"))
    from lab.grading.exercise import find_exercise
    from lab.topology.loader import load_topology

    if not EXERCISE.match(args["exercise"]):
        raise BadArgs(f"grade: {args['exercise']!r} is not an exercise name or number")
    student = args.get("student")
    if student is not None and not STUDENT.match(student):
        raise BadArgs("grade: a student id is letters, digits, '.', '_' or '-'")
    if args.get("hidden") and not caller.instructor:
        raise Forbidden("grade: the hidden checks are for instructors only",
                        "grade without --hidden")
    exercise = find_exercise(args["exercise"])
    run_id = args.get("run")
    if run_id is not None:
        run_id = find_visible(caller.uid, caller.instructor, run_id).run_id
        meta: dict[str, Any] = {"service": True, "owner_uid": caller.uid}
    else:  # the grader boots the exercise's lab: it counts against the quota
        topo = load_topology(exercise.topology)
        vms, memory = len(topo.vms), sum(vm.memory_mb for vm in topo.vms)
        now = usage(caller)
        check_quota(state.config.quota, now["labs"], now["vms"], now["memory_mb"], vms, memory)
        meta = {"service": True, "owner_uid": caller.uid, "vms": vms, "memory_mb": memory}
    try:
        data = base64.b64decode(args["submission"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadArgs(f"grade: submission is not base64: {exc}") from exc
    limits = state.config.limits
    folder = Path(tempfile.mkdtemp(prefix="grade-", dir=state.workdir))
    try:
        submission = folder / "submission"
        submission.mkdir()
        files = unpack(data, submission, limits.max_submission_bytes,
                       limits.max_submission_files)
        notify("grading", exercise=exercise.name, files=len(files))
        out = folder / "out"
        argv = ["grade", exercise.name, "--submission", str(submission), "--out", str(out)]
        argv += ["--run", run_id] if run_id else []
        argv += ["--student", student] if student else []
        argv += ["--hidden"] if args.get("hidden") else []
        # exercises 4 and 7 compile the submission on the host: as the caller, never root
        builder = BuildUser(caller.uid, caller.gid) if caller.uid != 0 else None
        proc = run_lanalab(state, argv, meta, GRADE_TIMEOUT_S, build_as=builder)
        if proc.returncode not in (0, 2) or not (out / OUTPUTS["score"]).is_file():
            raise LabError("grading failed:\n" + clip(proc.stdout + proc.stderr, 4000))
        result: dict[str, Any] = {name: (out / file).read_text(errors="replace")
                                  for name, file in OUTPUTS.items() if (out / file).is_file()}
        result["passed"] = proc.returncode == 0
        result["files"] = files
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)
