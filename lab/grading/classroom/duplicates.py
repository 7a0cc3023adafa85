"""Identical submissions: the same normalised files (whitespace, blank lines and comment
lines do not count) in more than one student's folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lab.grading.classroom.roster import Student

_COMMENTS = ("#", "//", ";")


def normalised(data: bytes) -> bytes:
    lines = []
    for raw in data.decode("utf-8", errors="replace").splitlines():
        line = " ".join(raw.split())
        if line and not line.startswith(_COMMENTS):
            lines.append(line)
    return "\n".join(lines).encode()


def fingerprint(folder: Path) -> str | None:
    """None for a folder with no files (nothing to compare)."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if not files:
        return None
    for path in files:
        digest.update(path.name.encode() + b"\0" + normalised(path.read_bytes()) + b"\0")
    return digest.hexdigest()


def identical_groups(students: list[Student],
                     exclude: set[str] | None = None) -> list[list[str]]:
    """Groups of student ids with identical submissions (fingerprints in `exclude`, e.g.
    the untouched starter's, are not flagged)."""
    by_print: dict[str, list[str]] = {}
    for student in students:
        fp = fingerprint(student.folder)
        if fp is not None and fp not in (exclude or set()):
            by_print.setdefault(fp, []).append(student.id)
    return sorted(ids for ids in by_print.values() if len(ids) > 1)
