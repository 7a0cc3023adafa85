"""Policies: what the controller does when an event comes. A policy is a class with up
to four hooks; the controller calls them one at a time, never concurrently.

    class MyPolicy(Policy):
        def on_event(self, event, stack):
            if event.kind == "rate_high" and event.block == "c0":
                stack.guard("g0", "bpf", under="app", settings=[...])

Two ready-made policies below: FloodGuard (thesis §4.2.9's example of a stack that
defends itself) and LinkFailover (rebind to another device when a link goes down).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.autonomic.stack import Stack

if TYPE_CHECKING:
    from lab.lana.client import LanaEvent


class Policy:
    """Hooks, all optional. `stack` reads and changes the stack (lab.autonomic.stack)."""

    def start(self, stack: Stack) -> None:
        """Once, after the controller subscribed to the events and before any comes."""

    def on_event(self, event: LanaEvent, stack: Stack) -> None:
        """Every event any block emits (event.block, .type, .kind, .value)."""

    def on_idle(self, stack: Stack) -> None:
        """When no event came for the controller's idle interval."""

    def stop(self, stack: Stack) -> None:
        """Once, when the controller is told to stop: leave the stack as you found it."""


class FloodGuard(Policy):
    """When `watch` (a counter with rate_high/rate_normal set) reports a flood, splice
    `guard` (a block of `guard_type` with `settings`, and `program` for a bpf guard) in
    under `victim`; when it reports the rate normal again, take the guard out. The stack
    is back to its first shape after every flood."""

    def __init__(self, watch: str, victim: str, guard_type: str,
                 settings: list[str] | None = None, program: str | None = None,
                 guard: str = "guard") -> None:
        self.watch, self.victim, self.guard_type = watch, victim, guard_type
        self.settings, self.program, self.guard = list(settings or []), program, guard
        self.guarding = False

    def on_event(self, event: LanaEvent, stack: Stack) -> None:
        if event.block != self.watch:
            return
        if event.kind == "rate_high" and not self.guarding:
            stack.guard(self.guard, self.guard_type, under=self.victim,
                        settings=self.settings, program=self.program)
            self.guarding = True
        elif event.kind == "rate_normal" and self.guarding:
            stack.unguard(self.guard)
            self.guarding = False

    def stop(self, stack: Stack) -> None:
        if self.guarding:
            stack.unguard(self.guard)
            self.guarding = False


class LinkFailover(Policy):
    """When the eth block `primary` reports its link down, move `upper` onto `backup`;
    when the primary's link is up again, move it back."""

    def __init__(self, upper: str, primary: str, backup: str) -> None:
        self.upper, self.primary, self.backup = upper, primary, backup
        self.on_backup = False

    def on_event(self, event: LanaEvent, stack: Stack) -> None:
        if event.block != self.primary:
            return
        if event.kind == "link_down" and not self.on_backup:
            stack.rebind(self.upper, self.primary, self.backup)
            self.on_backup = True
        elif event.kind == "link_up" and self.on_backup:
            stack.rebind(self.upper, self.backup, self.primary)
            self.on_backup = False
