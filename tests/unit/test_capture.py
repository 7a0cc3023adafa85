"""lab.capture.Capture against stand-ins for tcpdump (shell scripts that write to stderr
as tcpdump does), so its start-up wait is tested without a device: silence first (an
empty non-blocking pipe), then the "listening on" line; an early exit; the closing counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.capture import Capture
from lab.errors import LabError

# Capture appends tcpdump's options (-U -n -w PCAP): with `sh -c SCRIPT` they become $0...
LISTENS_LATE = ("trap 'echo \"3 packets captured\" >&2; exit 0' INT; sleep 0.5; "
                "echo 'tcpdump: verbose output suppressed' >&2; "
                "echo 'listening on s1, link-type EN10MB' >&2; "
                "while :; do sleep 0.05; done")


def test_start_waits_through_silence_for_the_listening_line(tmp_path: Path) -> None:
    capture = Capture(["sh", "-c", LISTENS_LATE], tmp_path / "x.pcap").start(timeout=20)
    try:
        assert any("listening on s1" in line for line in capture.stderr_lines)
    finally:
        said = capture.stop(settle=0.05)
    assert "3 packets captured" in said
    assert capture.summary() == "3 packets captured"


def test_a_tcpdump_that_exits_says_why(tmp_path: Path) -> None:
    script = "echo 'tcpdump: s9: No such device exists' >&2; exit 1"
    with pytest.raises(LabError, match="No such device exists"):
        Capture(["sh", "-c", script], tmp_path / "x.pcap").start(timeout=20)


def test_bytes_that_are_not_utf8_do_not_break_the_wait(tmp_path: Path) -> None:
    script = ("printf 'odd \\377 bytes\\n' >&2; echo 'listening on s1' >&2; "
              "while :; do sleep 0.05; done")
    capture = Capture(["sh", "-c", script], tmp_path / "x.pcap").start(timeout=20)
    capture.stop(settle=0.05)
    assert capture.stderr_lines[0] == "odd \ufffd bytes"
