"""tcpdump on this machine's side of a lab link, started so that nothing is missed.

tcpdump needs a moment between being started and capturing (it opens the device, sets
the filter, then says "listening on ..." on stderr); under a loaded host that moment is
anything from milliseconds to seconds. A `Capture` returns from `start()` only once that
line has appeared, so traffic sent afterwards is in the pcap: no fixed sleep.
"""

from __future__ import annotations

import codecs
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from lab.errors import LabError

READY_MARK = "listening on"


class Capture:
    """`tcpdump ARGV... -U -n -w PCAP [FILTER]`, ready to capture when start() returns."""

    def __init__(self, argv: Sequence[str], pcap: Path, count: int | None = None,
                 bpf_filter: str = "") -> None:
        self.pcap = pcap
        self.argv = [*argv, "-U", "-n", "-w", str(pcap)]
        if count is not None:
            self.argv += ["-c", str(count)]
        if bpf_filter:
            self.argv.append(bpf_filter)
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_lines: list[str] = []

    def start(self, timeout: float = 30.0) -> Capture:
        """Start tcpdump and wait until it listens; LabError if it exits or never does."""
        try:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, preexec_fn=_sigint_default)
        except FileNotFoundError as exc:
            raise LabError("tcpdump is not installed", hint="run scripts/setup-host.sh") from exc
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        os.set_blocking(fd, False)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            pending = ""
            while time.monotonic() < deadline:
                sel.select(timeout=0.2)
                # os.read, not the file object's read: that one returns None when a
                # non-blocking pipe is empty, which a text wrapper cannot decode
                try:
                    chunk = decoder.decode(os.read(fd, 65536))
                except BlockingIOError:
                    chunk = ""
                pending += chunk
                *lines, pending = pending.split("\n")
                self.stderr_lines += lines
                if any(READY_MARK in line for line in lines):
                    os.set_blocking(self.proc.stderr.fileno(), True)
                    return self
                if self.proc.poll() is not None and not chunk:
                    break
        self.stop()
        raise LabError(f"tcpdump did not start capturing ({' '.join(self.argv)}): "
                       + ("\n".join(self.stderr_lines).strip() or "no message"))

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s for tcpdump to end by itself (its -c count); True if it did."""
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, settle: float = 0.3, timeout: float = 10.0) -> str:
        """Let the last frames in flight land (the pcap stops growing for `settle` s), stop
        tcpdump (SIGINT: it flushes and prints its counts), return its stderr."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            _wait_quiet(self.pcap, settle, timeout)
            self.proc.send_signal(signal.SIGINT)
        try:
            _, rest = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, rest = self.proc.communicate()
        self.stderr_lines += (rest or b"").decode(errors="replace").splitlines()
        return "\n".join(self.stderr_lines)

    def summary(self) -> str:
        """tcpdump's closing counts ("4 packets captured; ...")."""
        counts = [line for line in self.stderr_lines if line[:1].isdigit()]
        return "; ".join(counts)

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _sigint_default() -> None:
    """stop() ends the capture with SIGINT: a parent that ignores it must not pass that
    on (a shell, for one, cannot trap a signal that was ignored when it started)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_quiet(path: Path, quiet: float, timeout: float) -> None:
    """Until `path` has not grown for `quiet` seconds (or `timeout`)."""
    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size if path.exists() else 0
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(min(0.05, quiet))
