"""Exercise 2 grader fixtures: the student's stack.sh, applied once in vm1."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.grading.apply import run_script
from lab.grading.nodes import GuestNode, LabNodes
from lab.vm.qga import ExecResult


@pytest.fixture(scope="session")
def stack(vm1: GuestNode, submission: Path) -> ExecResult:
    """stack.sh has run in vm1 (whether or not it succeeded)."""
    return run_script(vm1, submission, "stack.sh")


def read_counter(vm: GuestNode, name: str) -> tuple[int, int] | None:
    fields = vm.run(f"cat /proc/net/lana/fblock/{name} 2>/dev/null").stdout.split()
    return (int(fields[0]), int(fields[1])) if len(fields) >= 2 and fields[0].isdigit() \
        else None


def ppe_packets(vm: GuestNode) -> int:
    text = vm.run("cat /proc/net/lana/ppe 2>/dev/null").stdout
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("CPU"))


@pytest.fixture(scope="session")
def traffic(stack: ExecResult, vm1: GuestNode, vm1_mac: str, lab: LabNodes) -> dict:
    """The corpus sent once from h1; what fb4, fb6 and the engine saw of it."""
    from lab.grading import corpus
    from lab.grading.traffic import send_frames, wait_settled

    classes = {
        "IPv4": [corpus.udp(vm1_mac, "10.0.0.1", 5000 + i, 100 + 10 * i) for i in range(12)],
        "ARP": [corpus.arp(vm1_mac, "10.0.0.1", reply=i % 3 == 0) for i in range(7)],
        "IPv6": [corpus.ipv6_udp(vm1_mac, 5000 + i, 120) for i in range(5)],
        "EtherType 0x88b5": [corpus.ethertype(vm1_mac, 0x88B5, 80) for _ in range(4)],
    }
    frames = [f for group in classes.values() for f in group]

    def read() -> tuple:
        return read_counter(vm1, "fb4"), read_counter(vm1, "fb6"), ppe_packets(vm1)

    before = read()
    send_frames(lab.host("h1"), frames)
    expect = tuple((c[0] + len(classes[k]), c[1] + sum(map(len, classes[k])))
                   if c is not None else None
                   for c, k in zip(before[:2], ("IPv4", "ARP"), strict=True))
    after = wait_settled(lambda: read()[:2], expect=expect)
    ppe = ppe_packets(vm1) - before[2]
    delta = {name: (a[0] - b[0], a[1] - b[1]) if a is not None and b is not None else None
             for name, a, b in zip(("fb4", "fb6"), after, before[:2], strict=True)}
    return {"classes": classes, "delta": delta, "ppe": ppe, "frames": len(frames)}
