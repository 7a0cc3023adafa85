"""Progress lines for the image build: one line when a step starts and one when it ends,
with the elapsed seconds, plus a heartbeat line every few seconds while a long step waits
for something (mmdebstrap, the compiler), so a user never stares at a silent terminal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    """A `Progress` that prints nothing (tests, fixtures)."""


class StepTimer:
    """Numbered, timed build steps; `durations` maps step name to seconds."""

    def __init__(self, progress: Progress, total: int, heartbeat: float = 10.0) -> None:
        self.progress = progress
        self.total = total
        self.heartbeat = heartbeat
        self.durations: dict[str, float] = {}
        self._index = 0
        self._start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    @contextmanager
    def step(self, name: str, what: str, waiting_for: str | None = None) -> Iterator[None]:
        self._index += 1
        label = f"[{self._index}/{self.total}] {name}"
        self.progress(f"{label}: {what}" + (f" (waiting for {waiting_for})"
                                            if waiting_for else ""))
        start = time.monotonic()
        stop = threading.Event()
        beat = None
        if waiting_for:
            beat = threading.Thread(target=self._beat, args=(label, waiting_for, start, stop),
                                    daemon=True)
            beat.start()
        try:
            yield
        finally:
            stop.set()
            if beat:
                beat.join()
        seconds = time.monotonic() - start
        self.durations[name] = round(seconds, 2)
        self.progress(f"{label}: done in {seconds:.1f} s")

    def _beat(self, label: str, waiting_for: str, start: float, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat):
            self.progress(f"{label}: still waiting for {waiting_for} "
                          f"({time.monotonic() - start:.0f} s)")
