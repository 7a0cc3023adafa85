"""Exercise 8 grader fixtures: the defended stack of lab.autonomic.scenario in vm1, the
student's policy.py run by the controller (python3 -m lab.autonomic) there, FLOODS floods
of the variant's EtherType plus one more during which the controller is told to stop."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lab.autonomic import scenario
from lab.autonomic.journal import JournalRecord
from lab.grading.nodes import GuestNode

FLOODS = 3  # graded floods; one more tests stopping the controller
MAX_FLOOD_S = 5.0  # a flood nobody reacts to ends after this long
MAX_RECOVERY_S = 10.0  # after a flood, how long the stack has to get its shape back
POLICY = f"{scenario.WORK}/policy.py"


@dataclass
class Defence:
    """What happened in vm1. `failed`: why the controller never ran the floods."""

    failed: str | None = None
    run: scenario.FloodRun | None = None
    journal: list[JournalRecord] = field(default_factory=list)
    flood_ethertype: int = 0

    @property
    def graded(self) -> list[dict[str, Any]]:
        return self.run.floods[:FLOODS] if self.run else []

    def refusals(self) -> list[str]:
        """The kernel's refusals of the policy's commands, as `command args: message`."""
        return [f"`{r.fields['command']} {' '.join(r.fields['args'])}`: {r.fields['error']}"
                for r in self.journal if r.kind == "action" and not r.fields["ok"]]

    def policy_errors(self) -> list[str]:
        return [f"{r.fields['hook']}: {r.fields['error']}" for r in self.journal
                if r.kind == "error"]


@pytest.fixture(scope="session")
def defence(vm1: GuestNode, submission: Path, variant: dict[str, Any]) -> Iterator[Defence]:
    policy = submission / "policy.py"
    if not policy.is_file():
        pytest.fail(f"the submission has no policy.py: put it into {submission}",
                    pytrace=False)
    flood_type = int(variant["flood_ethertype"])
    scenario.build_stack(vm1)
    vm1.put(POLICY, policy.read_bytes())
    controller = scenario.start_controller(vm1, f"{POLICY}:Guard")
    try:
        if controller.failed is not None:
            yield Defence(failed=controller.failed, journal=scenario.journal(vm1))
            return
        run = scenario.flood(vm1, FLOODS + 1, flood_type, max_flood=MAX_FLOOD_S,
                             max_recovery=MAX_RECOVERY_S, stop_group=controller.pid)
        scenario.wait_stopped(vm1, controller)
        yield Defence(run=run, journal=scenario.journal(vm1), flood_ethertype=flood_type)
    finally:
        scenario.stop_controller(vm1, controller)
        scenario.tear_down_stack(vm1)
