"""Student files that are not text fail their check with a message, not a decoding error."""

from __future__ import annotations

from pathlib import Path

from lab.grading.bpf import compile_filter
from lab.grading.textfile import not_text


def test_text_is_text(tmp_path: Path) -> None:
    path = tmp_path / "arp.bpf"
    path.write_text("ldh [12]\njneq #0x806, drop\nret #-1\ndrop: ret #0\n# café\n")
    assert not_text(path) is None


def test_bytes_that_are_not_utf8_are_named(tmp_path: Path) -> None:
    path = tmp_path / "udp.bpf"
    path.write_bytes(b"ldh [12]\n\x82\xff")
    assert not_text(path) == ("udp.bpf is not plain UTF-8 text (byte 0x82 at offset 9): "
                              "save it as plain text, e.g. from a text editor")


def test_nul_bytes_are_named(tmp_path: Path) -> None:
    path = tmp_path / "stack.sh"
    path.write_bytes(b"modprobe lana\n\0")
    assert "NUL byte at offset 14" in (not_text(path) or "")


def test_bpfc_is_not_run_on_garbage(tmp_path: Path) -> None:
    path = tmp_path / "vlan.bpf"
    path.write_bytes(bytes(range(256)) * 3)
    compiled = compile_filter(path)
    assert not compiled.ok and "vlan.bpf is not a text file" in compiled.error
