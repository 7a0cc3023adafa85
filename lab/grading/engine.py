"""Run an exercise's grader for one submission and collect its score.

The grader runs as its own pytest process (so a grader that breaks cannot take the caller
down), either on a lab that is already running (run_id: the integrity suite boots one lab
and grades every submission on it) or on a lab it boots and tears down itself.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import GradingError
from lab.grading.buildas import BUILD_AS_ENV, BuildUser
from lab.grading.exercise import Exercise
from lab.grading.report import write_outputs

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class GradeResult:
    exercise: str
    student: str | None
    variant: dict[str, Any]
    checks: list[dict[str, Any]]
    pytest_exit: int
    log: str = ""
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def score(self) -> int:
        return sum(c["points"] for c in self.checks)

    @property
    def max_score(self) -> int:
        return sum(c["max_points"] for c in self.checks)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c["status"] == "pass" for c in self.checks)

    def check(self, name: str) -> dict[str, Any]:
        for c in self.checks:
            if c["check"] == name:
                return c
        raise KeyError(f"no check {name!r}; checks: {[c['check'] for c in self.checks]}")

    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c["status"] != "pass"]

    def to_json(self) -> dict[str, Any]:
        return {"exercise": self.exercise, "student": self.student, "variant": self.variant,
                "score": self.score, "max_score": self.max_score, "passed": self.passed,
                "checks": self.checks}


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent: int) -> Callable[[], None]:
    """For the grader's child: the kernel kills it when `lanalab grade` dies (even by
    SIGKILL), so no grader outlives its command and goes on making a lab nobody owns;
    what it had made is in its run record for `lanalab clean`."""

    def arrange() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return arrange


def grade(exercise: Exercise, submission: Path, *, run_id: str | None = None,
          student: str | None = None, hidden: bool = False, out_dir: Path | None = None,
          timeout: float = 1200.0, only: list[str] | None = None,
          build_as: BuildUser | None = None) -> GradeResult:
    """Run the exercise's grader on `submission`; C it compiles on the host is built as
    `build_as` when given (lab/grading/buildas.py), else as LANALAB_BUILD_AS says."""
    submission = submission.resolve()
    if not submission.is_dir():
        raise GradingError(f"submission folder {submission} does not exist",
                           f"pass the folder with your files, e.g. {exercise.path}/starter")
    out = out_dir or Path(tempfile.mkdtemp(prefix=f"lanalab-grade-{exercise.name}-"))
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    results.unlink(missing_ok=True)
    paths = [str(exercise.grader_dir)]
    if hidden and exercise.hidden_dir.is_dir():
        paths.append(str(exercise.hidden_dir))
    env = {**os.environ, "LANALAB_EXERCISE": str(exercise.path),
           "LANALAB_SUBMISSION": str(submission), "LANALAB_STUDENT": student or "",
           "LANALAB_GRADE_RESULTS": str(results)}
    env.pop("LANALAB_GRADE_RUN", None)
    env.pop("LANALAB_GRADE_ONLY", None)
    if only:
        env["LANALAB_GRADE_ONLY"] = ",".join(only)
    if run_id:
        env["LANALAB_GRADE_RUN"] = run_id
    if build_as is not None:
        env[BUILD_AS_ENV] = build_as.env_value()
    argv = [sys.executable, "-m", "pytest", *paths, "-p", "lab.grading.plugin",
            "-p", "no:cacheprovider", "-q", "--no-header", "-o", "addopts=",
            "-o", "console_output_style=classic", "--durations=8", f"--rootdir={REPO_ROOT}",
            f"--junitxml={out / 'junit.xml'}", "-o", "junit_family=xunit1"]
    try:
        proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False,
                              preexec_fn=_die_with_parent(os.getpid()))
    except subprocess.TimeoutExpired as exc:
        raise GradingError(f"the grader of {exercise.name} ran longer than {timeout:g} s",
                           "a guest may hang; `lanalab status` and `lanalab console`") from exc
    log = proc.stdout + proc.stderr
    if not results.is_file():
        raise GradingError(f"the grader of {exercise.name} did not run (pytest exit "
                           f"{proc.returncode}):\n{log[-3000:]}")
    checks = json.loads(results.read_text())
    missing = sorted(set(only or ()) - {check["check"] for check in checks})
    if missing:
        raise GradingError(f"the grader of {exercise.name} ran no check named "
                           f"{', '.join(missing)}:\n{log[-1500:]}",
                           "the report of a full grade lists the checks' names")
    result = GradeResult(exercise.name, student, exercise.variant(student), checks,
                         proc.returncode, log)
    (out / "pytest.log").write_text(log)
    result.outputs = write_outputs(result, out)
    return result
