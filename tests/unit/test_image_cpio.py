"""The initramfs cpio writer, read back by the real cpio(1)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.image.cpio import CpioWriter

pytestmark = pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio(1) not installed")


def archive(mtime: int = 0) -> bytes:
    out = io.BytesIO()
    cpio = CpioWriter(out, mtime=mtime)
    cpio.directory("bin")
    cpio.directory("dev")
    cpio.char_device("dev/console", 5, 1)
    cpio.file("bin/busybox", b"\x7fELF" + b"x" * 1001, 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.file("init", b"#!/bin/sh\necho hi\n", 0o755)
    cpio.close()
    return out.getvalue()


def test_cpio_lists_every_entry_with_its_type() -> None:
    listing = subprocess.run(["cpio", "-t", "-v", "--quiet"], input=archive(),
                             capture_output=True, check=True).stdout.decode()
    lines = {line.split()[-1] if "->" not in line else line.split()[-3]: line
             for line in listing.splitlines()}
    assert lines["dev/console"].startswith("crw-------")
    assert lines["bin/busybox"].startswith("-rwxr-xr-x")
    assert lines["bin/sh"].startswith("lrwxrwxrwx") and "-> busybox" in lines["bin/sh"]
    assert lines["bin"].startswith("drwxr-xr-x")


def test_cpio_content_round_trips(tmp_path: Path) -> None:
    subprocess.run(["cpio", "-i", "-d", "--quiet", "--no-absolute-filenames",
                    "--nonmatching", "dev/console"],
                   input=archive(), cwd=tmp_path, check=True)
    assert (tmp_path / "init").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (tmp_path / "bin/busybox").stat().st_size == 1005
    assert (tmp_path / "bin/sh").readlink() == Path("busybox")


def test_archive_is_reproducible_and_aligned() -> None:
    first = archive()
    assert first == archive()
    assert len(first) % 4 == 0
    assert first.startswith(b"070701")
    assert b"TRAILER!!!" in first[-128:]
