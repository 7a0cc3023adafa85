"""Who is in the class: one folder per student in DIR (folder name = student id), and an
optional roster file (roster.csv: id,name,email) with names and emails."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from lab.errors import GradingError

ROSTER_FILES = ("roster.csv",)


@dataclass(frozen=True)
class Student:
    id: str
    folder: Path
    name: str = ""
    email: str = ""


def read_roster(path: Path) -> dict[str, tuple[str, str]]:
    """id -> (name, email); a header row (id,name,email) is optional."""
    people: dict[str, tuple[str, str]] = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.reader(f):
            if not row or not row[0].strip() or row[0].strip().lower() in ("id", "student id"):
                continue
            cells = [c.strip() for c in row] + ["", ""]
            people[cells[0]] = (cells[1], cells[2])
    return people


def discover(class_dir: Path, roster: Path | None = None) -> list[Student]:
    if not class_dir.is_dir():
        raise GradingError(f"class folder {class_dir} does not exist",
                           "pass a folder holding one folder per student")
    roster = roster or next((class_dir / n for n in ROSTER_FILES
                             if (class_dir / n).is_file()), None)
    people = read_roster(roster) if roster else {}
    students = [Student(p.name, p.resolve(), *people.get(p.name, ("", "")))
                for p in sorted(class_dir.iterdir())
                if p.is_dir() and not p.name.startswith(".")]
    if not students:
        raise GradingError(f"{class_dir} holds no student folders")
    return students
