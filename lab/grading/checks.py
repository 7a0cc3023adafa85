"""Helpers for grader tests: failures read as feedback a student can act on."""

from __future__ import annotations

import pytest

from lab.grading.nodes import GuestNode
from lab.lana.procfs import FBlock, parse_fblocks


def expect(condition: object, feedback: str) -> None:
    """Fail the check with `feedback` (no traceback: the message is the feedback)."""
    if not condition:
        pytest.fail(feedback, pytrace=False)


def fblocks(guest: GuestNode) -> dict[str, FBlock]:
    result = guest.run("cat /proc/net/lana/fblocks")
    expect(result.exit_code == 0,
           f"{guest.name}: /proc/net/lana/fblocks does not exist: lana.ko is not loaded "
           "(did your script run `modprobe lana`, or stop before it?)")
    return parse_fblocks(result.stdout)


def instance(guest: GuestNode, name: str, type_: str,
             blocks: dict[str, FBlock] | None = None) -> FBlock:
    """The instance `name`, which must be of `type_` (pass `blocks` to save a read)."""
    blocks = fblocks(guest) if blocks is None else blocks
    present = ", ".join(f"{b.name} ({b.type})" for b in blocks.values()) or "none"
    expect(name in blocks, f"{guest.name}: there is no LANA instance named '{name}' "
           f"(instances: {present}); create it with "
           + (f"`vlink ethernet hook {name}`" if type_ == "eth" else f"`fbctl add {name} {type_}`"))
    block = blocks[name]
    expect(block.type == type_, f"{guest.name}: instance '{name}' is of type "
           f"'{block.type}', but must be of type '{type_}'")
    return block


def expect_on_top(guest: GuestNode, upper: str, lower: str,
                  blocks: dict[str, FBlock] | None = None) -> None:
    """`fbctl bind upper lower` must have been done (pass `blocks` to save a read)."""
    blocks = fblocks(guest) if blocks is None else blocks
    names = {b.idp: b.name for b in blocks.values()}
    for name in (upper, lower):
        expect(name in blocks, f"{guest.name}: there is no instance '{name}'")
    up, low = blocks[upper], blocks[lower]
    below = [names.get(p.idp, str(p.idp)) for p in up.ports if p.direction == "out"]
    expect(low.name in below,
           f"{guest.name}: '{upper}' must sit on top of '{lower}' (`fbctl bind {upper} "
           f"{lower}`), but '{upper}' sits on "
           + (", ".join(f"'{n}'" for n in below) if below else "nothing (it is not bound)")
           + ("; you bound them the other way round: `fbctl bind A B` puts A on top of B"
              if any(names.get(p.idp) == upper for p in low.ports if p.direction == "out")
              else ""))


def counter(guest: GuestNode, name: str) -> tuple[int, int]:
    result = guest.run(f"cat /proc/net/lana/fblock/{name}")
    expect(result.exit_code == 0, f"{guest.name}: there is no counter '{name}' "
           f"(/proc/net/lana/fblock/{name} does not exist)")
    fields = result.stdout.split()
    expect(len(fields) >= 2 and all(f.isdigit() for f in fields[:2]),
           f"{guest.name}: '{name}' is not a counter (its proc file shows "
           f"{result.stdout.strip()!r})")
    return int(fields[0]), int(fields[1])
