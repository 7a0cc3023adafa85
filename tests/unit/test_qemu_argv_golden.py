"""Golden files for the qemu command lines of lab VMs (passthrough included), one argument
a line. Regenerate after an intended change with
    LANALAB_REGEN_GOLDEN=1 .venv/bin/pytest tests/unit/test_qemu_argv_golden.py
and review the diff of tests/golden/ before committing it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.passthrough import qemu_args
from lab.vm.qemu_argv import Nic, VMFiles, qemu_argv

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FILES = VMFiles.in_folder(Path("/run/lanalab/lab1234"), "h1")
CMDLINE = "console=ttyS0,115200 root=/dev/vda rw net.ifnames=0 panic=-1 quiet loglevel=4"
TCG = ["-accel", "tcg"]
KVM = ["-accel", "kvm", "-cpu", "host"]


def _argv(nics: list[Nic], accel: list[str] = TCG, share: Path | None = None,
          memory_mb: int = 512, cpus: int = 1) -> list[str]:
    return qemu_argv("h1", Path("/img/vmlinuz"), Path("/img/initrd.img"), CMDLINE, FILES,
                     nics, accel, share, memory_mb, cpus)


CASES = {
    "qemu-tcg-taps-share.argv": _argv(
        [Nic("lab1234-h1n0", "virtio", "02:00:00:00:00:01"),
         Nic("lab1234-h1n1", "e1000e", "02:00:00:00:00:02")], share=Path("/work/main")),
    "qemu-kvm-e1000e.argv": _argv(
        [Nic("lab1234-h1n0", "e1000e", "02:00:00:00:00:03")], KVM, memory_mb=1024, cpus=2),
    # a real e1000e (bound to vfio-pci) next to an emulated one
    "qemu-passthrough.argv": _argv(
        [Nic("lab1234-h1n0", "e1000e", "02:00:00:00:00:04")]) + qemu_args("0000:03:00.0"),
}


def _compare_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LANALAB_REGEN_GOLDEN") == "1":
        path.write_text(text)
        return
    assert path.is_file(), f"{path} is missing: run with LANALAB_REGEN_GOLDEN=1 once"
    assert text == path.read_text(), f"{name} differs from the golden file; if intended, " \
        "regenerate with LANALAB_REGEN_GOLDEN=1 and review the diff"


@pytest.mark.parametrize("name", sorted(CASES))
def test_qemu_argv_matches_golden(name: str) -> None:
    _compare_golden(name, "".join(f"{arg}\n" for arg in CASES[name]))

