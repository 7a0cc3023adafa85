"""Integrity of the exercises graded with the instruction clock (exercises 6 and 7, which
measure), on one lab booted with it; integrity.py says what is checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from integrity import Labs, cases, grade_and_check, module_labs

from lab.grading.exercise import Exercise

pytestmark = [pytest.mark.vm, pytest.mark.slow]


@pytest.fixture(scope="module")
def labs(image) -> Iterator[Labs]:
    yield from module_labs(image, "instructions")


@pytest.mark.parametrize(("exercise", "kind"), cases("instructions"))
def test_submission(exercise: Exercise, kind: str, labs: Labs, tmp_path: Path) -> None:
    grade_and_check(exercise, kind, labs, tmp_path)
