"""Exercise 1 grader fixtures: the student's stack.sh, applied once in vm1."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.grading.apply import run_script
from lab.grading.nodes import GuestNode
from lab.vm.qga import ExecResult


@pytest.fixture(scope="session")
def stack(vm1: GuestNode, submission: Path) -> ExecResult:
    """stack.sh has run in vm1 (whether or not it succeeded)."""
    return run_script(vm1, submission, "stack.sh")
