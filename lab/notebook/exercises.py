"""Exercises from a notebook: a working copy of the starter files, running the student's
script in a VM the way the grader does, and the grader's report as a table."""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

import pandas as pd

from lab.grading.engine import GradeResult
from lab.grading.exercise import Exercise, find_exercise
from lab.grading.report import render_report
from lab.notebook.nodes import VmNode
from lab.vm.qga import ExecResult

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
# the bootcamp server gives each participant their own (lab/hub/spawner.py)
WORK_DIR = Path(os.environ.get("LANALAB_WORK_DIR") or NOTEBOOKS_DIR / "work")


def exercise(name: str) -> Exercise:
    """An exercise by folder name, number or slug ("01-first-stack", "1", "first-stack")."""
    return find_exercise(name)


def workspace(name: str, use_reference_solution: bool = False) -> Path:
    """The folder with your files for an exercise: notebooks/work/<exercise>/, filled from
    the starter files the first time (your edits are never overwritten). With
    use_reference_solution the exercise's own solution folder is used instead."""
    ex = find_exercise(name)
    if use_reference_solution:
        return ex.folder("solution")
    work = WORK_DIR / ex.name
    if not work.is_dir():
        shutil.copytree(ex.folder("starter"), work)
    return work


def show_files(folder: Path, *names: str) -> None:
    """Show the text files of a folder (or the named ones) as code blocks."""
    from IPython.display import Markdown, display

    paths = [folder / n for n in names] if names else sorted(
        p for p in folder.iterdir() if p.is_file())
    for path in paths:
        fence = "sh" if path.suffix == ".sh" else "c" if path.suffix == ".c" else ""
        display(Markdown(f"**{path.name}** (`{path}`)\n```{fence}\n"
                         f"{path.read_text().rstrip()}\n```"))


class ScriptRun:
    """What running a script in a VM did, command by command (from `sh -e -x`)."""

    def __init__(self, script: str, result: ExecResult) -> None:
        self.script = script
        self.result = result

    @property
    def ok(self) -> bool:
        return self.result.exit_code == 0

    def commands(self) -> list[str]:
        return [line[2:] for line in self.result.stderr.splitlines() if line.startswith("+ ")]

    def __repr__(self) -> str:
        return self._text()

    def _text(self) -> str:
        lines = [f"$ {c}" for c in self.commands()]
        other = [ln for ln in self.result.stderr.splitlines() if not ln.startswith("+ ")]
        lines += other + ([self.result.stdout.rstrip()] if self.result.stdout.strip() else [])
        verdict = (f"{self.script} ran to the end" if self.ok else
                   f"{self.script} stopped with exit code {self.result.exit_code} at the "
                   f"last command above")
        return "\n".join([*lines, verdict])

    def _repr_html_(self) -> str:
        colour = "#2b7a2b" if self.ok else "#b22222"
        return f"<pre style='border-left:4px solid {colour};padding-left:6px'>" \
               f"{html.escape(self._text())}</pre>"


def run_script(vm: VmNode, folder: Path, script: str = "stack.sh") -> ScriptRun:
    """Copy the folder's files into the VM and run `sh -e -x script` there, exactly as the
    grader does (it stops at the first failing command)."""
    from lab.grading.apply import run_script as grading_run_script

    return ScriptRun(script, grading_run_script(vm.grading_node(), Path(folder), script))


class GradeReport:
    """A grading result shown as a score and a table of checks (feedback where failed)."""

    def __init__(self, result: GradeResult) -> None:
        self.result = result

    @property
    def passed(self) -> bool:
        return self.result.passed

    @property
    def score(self) -> tuple[int, int]:
        return self.result.score, self.result.max_score

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"check": c["title"], "result": c["status"].upper(),
                              "points": f"{c['points']}/{c['max_points']}",
                              "feedback": c["feedback"] if c["status"] != "pass" else ""}
                             for c in self.result.checks])

    def __repr__(self) -> str:
        return render_report(self.result)

    def _repr_html_(self) -> str:
        verdict = "all checks passed" if self.passed else "some checks did not pass"
        return (f"<b>{html.escape(self.result.exercise)}: score {self.result.score} / "
                f"{self.result.max_score}</b> ({verdict})"
                + self.table().to_html(index=False))
