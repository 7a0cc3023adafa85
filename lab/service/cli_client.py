"""The `lanalab` commands that go through the service when the caller is not root (or
passes --service): same arguments, same output, files read and written as the caller."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.service.client import ServiceClient

# what root's own `lanalab up` offers and a service lab does not, with the reason
_UP_REFUSED = {"foreground": "a service lab always runs in the background",
               "cli": "the Mininet CLI needs root: use `lanalab exec` instead",
               "share": "service labs share this repository, read-only",
               "backend": "service labs run on the qemu backend",
               "libvirt_uri": "service labs run on the qemu backend"}


def _client(args: argparse.Namespace) -> ServiceClient:
    return ServiceClient(getattr(args, "service_socket", None))


def _say(event: dict[str, Any]) -> None:
    fields = ", ".join(f"{k} {v}" for k, v in event.items() if k not in ("v", "event"))
    print(f"[lanalab service] {event['event']}" + (f": {fields}" if fields else ""),
          file=sys.stderr, flush=True)


def svc_up(args: argparse.Namespace) -> int:
    for name, why in _UP_REFUSED.items():
        if getattr(args, name, None) not in (None, False):
            raise LabError(f"--{name.replace('_', '-')} is not available through the lab "
                           f"service: {why}")
    from lab.commands.lab_ops import _params

    client = _client(args)
    ref, params = args.topology, _params(args.param)
    if ref and (ref.endswith(".toml") or "/" in ref):
        path = Path(ref)
        if path.suffix != ".toml":
            raise LabError(f"{ref}: only .toml topology files go through the lab service",
                           "Python builders run in root's own `lanalab up`; name a "
                           "ready one (e.g. star) with --param")
        lab = client.up(toml=path.read_text(encoding="utf-8"), clock=args.clock,
                        on_event=_say, **params)
    else:
        lab = client.up(ref, clock=args.clock, on_event=_say, **params)
    print(f"lab {lab.id} is up and runs in the background; `lanalab down --run {lab.id}` "
          "ends it")
    return 0


def svc_status(args: argparse.Namespace) -> int:
    from lab.commands.lab_ops import _print_lab

    labs = _client(args).labs()
    if not labs:
        print("you have no lab running (start one with `lanalab up`)")
    for lab in labs:
        if lab["state"]:
            _print_lab(lab["state"])
        else:
            print(f"lab {lab['id']}  (coming up or going)")
        print(f"  owner uid {lab['owner_uid']}" + ("" if lab["alive"] else
              "  the owner process is gone: `lanalab down --run ID` removes what is left"))
    return 0


def svc_down(args: argparse.Namespace) -> int:
    client = _client(args)
    run = args.run or _only(client)
    client.down(run)
    print(f"lab {run} is down")
    return 0


def _only(client: ServiceClient) -> str:
    labs = [lab for lab in client.labs() if lab["alive"]]
    if len(labs) != 1:
        raise LabError(f"{len(labs)} labs of yours are running" if labs else
                       "you have no running lab",
                       "choose one with --run" if labs else "start one with `lanalab up`")
    return str(labs[0]["id"])


def svc_exec(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise LabError("no command given", hint="lanalab exec vm1 -- fbctl list")
    result = _client(args).exec(args.run, args.node, argv, args.timeout)
    sys.stdout.write(result["stdout"])
    sys.stderr.write(result["stderr"])
    return int(result["exit_code"])


def svc_console(args: argparse.Namespace) -> int:
    client, offset = _client(args), 0
    while True:
        chunk = client.console(args.run, args.vm, offset)
        sys.stdout.write(chunk["text"])
        sys.stdout.flush()
        moved = chunk["offset"] != offset
        offset = chunk["offset"]
        if not moved:
            if not args.follow:
                return 0
            time.sleep(0.5)  # polling a growing log: nothing to wait on from here


def svc_capture(args: argparse.Namespace) -> int:
    def said(event: dict[str, Any]) -> None:
        if event["event"] == "listening":
            print(f"capturing on {args.where} (tcpdump is listening)", file=sys.stderr,
                  flush=True)

    out = args.write.resolve()
    result = _client(args).capture(args.run, args.where, out, args.count, args.seconds,
                                   args.filter, said)
    print(result.get("summary") or "captured")
    print(f"written to {args.write}")
    return 0


def svc_grade_participants(args: argparse.Namespace) -> int:
    if not args.exercise:
        raise LabError("no exercise given", hint="`lanalab grade --list` shows them")
    out = args.out or Path(f"grades-{args.exercise}")
    print(f"grading every participant's work for {args.exercise} through the lab service",
          flush=True)
    result = _client(args).grade_class(args.exercise, args.jobs or 1, on_event=_say)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gradebook.csv").write_text(result["gradebook"])
    (out / "summary.html").write_text(result["summary"])
    for student, report in result["reports"].items():
        (out / "students" / student).mkdir(parents=True, exist_ok=True)
        (out / "students" / student / "report.txt").write_text(report)
    for note in result["notes"]:
        print(f"  note: {note}")
    print(result["gradebook"], end="")
    print(f"written: {out / 'gradebook.csv'}, {out / 'summary.html'}, {out / 'students'}/")
    return 0


def svc_grade(args: argparse.Namespace) -> int:
    if args.participants:
        return svc_grade_participants(args)
    if args.list or args.show_variant or args.class_dir is not None:
        from lab.commands.grade import cmd_grade

        if args.class_dir is None:
            return int(cmd_grade(args) or 0)  # read-only, needs no root
        raise LabError("--class grades a whole class as root", "run it as the instructor "
                       "on the server, as root")
    if not args.exercise:
        raise LabError("no exercise given", hint="`lanalab grade --list` shows them")
    out = args.out or Path(f"grade-{args.exercise}")
    print(f"grading {args.exercise} for {args.submission.resolve()} through the lab service",
          flush=True)
    result = _client(args).grade(args.exercise, args.submission.resolve(), run=args.run,
                                 student=args.student, hidden=args.hidden, on_event=_say)
    out.mkdir(parents=True, exist_ok=True)
    names = {"report": "report.txt", "score": "score.json", "junit": "junit.xml"}
    for key, name in names.items():
        if key in result:
            (out / name).write_text(result[key])
    print(result.get("report", ""), end="")
    print(f"\nwritten: {', '.join(str(out / n) for k, n in names.items() if k in result)}")
    return 0 if result.get("passed") else 2


def svc_clean_own(args: argparse.Namespace) -> int:
    done = _client(args).clean_own()
    print("\n".join(f"lab {run} is down" for run in done) or "you had no lab")
    return 0


COMMANDS = {"up": svc_up, "status": svc_status, "down": svc_down, "exec": svc_exec,
            "console": svc_console, "capture": svc_capture, "grade": svc_grade,
            "clean-own": svc_clean_own}
