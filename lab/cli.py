"""`lanalab`: bring up LANA lab topologies of VMs and Mininet hosts, and work in them."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from lab.errors import LabError

# Subcommand modules, in the order --help lists them; each has register(subparsers).
COMMAND_MODULES = ["lab_ops", "capture", "maintenance", "image", "grade", "bench", "notebook",
                   "passthrough", "service", "serve"]

SERVICE_COMMANDS = ("up", "status", "down", "exec", "console", "capture", "grade")

EPILOG = """\
a first session:
  lanalab doctor                 check this machine, and say how to fix what is missing
  lanalab image build            build the guest image (kernel, rootfs, LANA modules)
  lanalab up                     bring up the default topology (two VMs, one host)
  lanalab exec vm1 -- fbctl list run a command in a guest (or in a Mininet host: h1)
  lanalab status                 what is running, with addresses and consoles
  lanalab down                   tear the lab down
  lanalab demo                   all of the above in one go, with LANA counting traffic

if a lab was killed half-way, `lanalab clean` removes exactly what it had created.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lanalab", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", action="store_true",
                        help="go through the lab service even as root (without root, up, "
                        "status, down, exec, console, capture and grade always do)")
    parser.add_argument("--socket", dest="service_socket", type=Path, metavar="PATH",
                        help="the lab service's socket (default $LANALAB_SERVICE_SOCKET or "
                        "/run/lanalab/service.sock)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"lab.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"lab.commands.{name}":
                raise
            continue  # a part of the lab this checkout does not have yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser().parse_args(argv))


def _through_service(args: argparse.Namespace) -> bool:
    """Without root, the lab commands go through the lab service (docs/service.md); root
    keeps its own workflow unless it asks for the service with --service."""
    return getattr(args, "command", None) in SERVICE_COMMANDS and (
        getattr(args, "service", False) or os.geteuid() != 0)


def run_parsed(args: argparse.Namespace) -> int:
    """Run a parsed command; a LabError becomes its message, what to do, and exit code 1."""
    if _through_service(args):
        from lab.service.cli_client import COMMANDS

        args.func = COMMANDS[args.command]
    try:
        return int(args.func(args) or 0)
    except LabError as exc:
        print(f"lanalab: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  what to do: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lanalab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`lanalab status | head -1`): no traceback, and no second
        # error when Python flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
