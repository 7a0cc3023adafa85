"""Hidden checks of exercise 8 (instructor mode)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from lab.grading.checks import expect

if TYPE_CHECKING:
    from conftest import Defence


@pytest.mark.points(1)
def test_stopping_the_controller_leaves_the_stack_as_found(defence: Defence) -> None:
    """told to stop while it guards (SIGTERM), the controller takes the guard out"""
    expect(defence.failed is None and defence.run, "not checked: the controller did not run")
    assert defence.run is not None
    last = defence.run.floods[-1]
    expect("stop_sent" in last, "not checked: the last flood never got a guard")
    expect(any(r.kind == "stopped" for r in defence.journal),
           "the controller did not stop within 30 s of SIGTERM")
    expect("restored_seen" in last, f"after the controller stopped the stack stayed "
           f"`{last['shape_after']}`: Guard.stop must take a guard that is in out again")


@pytest.mark.points(1)
def test_policy_raised_nothing(defence: Defence) -> None:
    """no hook of the policy raised an exception"""
    errors = defence.policy_errors()
    expect(not errors, "your policy raised: " + "; ".join(errors[:3]))
