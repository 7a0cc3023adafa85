"""`lanalab doctor`: check this machine's prerequisites and say how to fix each."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SETUP = "run scripts/setup-host.sh as root"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _tool(name: str, package: str) -> Check:
    path = shutil.which(name)
    return Check(f"{name}", path is not None, path or "not found",
                 f"{SETUP} (Debian package {package})")


def check_root() -> Check:
    is_root = os.geteuid() == 0
    return Check("root", is_root, "running as root" if is_root else f"uid {os.geteuid()}",
                 "run lanalab with sudo: taps, bridges and namespaces need root")


def check_tools() -> list[Check]:
    return [
        _tool("qemu-system-x86_64", "qemu-system-x86"),
        _tool("qemu-img", "qemu-utils"),
        _tool("mnexec", "mininet"),
        _tool("brctl", "bridge-utils"),
        _tool("ifconfig", "net-tools"),
        _tool("mmdebstrap", "mmdebstrap"),
        _tool("bpfc", "netsniff-ng"),
        _tool("trafgen", "netsniff-ng"),
    ]


def check_kvm() -> Check:
    from lab.vm.kvm import accel_verdict

    verdict = accel_verdict()
    return Check("accelerator", True, verdict.describe(),
                 "" if verdict.accel == "kvm" else "TCG works, only slower; KVM needs a host "
                 "with hardware virtualization")


def check_headers() -> Check:
    from lab.image.abi import resolve_kernel_release

    try:
        release = resolve_kernel_release()
    except Exception as exc:  # any failure here is the thing to report
        return Check("kernel headers", False, str(exc), SETUP)
    path = Path("/usr/src") / f"linux-headers-{release}"
    return Check("kernel headers", path.is_dir(), f"{path}" if path.is_dir() else
                 f"{path} missing", f"{SETUP} (installs linux-headers-{release})")


def check_image() -> Check:
    from lab.image.store import resolve_image

    try:
        image = resolve_image()
    except Exception as exc:
        return Check("guest image", False, str(exc).splitlines()[0], "lanalab image build")
    return Check("guest image", True, str(image.path))


def run_checks() -> list[Check]:
    checks = [check_root(), *check_tools()]
    steps: list[Callable[[], Check]] = [check_headers, check_kvm, check_image]
    for step in steps:
        try:
            checks.append(step())
        except Exception as exc:  # a broken check must not hide the others
            checks.append(Check(step.__name__.removeprefix("check_"), False, str(exc), SETUP))
    return checks


def print_report(checks: list[Check]) -> bool:
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok " if c.ok else "BAD"
        print(f"  [{mark}] {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            print(f"        {'':<{width}}  fix: {c.fix}")
    bad = [c for c in checks if not c.ok]
    print("all checks passed" if not bad else f"{len(bad)} problem(s) found")
    return not bad
