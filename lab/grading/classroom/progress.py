"""The progress line while a class is graded: done/total, running, failed, ETA."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, workers: int, stream: TextIO = sys.stdout) -> None:
        self.total, self.workers, self.stream = total, workers, stream
        self.done = self.failed = self.running = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def eta(self) -> float | None:
        if not self.done:
            return None
        per = (time.monotonic() - self.started) / self.done
        return per * (self.total - self.done)

    def line(self) -> str:
        eta = self.eta()
        shown = "?" if eta is None else f"{int(eta) // 60}m{int(eta) % 60:02d}s"
        return (f"[class] {self.done}/{self.total} done, {self.running} running, "
                f"{self.failed} failed, ETA {shown}")

    def _show(self, note: str) -> None:
        print(self.line() + (f"  {note}" if note else ""), file=self.stream, flush=True)

    def start(self, student: str) -> None:
        with self._lock:
            self.running += 1
            self._show(f"grading {student}")

    def finish(self, student: str, status: str, score: str) -> None:
        with self._lock:
            self.running -= 1
            self.done += 1
            if status != "graded":
                self.failed += 1
            self._show(f"{student}: {score}" + ("" if status == "graded" else f" ({status})"))

    def note(self, text: str) -> None:
        with self._lock:
            self._show(text)
