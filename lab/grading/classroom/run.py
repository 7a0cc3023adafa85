"""`lanalab grade N --class DIR`: roster -> batch -> gradebook, summary page."""

from __future__ import annotations

from pathlib import Path

from lab.grading.classroom.batch import BatchOptions, BatchState, run_batch, student_dir
from lab.grading.classroom.duplicates import fingerprint, identical_groups
from lab.grading.classroom.gradebook import write_gradebook
from lab.grading.classroom.html import write_summary
from lab.grading.classroom.progress import Progress
from lab.grading.classroom.roster import discover
from lab.grading.exercise import Exercise


def grade_class(exercise: Exercise, class_dir: Path, out: Path, options: BatchOptions,
                roster: Path | None = None) -> BatchState:
    students = discover(class_dir, roster)
    state = BatchState.load(out, exercise.name) if (out / "batch.json").is_file() else None
    todo = [s for s in students if options.regrade or state is None or s.id not in state.rows]
    print(f"[class] {exercise.name}: {len(students)} students, {len(todo)} to grade, "
          f"{options.jobs} lab(s)", flush=True)
    state = run_batch(exercise, students, out, options, Progress(len(todo), options.jobs))
    ids = {s.id for s in students}
    rows = [r for i, r in state.rows.items() if i in ids]
    starter = fingerprint(exercise.folder("starter"))
    identical = identical_groups(students, exclude={starter} if starter else None)
    for row in rows:
        row["identical_to"] = sorted({i for g in identical if row["id"] in g for i in g}
                                     - {row["id"]})
        row["outputs"] = str(student_dir(out, row["id"]))
    csv_path, json_path = write_gradebook(rows, out)
    html_path = write_summary(exercise.name, rows, identical, out)
    print(f"[class] written: {csv_path}, {json_path}, {html_path}", flush=True)
    return state
