"""Integrity of the exercises graded with the wall clock (exercises 1-5 and 8), on one
lab; integrity.py says what is checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from integrity import (
    Labs,
    cases,
    grade_and_check,
    module_labs,
    student_variant_changes_what_must_pass,
)

from lab.grading.exercise import Exercise

pytestmark = [pytest.mark.vm, pytest.mark.slow]


@pytest.fixture(scope="module")
def labs(image) -> Iterator[Labs]:
    yield from module_labs(image, "real")


def test_student_variant_changes_what_must_pass(labs: Labs, tmp_path: Path) -> None:
    student_variant_changes_what_must_pass(labs, tmp_path)


@pytest.mark.parametrize(("exercise", "kind"), cases("real"))
def test_submission(exercise: Exercise, kind: str, labs: Labs, tmp_path: Path) -> None:
    grade_and_check(exercise, kind, labs, tmp_path)
