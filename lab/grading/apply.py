"""Apply a student's work in a guest: copy the submission's files and run its script."""

from __future__ import annotations

import shlex
from pathlib import Path

from lab.errors import GradingError
from lab.grading.nodes import GuestNode
from lab.vm.qga import ExecResult

GUEST_DIR = "/tmp/submission"
MAX_FILE = 256 * 1024


def copy_submission(guest: GuestNode, submission: Path) -> list[str]:
    """Copy the submission's files (one level, small text files) to GUEST_DIR."""
    guest.sh(f"rm -rf {GUEST_DIR} && mkdir -p {GUEST_DIR}")
    copied = []
    for path in sorted(submission.iterdir()):
        if not path.is_file():
            continue
        if path.stat().st_size > MAX_FILE:
            raise GradingError(f"{path} is larger than {MAX_FILE} bytes",
                               "a submission holds scripts and filter files only")
        guest.put(f"{GUEST_DIR}/{path.name}", path.read_bytes())
        copied.append(path.name)
    return copied


def run_script(guest: GuestNode, submission: Path, script: str,
               timeout: float = 120.0) -> ExecResult:
    """Run the student's script with `sh -e` (it stops at the first failing command)
    in GUEST_DIR, so it can refer to its sibling files by name."""
    if not (submission / script).is_file():
        raise GradingError(f"the submission has no {script}",
                           f"put your {script} into {submission}")
    copy_submission(guest, submission)
    return guest.run(f"cd {GUEST_DIR} && sh -e -x ./{shlex.quote(script)}", timeout=timeout)


def script_feedback(result: ExecResult, script: str) -> str:
    """The failing command of a `sh -e -x` run and what it printed."""
    trace = [line[2:] for line in result.stderr.splitlines() if line.startswith("+ ")]
    other = [line for line in result.stderr.splitlines() if not line.startswith("+ ")]
    last = trace[-1] if trace else "(no command ran)"
    said = "\n".join(other[-5:]) or result.stdout.strip()[-500:]
    return (f"your {script} stopped with exit code {result.exit_code} at the command "
            f"`{last}`" + (f", which said:\n{said}" if said else ""))
