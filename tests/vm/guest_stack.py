"""Helpers for tests that build LANA stacks in a guest and read them back: the kernel log's
trouble, Linux's own counters, a block's "key count" proc lines, and waits on a count."""

from __future__ import annotations

from collections.abc import Callable

from lab.labrun import LabRun
from lab.polling import poll

PROC = "/proc/net/lana/fblock"
TROUBLE = r"BUG|Oops|WARNING|general protection|Call Trace"


def trouble(lab: LabRun, vm: str = "vm1") -> str:
    """Lines of the guest's kernel log that show a kernel problem ('' when clean)."""
    return lab.sh(vm, f"dmesg | grep -E '{TROUBLE}' || true").strip()


def snmp(lab: LabRun, vm: str = "vm1") -> dict[str, int]:
    """The guest Linux's own counters (/proc/net/snmp), as 'Ip.InReceives' etc."""
    lines = lab.sh(vm, "cat /proc/net/snmp").splitlines()
    values: dict[str, int] = {}
    for names, numbers in zip(lines[::2], lines[1::2], strict=True):
        group, *keys = names.split()
        _, *nums = numbers.split()
        group = group.removesuffix(":")
        values.update({f"{group}.{key}": int(num) for key, num in zip(keys, nums, strict=True)})
    return values


def key_counts(text: str) -> dict[str, int]:
    """The "key count" lines of a proc file (other lines are left out)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            values[parts[0]] = int(parts[1])
    return values


def block_counts(lab: LabRun, name: str, vm: str = "vm1") -> dict[str, int]:
    return key_counts(lab.sh(vm, f"cat {PROC}/{name}"))


def wait_until(read: Callable[[], int], expect: int, timeout: float = 30.0) -> int:
    """Poll `read()` until it reaches `expect` (frames may still be on their way), then
    read once more: a count beyond `expect` shows up too."""
    poll(lambda: read() >= expect, timeout, interval=0.2)
    return read()


def wait_count(lab: LabRun, name: str, key: str, expect: int, timeout: float = 30.0,
               vm: str = "vm1") -> int:
    """A block's "key count" line, waited for with wait_until."""
    return wait_until(lambda: block_counts(lab, name, vm)[key], expect, timeout)
