"""Classic BPF on the host: compile a student's filter with bpfc before any VM boots."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.errors import GradingError
from lab.grading.textfile import not_text

_INSN = re.compile(r"\{\s*(0x[0-9a-fA-F]+),\s*(\d+),\s*(\d+),\s*(0x[0-9a-fA-F]+)\s*\},")


@dataclass(frozen=True)
class Compiled:
    ok: bool
    program: str  # bpfc's output ({ code, jt, jf, k }, lines) when ok
    error: str

    def opcodes(self) -> list[int]:
        return opcodes(self.program)


def opcodes(program: str) -> list[int]:
    return [int(m.group(1), 16) for m in _INSN.finditer(program)]


def compile_filter(path: Path) -> Compiled:
    if shutil.which("bpfc") is None:
        raise GradingError("bpfc is not installed on this host",
                           "install the Debian package netsniff-ng")
    if not path.is_file():
        return Compiled(False, "", f"{path.name} is missing from your submission")
    if problem := not_text(path):
        return Compiled(False, "", problem)
    proc = subprocess.run(["bpfc", "-i", str(path)], capture_output=True, text=True,
                          errors="replace", timeout=30, check=False)
    if proc.returncode != 0 or not opcodes(proc.stdout):
        said = (proc.stderr.strip() or proc.stdout.strip().splitlines()[-1:] or ["no output"])
        said_text = said if isinstance(said, str) else said[0]
        return Compiled(False, "", f"bpfc cannot compile {path.name}: {said_text}")
    return Compiled(True, proc.stdout, "")
