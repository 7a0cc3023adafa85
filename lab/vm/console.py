"""Serial console watcher: spot guest kernel trouble in the console log and cut out its trace.

Division of labour: qemu writes the guest's ttyS0 to a log file; `ConsoleWatcher` reads what
was appended since the last poll (complete lines only), keeps a short tail for error
messages, and turns Oops/BUG/panic/WARNING/GPF/Call Trace blocks into `KernelProblem`s.
`QemuVM.check_console()` raises `GuestKernelError` from them; `find_problems()` is pure so it
can be tested against canned logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# A kernel console line: "[    2.600459] message" (printk time is on in Debian's config).
_STAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
# Message starts that open a problem block; matched after the timestamp.
_TRIGGERS = re.compile(
    r"^(?:"
    r"Oops\b|"
    r"BUG:|"
    r"Kernel panic\b|"
    r"WARNING:|"
    r"general protection fault|"
    r"Call Trace:"
    r")"
)
_CUT_HERE = "------------[ cut here ]------------"
_END = re.compile(r"---\[ end (?:trace|Kernel panic)")
MAX_TRACE_LINES = 120


@dataclass(frozen=True)
class KernelProblem:
    headline: str  # the trigger line without its timestamp, e.g. "BUG: kernel NULL pointer ..."
    trace: str  # the whole block as it appeared on the console
    line_no: int  # 1-based line of the headline in the console log
    complete: bool = True  # False: the block ran into the end of what was logged so far

    @property
    def is_panic(self) -> bool:
        return self.headline.startswith("Kernel panic")


def strip_stamp(line: str) -> str:
    return _STAMP.sub("", line.rstrip("\r"))


def find_problems(lines: list[str], first_line_no: int = 1) -> list[KernelProblem]:
    """Problem blocks in `lines` (console lines without newlines), in order."""
    return [problem for problem, _, _ in _scan(lines, first_line_no)]


def _scan(lines: list[str], first_line_no: int) -> list[tuple[KernelProblem, int, int]]:
    found = []
    i = 0
    while i < len(lines):
        message = strip_stamp(lines[i])
        # kernel lines carry a printk timestamp; user programs writing to ttyS0 do not
        if not _TRIGGERS.match(message) or not _STAMP.match(lines[i]):
            i += 1
            continue
        start = i - 1 if i > 0 and strip_stamp(lines[i - 1]) == _CUT_HERE else i
        end, complete = _block_end(lines, i)
        trace = "\n".join(line.rstrip("\r") for line in lines[start:end])
        found.append((KernelProblem(message, trace, first_line_no + i, complete), start, end))
        i = end
    return found


def _block_end(lines: list[str], start: int) -> tuple[int, bool]:
    """(index after the block that opens at `start`, whether it is known to be complete):
    through the end marker, else until the kernel stops talking (a line without a
    timestamp) or MAX_TRACE_LINES."""
    limit = start + MAX_TRACE_LINES
    for j in range(start + 1, min(len(lines), limit)):
        if _END.search(lines[j]):
            return j + 1, True
        if not _STAMP.match(lines[j]):
            return j, True
    return min(len(lines), limit), len(lines) >= limit


class ConsoleWatcher:
    """Follows one console log file; reports each problem once, when its block is complete."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = ""
        self._lines: list[str] = []
        self._scan_from = 0  # lines before this index were scanned for good
        self.problems: list[KernelProblem] = []

    def poll(self, final: bool = False) -> list[KernelProblem]:
        """Read what was appended; return new problems. A block still being printed is held
        back until it ends, unless `final` (the VM stopped or hung)."""
        self._read_new_lines()
        new: list[KernelProblem] = []
        lines = self._lines[self._scan_from :]
        if final and self._partial:
            lines = [*lines, self._partial]
        next_scan = len(self._lines)
        for problem, start, end in _scan(lines, self._scan_from + 1):
            if not problem.complete and not final:
                next_scan = self._scan_from + start
                break
            new.append(problem)
            next_scan = min(len(self._lines), self._scan_from + end)
        self._scan_from = next_scan
        self.problems += new
        return new

    def tail(self, lines: int = 40) -> str:
        self._read_new_lines()
        items = self._lines[-lines:] + ([self._partial] if self._partial else [])
        return "\n".join(items[-lines:])

    def contains(self, text: str) -> bool:
        self._read_new_lines()
        return any(text in line for line in self._lines) or text in self._partial

    def _read_new_lines(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self._offset += len(data)
        text = self._partial + data.decode("utf-8", errors="replace")
        *lines, self._partial = text.split("\n")
        self._lines += [line.rstrip("\r") for line in lines]
