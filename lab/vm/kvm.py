"""Choose the qemu accelerator: KVM only when a real probe boot shows it works, else TCG.

Division of labour: `accel_verdict()` answers "kvm or tcg, and why". /dev/kvm opening and
KVM_CREATE_VM succeeding prove nothing on some hosts (qemu then aborts with "failed to set
MSR 0x10a", or with the default CPU model the guest kernel hangs before its first line), so
the probe boots the guest kernel under KVM with exactly the CPU flags the lab uses and waits
for the kernel's first console line. The verdict is cached per host boot (and qemu binary)
under the cache folder; `LANALAB_ACCEL=tcg|kvm` forces a choice without probing.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.errors import BackendError

log = logging.getLogger(__name__)

QEMU = "qemu-system-x86_64"
KVM_CPU_ARGS = ["-accel", "kvm", "-cpu", "host"]
TCG_CPU_ARGS = ["-accel", "tcg"]
PROBE_BUDGET_S = 3.0  # KVM prints "Linux version" in well under a second; TCG needs ~4 s
PROBE_MARKER = "Linux version"


@dataclass(frozen=True)
class AccelVerdict:
    accel: str  # "kvm" or "tcg"
    reason: str
    source: str  # "forced", "probe", "cache", "no-device"
    probe_seconds: float | None = None
    # TCG only: the guest clock counts instructions (qemu -icount shift=N, 2**N ns each),
    # so timings measured in the guest do not depend on the host's load (lanalab bench)
    icount_shift: int | None = None

    def qemu_args(self) -> list[str]:
        if self.accel == "kvm":
            return list(KVM_CPU_ARGS)
        if self.icount_shift is not None:
            return [*TCG_CPU_ARGS, "-icount", f"shift={self.icount_shift},sleep=on"]
        return list(TCG_CPU_ARGS)

    def describe(self) -> str:
        cost = f", probe took {self.probe_seconds:.2f} s" if self.probe_seconds else ""
        clock = "" if self.icount_shift is None else f", instruction clock 2^{self.icount_shift} ns"
        return f"{self.accel} ({self.reason}; {self.source}{cost}{clock})"


def cache_dir() -> Path:
    return Path(os.environ.get("LANALAB_CACHE", "/var/cache/lanalab"))


def accel_verdict(kernel: Path | None = None, use_cache: bool = True) -> AccelVerdict:
    """The accelerator to use. `kernel`: a bzImage to probe with (default: the current
    image's kernel if one is built, else a firmware-only probe that catches aborts only)."""
    forced = os.environ.get("LANALAB_ACCEL", "").strip().lower()
    if forced:
        if forced not in ("kvm", "tcg"):
            raise BackendError(f"LANALAB_ACCEL=`{forced}` is not understood",
                               "set it to `kvm` or `tcg`, or unset it to probe")
        return AccelVerdict(forced, "LANALAB_ACCEL is set", "forced")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return _tcg_fallback(AccelVerdict("tcg", "/dev/kvm is missing or not accessible",
                                          "no-device"))
    kernel = kernel or _current_image_kernel()
    key = _cache_key(kernel is not None)
    cached = _load_cache(key) if use_cache else None
    if cached is not None:
        verdict = AccelVerdict(cached.accel, cached.reason, "cache", cached.probe_seconds)
    else:
        verdict = probe_kvm(kernel)
        _store_cache(key, verdict)
    return verdict if verdict.accel == "kvm" else _tcg_fallback(verdict)


def probe_kvm(kernel: Path | None) -> AccelVerdict:
    """Boot `kernel` under KVM for at most PROBE_BUDGET_S; kvm if its first line appears."""
    if shutil.which(QEMU) is None:
        raise BackendError(f"`{QEMU}` not found", "install qemu-system-x86 (scripts/setup-host.sh)")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lanalab-kvm-probe-") as tmp:
        console = Path(tmp) / "console.log"
        argv = [QEMU, *KVM_CPU_ARGS, "-machine", "pc", "-m", "128", "-nodefaults",
                "-display", "none", "-no-reboot", "-serial", f"file:{console}"]
        if kernel is not None:
            argv += ["-kernel", str(kernel), "-append",
                     "console=ttyS0 earlyprintk=ttyS0 panic=-1 rdinit=/lanalab-kvm-probe"]
        else:  # firmware only: SeaBIOS reports on the debug port before booting
            argv += ["-debugcon", f"file:{console}", "-global", "isa-debugcon.iobase=0x402"]
        marker = PROBE_MARKER if kernel is not None else "Booting from"
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            seen = _wait_for_marker(proc, console, marker, PROBE_BUDGET_S)
        finally:
            if proc.poll() is None:
                proc.kill()
            _, stderr = proc.communicate()
        took = time.monotonic() - start
    what = "kernel" if kernel is not None else "firmware"
    if seen:
        return AccelVerdict("kvm", f"probe boot of the {what} under KVM succeeded", "probe", took)
    if proc.returncode not in (None, 0, -9):
        lines = [line for line in stderr.splitlines() if "error" in line.lower()] or \
            stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        reason = f"qemu -accel kvm aborted ({lines[0].strip()})"
    else:
        reason = f"the {what} printed nothing under KVM within {PROBE_BUDGET_S:g} s"
    return AccelVerdict("tcg", reason, "probe", took)


def _wait_for_marker(proc: subprocess.Popen[str], console: Path, marker: str,
                     budget: float) -> bool:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        if console.exists() and marker in console.read_text(errors="replace"):
            return True
        if proc.poll() is not None:
            return console.exists() and marker in console.read_text(errors="replace")
        time.sleep(0.02)
    return False


@functools.cache
def _report_fallback(reason: str, fresh: bool) -> None:
    # a warning when the probe just ran (once per host boot), a note when cached
    log.log(logging.WARNING if fresh else logging.INFO,
            "KVM is not usable here, using TCG (slower): %s", reason)


def _tcg_fallback(verdict: AccelVerdict) -> AccelVerdict:
    _report_fallback(verdict.reason, verdict.source != "cache")  # once per process
    return verdict


def _current_image_kernel() -> Path | None:
    try:
        from lab.vm.image import find_image

        return find_image().kernel
    except Exception:  # noqa: BLE001 - no image yet: probe with firmware only
        return None


def _cache_key(with_kernel: bool) -> dict[str, str]:
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = "unknown"
    qemu = shutil.which(QEMU) or QEMU
    try:
        qemu_id = f"{qemu}:{os.stat(qemu).st_mtime_ns}"
    except OSError:
        qemu_id = qemu
    return {"boot_id": boot_id, "qemu": qemu_id, "probe": "kernel" if with_kernel else "firmware"}


def _cache_path(key: dict[str, str]) -> Path:
    return cache_dir() / f"kvm-probe-{key['probe']}.json"


def _load_cache(key: dict[str, str]) -> AccelVerdict | None:
    try:
        data = json.loads(_cache_path(key).read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != key:
        return None
    try:
        return AccelVerdict(**data["verdict"])
    except (KeyError, TypeError):
        return None


def _store_cache(key: dict[str, str], verdict: AccelVerdict) -> None:
    path = _cache_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "verdict": asdict(verdict)}) + "\n")
        tmp.replace(path)
    except OSError as exc:
        log.debug("cannot cache the KVM verdict in %s: %s", path, exc)
