"""Checks that only mean something on the debug image (lab.image.debug_kernel): is the
guest kernel really checking (KASAN, lockdep, kmemleak), and what kmemleak finds.

Imported by the reliability tests (pytest puts this folder on sys.path); every helper
takes a booted QemuVM.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

KMEMLEAK = "/sys/kernel/debug/kmemleak"
# A backtrace line whose address did not resolve to a symbol: code of an unloaded module.
# The suites unload only lana and fb_*, so such a frame is theirs.
UNRESOLVED_FRAME = re.compile(r"\[<[0-9a-f]+>\] 0x[0-9a-f]+\s*$", re.M)
LANA_FRAME = re.compile(r"\[(lana|fb_\w+)\]")


def debug_manifest() -> dict[str, Any] | None:
    """The manifest of the image LANALAB_IMAGE_DIR names, if it is a debug image."""
    folder = os.environ.get("LANALAB_IMAGE_DIR")
    if not folder:
        return None
    try:
        data: dict[str, Any] = json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("debug") else None


def sh(vm: Any, command: str, timeout: float = 120.0) -> str:
    result = vm.exec(["sh", "-c", command], timeout=timeout)
    assert result.exit_code == 0, (f"guest: {command} failed ({result.exit_code}):\n"
                                   f"{result.stdout}\n{result.stderr}")
    return str(result.stdout)


def mount_debugfs(vm: Any) -> None:
    sh(vm, f"test -e {KMEMLEAK} || mount -t debugfs none /sys/kernel/debug")


def debug_locks(vm: Any) -> int:
    """/proc/lockdep_stats' debug_locks: 1 while lockdep runs; lockdep turns itself off
    (0) after its first report, so 0 later in a run means a splat happened."""
    stats = sh(vm, "cat /proc/lockdep_stats")
    match = re.search(r"debug_locks:\s+(\d+)", stats)
    assert match, stats
    return int(match.group(1))


def kmemleak_scan(vm: Any) -> tuple[int, list[str]]:
    """Scan twice (an object freed late, or only referenced from a stale register, shows
    once and then goes) and return (all unreferenced objects, those attributed to LANA:
    a frame in [lana]/[fb_*], or an unresolved frame of an unloaded module)."""
    mount_debugfs(vm)
    # kmemleak reports only objects older than 5 s; a scan takes long under TCG + KASAN
    sh(vm, f"sleep 6; echo scan > {KMEMLEAK}; echo scan > {KMEMLEAK}", timeout=900)
    report = sh(vm, f"cat {KMEMLEAK}", timeout=300)
    blocks = report.split("unreferenced object")[1:]
    lana = ["unreferenced object" + block for block in blocks
            if LANA_FRAME.search(block) or UNRESOLVED_FRAME.search(block)]
    return len(blocks), lana
