"""What a grading run leaves behind: report.txt for the student, score.json for tools
(points per check, feedback per failure), and junit.xml (written by pytest itself)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.grading.engine import GradeResult

_MARK = {"pass": "PASS", "fail": "FAIL", "crash": "CRASH", "error": "ERROR"}


def render_report(result: GradeResult) -> str:
    lines = [f"LANA lab: {result.exercise}"
             + (f"  (student {result.student})" if result.student else ""),
             f"score: {result.score} / {result.max_score}"]
    if result.variant:
        lines.append("your parameters: " + ", ".join(f"{k}={v}" for k, v in
                                                     result.variant.items()))
    lines.append("")
    for check in result.checks:
        hidden = " [hidden]" if check["hidden"] else ""
        lines.append(f"{_MARK[check['status']]:5} {check['points']}/{check['max_points']}  "
                     f"{check['title']}{hidden}")
        if check["status"] != "pass":
            lines.append(textwrap.indent(check["feedback"].rstrip(), "        "))
    failed = result.failed()
    lines += ["", "all checks passed" if not failed else
              f"{len(failed)} check(s) did not pass: read the feedback above, fix, grade again"]
    return "\n".join(lines) + "\n"


def write_outputs(result: GradeResult, out: Path) -> dict[str, Path]:
    report = out / "report.txt"
    report.write_text(render_report(result))
    score = out / "score.json"
    score.write_text(json.dumps(result.to_json(), indent=2))
    return {"report": report, "score": score, "junit": out / "junit.xml"}
