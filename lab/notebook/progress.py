"""Progress of long steps (image build, VM boot) for a notebook: one live line with the
current step and a running clock, and the log of steps so far. Outside a notebook each
message is printed as a line."""

from __future__ import annotations

import html
import threading
import time

from lab.notebook.show import in_notebook

TICK_S = 0.5


class NotebookProgress:
    """A `Progress` callable (lab.labrun.Progress); call close() when the step is over."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.start = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.current = "starting"
        self.done: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._handle = None
        self._ticker: threading.Thread | None = None
        if in_notebook():
            from IPython.display import HTML, display

            self._handle = display(HTML(self._html()), display_id=True)
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self.start
        with self._lock:
            self.lines.append((elapsed, message))
            self.current = message
        if self._handle is None:
            print(f"[{elapsed:5.1f} s] {message}", flush=True)
        else:
            self._refresh()

    def close(self, outcome: str) -> None:
        """End the live line with an outcome such as 'lab up' or 'failed'."""
        self._stop.set()  # the ticker ends by itself (no join: an interrupt may come now)
        self.done = f"{outcome} ({time.monotonic() - self.start:.1f} s)"
        if self._handle is None:
            print(f"{self.title}: {self.done}", flush=True)
        else:
            self._refresh()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            self._refresh()

    def _refresh(self) -> None:
        if self._handle is not None:
            from IPython.display import HTML

            with self._lock:
                self._handle.update(HTML(self._html()))

    def _html(self) -> str:
        elapsed = time.monotonic() - self.start
        head = (f"&#10004; {html.escape(self.title)}: {html.escape(self.done)}" if self.done
                else f"&#9203; {html.escape(self.title)}: {html.escape(self.current)} "
                     f"&mdash; {elapsed:.0f} s")
        log = "".join(f"<div>[{t:5.1f} s] {html.escape(m)}</div>" for t, m in self.lines)
        return (f"<div style='font-family:monospace'><b>{head}</b>"
                f"<div style='color:#555;font-size:90%'>{log}</div></div>")
