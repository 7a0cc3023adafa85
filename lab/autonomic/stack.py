"""The live stack as a policy sees it: who is bound to whom, and the changes a policy
makes, each one journaled with its outcome."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lab.autonomic.journal import Journal
from lab.lana.client import LanaError
from lab.lana.procfs import FBlock, parse_fblocks

PROC = Path("/proc/net/lana")


class Control(Protocol):
    """The part of lab.lana.client.Lana a Stack uses."""

    def add(self, name: str, type: str, opt: str | None = None) -> None: ...
    def rm(self, name: str) -> None: ...
    def set(self, name: str, option: str) -> None: ...
    def bind(self, upper: str, lower: str) -> None: ...
    def unbind(self, upper: str, lower: str) -> None: ...
    def insert(self, fresh: str, upper: str) -> None: ...
    def cut(self, name: str) -> None: ...


@dataclass(frozen=True)
class Shape:
    """What a stack is made of: its blocks (name, type) and bindings (upper, lower).
    Two equal shapes are the same stack, whatever their IDPs and counters."""

    blocks: frozenset[tuple[str, str]]
    bindings: frozenset[tuple[str, str]]

    def describe(self) -> str:
        """"app on legit; c0 on vb; ...", then the blocks bound to nothing."""
        bound = {name for binding in self.bindings for name in binding}
        parts = [f"{upper} on {lower}" for upper, lower in sorted(self.bindings)]
        parts += [f"{name} ({type}) alone" for name, type in sorted(self.blocks)
                  if name not in bound]
        return "; ".join(parts) or "(no blocks)"


def shape_of(blocks: dict[str, FBlock]) -> Shape:
    names = {block.idp: block.name for block in blocks.values()}
    bindings = set()
    for block in blocks.values():
        for port in block.ports:
            if port.direction == "in" and port.idp in names:  # that block sits on us
                bindings.add((names[port.idp], block.name))
    return Shape(frozenset((b.name, b.type) for b in blocks.values()), frozenset(bindings))


class Stack:
    """Read the stack, change it. Changes go through `control` (a Lana connection); each
    is journaled as an "action" with ok or the kernel's refusal, which is raised again."""

    def __init__(self, control: Control, journal: Journal, proc: Path = PROC) -> None:
        self._control = control
        self._journal = journal
        self._proc = proc

    # --- reading ---------------------------------------------------------------

    def blocks(self) -> dict[str, FBlock]:
        return parse_fblocks((self._proc / "fblocks").read_text())

    def read(self, name: str) -> str:
        """The block's own /proc/net/lana/fblock/<name> file (counts, settings)."""
        return (self._proc / "fblock" / name).read_text()

    def shape(self) -> Shape:
        return shape_of(self.blocks())

    def lowers(self, name: str) -> list[str]:
        """The blocks `name` sits on."""
        return sorted(lower for upper, lower in self.shape().bindings if upper == name)

    def uppers(self, name: str) -> list[str]:
        """The blocks sitting on `name`."""
        return sorted(upper for upper, lower in self.shape().bindings if lower == name)

    def exists(self, name: str) -> bool:
        return name in self.blocks()

    # --- changing ----------------------------------------------------------------

    def guard(self, name: str, type: str, under: str, settings: Sequence[str] = (),
              program: str | None = None) -> None:
        """Add block `name`, apply its settings (and, for a bpf block, its program),
        splice it in right under `under` while packets flow (fbctl insert: nothing is
        lost). On a refusal the half-made block is removed again: the shape is kept."""
        self._act("add", name, type)
        try:
            for option in settings:
                self._act("set", name, option)
            if program is not None:
                self.load_program(name, program)
            self._act("insert", name, under)
        except (LanaError, OSError):
            self._quietly_remove(name)
            raise

    def load_program(self, name: str, program: str) -> None:
        """Write a classic BPF program (bpfc or tcpdump -ddd form) into a bpf block;
        the kernel's checker refuses a bad one (OSError EINVAL, the old one stays)."""
        try:
            (self._proc / "fblock" / name).write_text(program)
        except OSError as err:
            self._journal.write("action", command="load", args=[name], ok=False,
                                errno=err.errno, error=err.strerror or str(err))
            raise
        self._journal.write("action", command="load", args=[name], ok=True)

    def unguard(self, name: str) -> None:
        """Take `name` out (its upper and lower bound directly again), then remove it."""
        self._act("cut", name)
        self._act("rm", name)

    def rebind(self, upper: str, old_lower: str, new_lower: str) -> None:
        """Move `upper` from `old_lower` onto `new_lower` (for example after a link went
        down): unbind first, since a block may sit on one lower block only."""
        self._act("unbind", upper, old_lower)
        self._act("bind", upper, new_lower)

    # the single commands, as fbctl has them (each journaled; a refusal raises LanaError)
    def add(self, name: str, type: str) -> None:
        self._act("add", name, type)

    def rm(self, name: str) -> None:
        """Remove a block; the kernel refuses while it is bound (cut or unbind first)."""
        self._act("rm", name)

    def set(self, name: str, option: str) -> None:
        self._act("set", name, option)

    def bind(self, upper: str, lower: str) -> None:
        self._act("bind", upper, lower)

    def unbind(self, upper: str, lower: str) -> None:
        self._act("unbind", upper, lower)

    def insert(self, fresh: str, upper: str) -> None:
        """Splice the unbound block `fresh` in between `upper` and the block below it."""
        self._act("insert", fresh, upper)

    def cut(self, name: str) -> None:
        """Bind the blocks above and below `name` directly; `name` stays, unbound."""
        self._act("cut", name)

    def _act(self, command: str, *args: str) -> None:
        try:
            getattr(self._control, command)(*args)
        except LanaError as err:
            self._journal.write("action", command=command, args=list(args), ok=False,
                                errno=err.errno, error=err.message)
            raise
        self._journal.write("action", command=command, args=list(args), ok=True)

    def _quietly_remove(self, name: str) -> None:
        with contextlib.suppress(LanaError):  # never added, or gone: nothing to undo
            self._control.rm(name)
