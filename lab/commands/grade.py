"""`lanalab grade`: grade a submission for one exercise and write the report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.errors import LabError

DESCRIPTION = """\
Grade a submission for an exercise. The grader brings up the exercise's topology (or
uses a running lab with --run), applies your work, drives traffic and checks the live
state of LANA in the guests. It writes report.txt (for you), score.json (points per
check, feedback per failure) and junit.xml into --out, and prints the report.

Checks that need no VM (compiling your filters or your block) run first: if one fails,
no VM is booted and the others say so.

examples:
  lanalab grade --list
  lanalab grade 1 --submission ~/lana/ex1
  lanalab grade bpf-filtering --student s1234567 --show-variant
  lanalab grade 03-bpf-filtering --student s1234567 --submission .
instructors: --hidden adds the hidden checks (kept in each exercise's hidden/ folder);
  lanalab grade 4 --class submissions/ --out grades-4/   grades a class (docs/class-grading.md)"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="grade a submission for an exercise",
                       description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exercise", nargs="?",
                   help="exercise folder name, number or slug (see --list)")
    p.add_argument("--submission", type=Path, default=Path("."),
                   help="folder with your files (default: the current folder)")
    p.add_argument("--student", help="your student id: selects your variant (ports, VLAN "
                   "id, ...); without it the default variant is graded")
    p.add_argument("--out", type=Path, help="where to write report.txt, score.json, "
                   "junit.xml (default: ./grade-<exercise>)")
    p.add_argument("--run", help="grade on this running lab (run id from `lanalab status`) "
                   "instead of booting one; its LANA state is reset before and after")
    p.add_argument("--hidden", action="store_true", help="instructor mode: include the "
                   "hidden checks")
    p.add_argument("--only", action="append", metavar="CHECK",
                   help="run just this check (a name from the report; repeat for more): "
                        "quicker while you fix one thing; the score covers only these")
    p.add_argument("--show-variant", action="store_true",
                   help="print the parameters for --student and exit")
    p.add_argument("--list", action="store_true", help="list the exercises and exit")
    p.add_argument("--class", dest="class_dir", type=Path, help="grade a class: one folder "
                   "per student (folder name = student id) in this folder; hidden checks "
                   "included (docs/class-grading.md)")
    p.add_argument("--participants", action="store_true", help="instructors on the "
                   "bootcamp server: grade every participant's work folder (through the "
                   "lab service); writes the gradebook and reports into --out")
    p.add_argument("--roster", type=Path, help="with --class: CSV id,name,email (default: "
                   "roster.csv in the class folder, if any)")
    p.add_argument("--jobs", type=int, help="with --class: labs in parallel (default: from "
                   "this machine's cores and memory)")
    p.add_argument("--regrade", action="store_true", help="with --class: grade again who "
                   "is already graded in --out")
    p.add_argument("--no-hidden", action="store_true", help="with --class: leave the "
                   "hidden checks out")
    p.add_argument("--time-limit", type=float, default=600.0, help="with --class: seconds "
                   "per submission before it counts as a hang (default 600)")
    p.set_defaults(func=cmd_grade)


def cmd_grade(args: argparse.Namespace) -> int:
    from lab.grading.engine import grade
    from lab.grading.exercise import find_exercise, list_exercises

    if args.list:
        for ex in list_exercises():
            print(f"{ex.name:<24} {ex.title}")
        return 0
    if args.participants:  # their folders are theirs: the service reads them as them
        from lab.service.cli_client import svc_grade_participants

        return svc_grade_participants(args)
    if not args.exercise:
        raise LabError("no exercise given", hint="`lanalab grade --list` shows them")
    exercise = find_exercise(args.exercise)
    if args.show_variant:
        variant = exercise.variant(args.student)
        print(json.dumps(variant, indent=2) if variant else
              f"{exercise.name} has no per-student parameters")
        return 0
    if args.class_dir is not None:
        return _grade_class(args, exercise)
    out = args.out or Path(f"grade-{exercise.name}")
    print(f"grading {exercise.name} ({exercise.title}) for {args.submission.resolve()}",
          flush=True)
    result = grade(exercise, args.submission, run_id=args.run, student=args.student,
                   hidden=args.hidden, out_dir=out, only=args.only)
    print(result.outputs["report"].read_text(), end="")
    print(f"\nwritten: {result.outputs['report']}, {result.outputs['score']}, "
          f"{result.outputs['junit']}")
    return 0 if result.passed else 2


def _grade_class(args: argparse.Namespace, exercise) -> int:  # exercise: Exercise
    from lab.grading.classroom.batch import BatchOptions, auto_jobs
    from lab.grading.classroom.run import grade_class

    options = BatchOptions(jobs=args.jobs or auto_jobs(exercise), hidden=not args.no_hidden,
                           regrade=args.regrade, time_limit=args.time_limit)
    out = args.out or Path(f"grades-{exercise.name}")
    grade_class(exercise, args.class_dir, out, options, roster=args.roster)
    return 0
