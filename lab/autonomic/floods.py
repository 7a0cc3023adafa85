"""Floods against a controlled stack, sent from inside the guest (standard library and
lab.autonomic only: this runs in the guest's python3, see lab.autonomic.bundle).

    python3 -m lab.autonomic.floods --floods 20 > result.json

Sends from `--iface` (one end of a veth pair; the other end is hooked into LANA) a
legitimate flow of `--legit` frames at `--legit-pps`, all the time, and `--floods` times a
flood of `--flood` frames as fast as it can. A flood goes on until the stack's bindings
(/proc/net/lana/fblocks) differ from the first ones, i.e. until a controller spliced
something in, then for `--after-guard` seconds more; the next flood starts when the
shape (blocks and bindings) is the first one again. The result (JSON on standard output)
has, per flood, the times (time.monotonic(): the same clock as the controller's journal),
the shape seen while guarded and after, and the frames sent before and after the change
was seen.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from lab.autonomic.stack import Shape, shape_of
from lab.lana.procfs import parse_fblocks

FBLOCKS = Path("/proc/net/lana/fblocks")
CHECK_EVERY = 100  # flood frames between two looks at the shape


def current_shape() -> Shape:
    """The stack's blocks and bindings by name (IDPs, counts and references left out)."""
    return shape_of(parse_fblocks(FBLOCKS.read_text()))


class Sender:
    def __init__(self, iface: str, peer: str, legit: int, flood: int, legit_pps: float):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.sock.bind((iface, 0))
        dst = _mac(peer)
        src = _mac(iface)
        self.legit_frame = dst + src + legit.to_bytes(2, "big") + b"L" * 46
        self.flood_frame = dst + src + flood.to_bytes(2, "big") + b"F" * 46
        self.period = 1.0 / legit_pps
        self.next_legit = time.monotonic()
        self.legit = 0
        self.flood = 0

    def keep_legit_going(self) -> None:
        now = time.monotonic()
        if now >= self.next_legit:
            self.sock.send(self.legit_frame)
            self.legit += 1
            self.next_legit = max(self.next_legit + self.period, now)

    def flood_burst(self, frames: int) -> None:
        for _ in range(frames):
            self.sock.send(self.flood_frame)
            self.flood += 1
            self.keep_legit_going()

    def legit_only(self, seconds: float, until_shape: Shape | None = None) -> bool:
        """Legitimate frames only, for `seconds` or until the shape is `until_shape`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until_shape is not None and current_shape() == until_shape:
                return True
            self.keep_legit_going()
            time.sleep(min(self.period / 4, 0.005))  # pacing, not waiting for a state
        return until_shape is None


def _mac(iface: str) -> bytes:
    text = Path(f"/sys/class/net/{iface}/address").read_text().strip()
    return bytes.fromhex(text.replace(":", ""))


def one_flood(sender: Sender, first: Shape, max_flood: float, after_guard: float,
              max_recovery: float, stop_group: int | None = None) -> dict[str, Any]:
    """One flood; with stop_group, SIGTERM that process group once the guard is seen
    (a controller told to stop while it guards must leave the stack as it found it)."""
    record: dict[str, Any] = {"start": time.monotonic()}
    flood_before = sender.flood
    deadline = record["start"] + max_flood
    while time.monotonic() < deadline:
        sender.flood_burst(CHECK_EVERY)
        guarded = current_shape()
        if guarded.bindings != first.bindings:  # spliced in (an added block is not yet)
            record["guard_seen"] = time.monotonic()
            record["shape_guarded"] = guarded.describe()
            record["fblocks_guarded"] = FBLOCKS.read_text()
            if stop_group is not None:
                os.killpg(stop_group, signal.SIGTERM)
                record["stop_sent"] = time.monotonic()
            break
    record["flood_before_guard"] = sender.flood - flood_before
    flood_after = sender.flood
    if "guard_seen" in record and stop_group is None:  # flood the guard a while too
        end_at = time.monotonic() + after_guard
        while time.monotonic() < end_at:
            sender.flood_burst(CHECK_EVERY)
    record["flood_after_guard"] = sender.flood - flood_after
    record["end"] = time.monotonic()
    if "guard_seen" in record and sender.legit_only(max_recovery, until_shape=first):
        record["restored_seen"] = time.monotonic()
    record["shape_after"] = current_shape().describe()
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lab.autonomic.floods",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--iface", default="va")
    parser.add_argument("--peer", default="vb", help="the veth end LANA has hooked")
    parser.add_argument("--legit", type=lambda s: int(s, 0), default=0x88B5)
    parser.add_argument("--flood", type=lambda s: int(s, 0), default=0x88B6)
    parser.add_argument("--legit-pps", type=float, default=100.0)
    parser.add_argument("--floods", type=int, default=20)
    parser.add_argument("--max-flood", type=float, default=5.0,
                        help="seconds a flood lasts at most when nothing reacts")
    parser.add_argument("--after-guard", type=float, default=0.3)
    parser.add_argument("--max-recovery", type=float, default=10.0,
                        help="seconds after a flood to wait for the first shape again")
    parser.add_argument("--stop-group", type=int, help="in the last flood, SIGTERM this "
                        "process group (the controller's) once the guard is seen")
    parser.add_argument("--tail", type=float, default=0.3,
                        help="seconds of legitimate frames after the last flood")
    args = parser.parse_args(argv)
    sender = Sender(args.iface, args.peer, args.legit, args.flood, args.legit_pps)
    first = current_shape()
    floods = []
    sender.legit_only(args.tail)
    for i in range(args.floods):
        stop = args.stop_group if i == args.floods - 1 else None
        floods.append(one_flood(sender, first, args.max_flood, args.after_guard,
                                args.max_recovery, stop))
        if "restored_seen" not in floods[-1]:
            break  # no reaction, or no way back: more floods would measure nothing
    sender.legit_only(args.tail)
    print(json.dumps({"first_shape": first.describe(),
                      "legit": sender.legit, "flood": sender.flood, "floods": floods}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
