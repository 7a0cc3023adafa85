"""Commands that look after the machine: doctor and clean."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check prerequisites and say how to fix each",
                       description="Check what the lab needs on this machine: root, qemu, "
                       "whether KVM really works (a probe boot), Mininet's mnexec, kernel "
                       "headers, the guest image. Exit code 1 if something is missing.")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("clean", help="remove what labs recorded creating (after a crash too)",
                       description="Remove exactly the taps, bridges, namespaces, processes "
                       "and files that labs recorded creating under /run/lanalab, including "
                       "labs whose process was killed. Nothing else is touched.")
    p.add_argument("--run", help="only this run id (default: every recorded run)")
    p.set_defaults(func=cmd_clean)


def cmd_doctor(_args: argparse.Namespace) -> int:
    from lab.doctor import print_report, run_checks

    return 0 if print_report(run_checks()) else 1


def cmd_clean(args: argparse.Namespace) -> int:
    from lab.runstate import clean

    report = clean(args.run)
    for what in report.removed:
        print(f"removed       {what}")
    for what in report.already_gone:
        print(f"already gone  {what}")
    for run_id in report.skipped_live_runs:
        print(f"left alone    run {run_id}: its lab is still running (`lanalab down --run "
              f"{run_id}` ends it)")
    for what in report.refused:
        print(f"refused       {what}: not named with its run's prefix, so not the lab's")
    for error in report.errors:
        print(f"FAILED        {error}")
    if not (report.removed or report.already_gone or report.skipped_live_runs or report.errors
            or report.refused):
        print("nothing to clean")
    return 0 if report.ok else 1
