"""python3 -m lab.autonomic: run a policy in this guest until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab.autonomic.controller import Controller, load_policy
from lab.autonomic.journal import Journal

EPILOG = """examples:
  python3 -m lab.autonomic --policy lab.autonomic.policy:FloodGuard \\
      --kwargs '{"watch": "c0", "victim": "app", "guard_type": "ratelimit",
                 "settings": ["rate=100", "burst=10"]}'
  python3 -m lab.autonomic --policy /lab/my-work/policy.py:MyPolicy --journal j.jsonl

The journal has one JSON object per line: "ready" (subscribed; the stack's shape),
"event", "action" (ok or the kernel's refusal), "error" (a hook raised), "stopped".
Times are time.monotonic() of this guest. See docs/autonomic.md."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m lab.autonomic", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="An autonomic controller: reconfigure the LANA stack by a policy "
                    "when its blocks emit events.")
    parser.add_argument("--policy", required=True, help="FILE.py:CLASS or MODULE:CLASS")
    parser.add_argument("--kwargs", default="{}", help="the policy's arguments, JSON")
    parser.add_argument("--journal", type=Path, help="append the journal here "
                        "(default: standard output)")
    parser.add_argument("--idle", type=float, default=0.5,
                        help="seconds without events before the policy's on_idle")
    args = parser.parse_args(argv)
    from lab.lana.client import Lana, LanaError, lean_pyroute2

    lean_pyroute2()
    try:
        kwargs = json.loads(args.kwargs)
        if not isinstance(kwargs, dict):
            raise ValueError("--kwargs must be a JSON object")
        policy = load_policy(args.policy, kwargs)
    except (ValueError, TypeError, ImportError, SyntaxError) as err:
        print(f"controller: {err}", file=sys.stderr)
        return 2
    journal = Journal.open(args.journal) if args.journal else Journal(sys.stdout)
    try:
        with Lana() as lana:
            controller = Controller(policy, lana, journal, idle=args.idle)
            controller.install_signal_handlers()
            controller.run()
    except LanaError as err:
        print(f"controller: {err}", file=sys.stderr)
        return 1
    finally:
        journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
