"""The gradebook: gradebook.csv and gradebook.json, one row per student.

CSV layout (Moodle's grade import and Canvas's gradebook import both take it: identifier
columns first, then one column per graded item, then the total): `Student ID, Name,
Email, <one column per check: points>, Total, Max, Status, Note`. Status is graded, crash
(a guest kernel crashed on that submission), timeout (a hang past the time limit) or error
(the submission could not be graded); Note says what happened.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

HEAD = ["Student ID", "Name", "Email"]
TAIL = ["Total", "Max", "Status", "Note"]


def check_columns(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, int]]:
    """Checks in the order the graders ran them, and what each is worth."""
    columns: list[str] = []
    worth: dict[str, int] = {}
    for row in rows:
        for name in row.get("checks", {}):
            if name not in columns:
                columns.append(name)
        worth.update(row.get("max_checks", {}))
    return columns, worth


def max_total(rows: list[dict[str, Any]]) -> int:
    return sum(check_columns(rows)[1].values())


def write_gradebook(rows: list[dict[str, Any]], out: Path) -> tuple[Path, Path]:
    rows = sorted(rows, key=lambda r: r["id"])
    columns, worth = check_columns(rows)
    total = sum(worth.values())
    csv_path = out / "gradebook.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEAD + columns + TAIL)
        for row in rows:
            writer.writerow([row["id"], row.get("name", ""), row.get("email", "")]
                            + [row.get("checks", {}).get(c, 0) for c in columns]
                            + [row["score"], total, row["status"], row.get("note", "")])
    json_path = out / "gradebook.json"
    json_path.write_text(json.dumps({"checks": [{"check": c, "max_points": worth.get(c, 0)}
                                                for c in columns],
                                     "max_score": total, "students": rows}, indent=2))
    return csv_path, json_path
