"""`lanalab capture`: record a pcap of a lab link with tcpdump, on this machine's side of it."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from lab.capture import Capture
from lab.errors import LabError
from lab.labstate import ActiveLab, find_lab


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("capture", help="capture a link's packets into a pcap file",
                       description="Capture packets on a lab link with tcpdump. WHERE is a "
                       "VM NIC (vm1 or vm1:eth1: its tap), a Mininet host interface (h1 or "
                       "h1:h1-eth0) or a switch (s1: its whole bridge). Stops after --count "
                       "packets or --seconds, whichever comes first. Once tcpdump listens, "
                       "'capturing on WHERE' is printed on stderr: traffic sent after that "
                       "line is in the file.")
    p.add_argument("where", metavar="WHERE")
    p.add_argument("-w", "--write", type=Path, required=True, help="pcap file to write")
    p.add_argument("-c", "--count", type=int, default=1000, help="packets (default 1000)")
    p.add_argument("--seconds", type=float, default=10.0, help="at most this long (default 10)")
    p.add_argument("--filter", default="", help="a tcpdump filter expression")
    p.add_argument("--run", help="run id (default: the only running lab)")
    p.set_defaults(func=cmd_capture)


def capture_argv(lab: ActiveLab, where: str) -> list[str]:
    """The command that captures at WHERE: tcpdump on the host, or inside a host's netns."""
    node, _, iface = where.partition(":")
    state = lab.state
    if node in state["vms"]:
        nics = state["vms"][node]["nics"]
        for nic in nics:
            if iface in ("", nic["guest_if"]):
                return ["tcpdump", "-i", nic["tap"]]
        raise LabError(f"{node} has no interface {iface!r}",
                       hint=f"interfaces: {', '.join(n['guest_if'] for n in nics)}")
    if node in state["hosts"]:
        links = state["hosts"][node]["links"]
        for link in links:
            if iface in ("", link["if"]):
                return ["mnexec", "-a", str(state["hosts"][node]["pid"]), "tcpdump", "-i",
                        link["if"]]
        raise LabError(f"{node} has no interface {iface!r}",
                       hint=f"interfaces: {', '.join(lk['if'] for lk in links)}")
    if node in state["bridges"]:
        return ["tcpdump", "-i", state["bridges"][node]]
    names = [*state["vms"], *state["hosts"], *state["bridges"]]
    raise LabError(f"no node or switch {node!r} in lab {lab.id}",
                   hint=f"one of: {', '.join(names)}")


def cmd_capture(args: argparse.Namespace) -> int:
    lab = find_lab(args.run)
    capture = Capture(capture_argv(lab, args.where), args.write.resolve(), args.count,
                      args.filter)
    capture.start()
    # Said once tcpdump listens: a script may start its traffic when it reads this line.
    print(f"capturing on {args.where} (tcpdump is listening)", file=sys.stderr, flush=True)
    try:
        capture.wait(args.seconds)
    finally:
        capture.stop()
    if capture.proc is not None and capture.proc.returncode not in (0, -signal.SIGINT) \
            or not args.write.exists():
        raise LabError("capture failed: " + "\n".join(capture.stderr_lines).strip())
    print(capture.summary() or "captured")  # tcpdump's "N packets captured", ...
    print(f"written to {args.write}")
    return 0
