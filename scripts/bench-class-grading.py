#!/usr/bin/env python3
"""How long a class takes to grade: the same generated class graded with --jobs 1 and
with the K `lanalab grade --class` chooses on this machine (or --jobs K), the ratio, the
time per submission, and an extrapolation to another machine's cores and class size.

    .venv/bin/python scripts/bench-class-grading.py [--exercise 3] [--copies 2] [--jobs K]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lab.grading.classroom.batch import auto_jobs  # noqa: E402
from lab.grading.exercise import find_exercise  # noqa: E402


def make_class(exercise_number: str, root: Path, copies: int) -> int:
    exercise = find_exercise(exercise_number)
    kinds = ["solution", "starter", *[f"wrong/{w.name}" for w in exercise.wrong_solutions()]]
    n = 0
    for copy in range(copies):
        for kind in kinds:
            shutil.copytree(exercise.path / kind, root / f"s{copy}{n:03d}")
            (root / f"s{copy}{n:03d}" / "expect.toml").unlink(missing_ok=True)
            n += 1
    return n


def children_cpu() -> float:
    """Host CPU seconds of every finished descendant (qemu included: each parent reaps)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(exercise: str, class_dir: Path, jobs: int) -> tuple[float, float]:
    """(wall seconds, host CPU seconds) of grading the class with --jobs jobs."""
    out = Path(tempfile.mkdtemp(prefix="bench-class-out-"))
    cpu = children_cpu()
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lab.cli", "grade", exercise, "--class",
                           str(class_dir), "--out", str(out), "--jobs", str(jobs)],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"grading failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return seconds, children_cpu() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exercise", default="3")
    ap.add_argument("--copies", type=int, default=1, help="copies of the exercise's "
                    "solution, starter and wrong/* in the class")
    ap.add_argument("--jobs", type=int, help="K (default: what --class chooses here)")
    ap.add_argument("--server-cores", type=int, default=32)
    ap.add_argument("--students", type=int, default=200)
    args = ap.parse_args()
    k = args.jobs or auto_jobs(find_exercise(args.exercise))
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        n = make_class(args.exercise, Path(tmp), args.copies)
        one, one_cpu = timed(args.exercise, Path(tmp), 1)
        many, many_cpu = timed(args.exercise, Path(tmp), k)
    load = os.getloadavg()[0]
    print(f"class: {n} submissions of exercise {args.exercise}, {os.cpu_count()} cores, "
          f"load {load:.1f} at the end")
    print(f"--jobs 1: {one:.1f} s ({one / n:.1f} s per submission, host CPU "
          f"{one_cpu / n:.1f} s per submission)")
    print(f"--jobs {k}: {many:.1f} s ({many / n:.1f} s per submission, host CPU "
          f"{many_cpu / n:.1f} s per submission)")
    print(f"ratio (jobs 1 / jobs {k}): {one / many:.2f}")
    # A lab grades one submission in `one / n` s; a server cannot beat the CPU it needs
    # either: the larger of the two bounds, one lab per core
    labs = max(1, args.server_cores)
    by_labs = one / n * args.students / labs
    by_cpu = one_cpu / n * args.students / args.server_cores
    print(f"extrapolation: {args.students} submissions on {args.server_cores} cores, one lab "
          f"per core: {max(by_labs, by_cpu) / 60:.1f} min (labs: {by_labs / 60:.1f} min, "
          f"CPU: {by_cpu / 60:.1f} min)")

if __name__ == "__main__":
    main()
