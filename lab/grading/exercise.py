"""Exercises on disk: exercises/<NN>-<slug>/ with exercise.toml, grader/, hidden/, starter/,
solution/, wrong/<name>/ and an optional variant.py (per-student parameters)."""

from __future__ import annotations

import hashlib
import importlib.util
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import GradingError

EXERCISES_DIR = Path(__file__).resolve().parents[2] / "exercises"


@dataclass(frozen=True)
class Exercise:
    path: Path
    meta: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def title(self) -> str:
        return str(self.meta.get("title", self.name))

    @property
    def topology(self) -> str:
        return str(self.meta.get("topology", "default"))

    @property
    def clock(self) -> str:
        """The guest clock the exercise is graded with (exercise.toml `clock`): "real", or
        "instructions" (TCG guests count instructions, so rates do not depend on the
        host's load; under KVM the clock stays real)."""
        from lab.labrun import CLOCKS

        clock = str(self.meta.get("clock", "real"))
        if clock not in CLOCKS:
            raise GradingError(f"{self.name}/exercise.toml: clock = {clock!r} is not one of "
                               + ", ".join(CLOCKS))
        return clock

    @property
    def grader_dir(self) -> Path:
        return self.path / "grader"

    @property
    def hidden_dir(self) -> Path:
        return self.path / "hidden"

    def folder(self, kind: str) -> Path:
        return self.path / kind

    def wrong_solutions(self) -> list[Path]:
        wrong = self.path / "wrong"
        return sorted(p for p in wrong.iterdir() if p.is_dir()) if wrong.is_dir() else []

    def variant(self, student: str | None) -> dict[str, Any]:
        """The parameters this student's submission must meet (default: no student id)."""
        module_path = self.path / "variant.py"
        if not module_path.is_file():
            return {}
        spec = importlib.util.spec_from_file_location(f"variant_{self.path.name}", module_path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not student:
            return dict(module.DEFAULT)
        return dict(module.derive(student_seed(student, self.name)))


def student_seed(student: str, exercise: str) -> int:
    """A stable number per (student, exercise): same id, same variant, on any machine."""
    digest = hashlib.sha256(f"{exercise}:{student.strip().lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def list_exercises() -> list[Exercise]:
    return [load(p) for p in sorted(EXERCISES_DIR.iterdir())
            if p.is_dir() and (p / "exercise.toml").is_file()]


def load(path: Path) -> Exercise:
    with open(path / "exercise.toml", "rb") as f:
        return Exercise(path, tomllib.load(f))


def find_exercise(name: str) -> Exercise:
    """By folder name (01-first-stack), number (1, 01) or slug (first-stack)."""
    candidate = Path(name)
    if (candidate / "exercise.toml").is_file():
        return load(candidate.resolve())
    for exercise in list_exercises():
        number, _, slug = exercise.name.partition("-")
        if name in (exercise.name, slug) or (name.isdigit() and int(name) == int(number)):
            return exercise
    known = ", ".join(e.name for e in list_exercises())
    raise GradingError(f"no exercise {name!r}", f"exercises: {known}")
