"""Host side: boot one guest for a reliability suite and run the guest-side programs in it.

The repository is shared at /lab in the guest, so the guest programs (lab/reliability/
storm.py, fuzz_guest.py) run from there with the guest's own python3. Two vCPUs: the
packet path and the control path then really run at the same time.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "build" / "reliability"


@contextmanager
def reliability_guest(image: Any, cpus: int = 2, memory_mb: int = 768) -> Iterator[Any]:
    """A fresh QemuVM (repo at /lab); stopped and its run cleaned afterwards.
    LANALAB_IMAGE_DIR (e.g. the debug image of lab.image.debug_kernel) overrides `image`."""
    from lab.runstate import RunRecord, clean
    from lab.vm.image import find_image
    from lab.vm.qemu import QemuVM

    if os.environ.get("LANALAB_IMAGE_DIR"):
        image = find_image()
    run = RunRecord.create()
    vm = QemuVM("rel", image, run, share=REPO_ROOT, cpus=cpus, memory_mb=memory_mb)
    try:
        vm.start()
        vm.wait_ready(180)
        yield vm
    finally:
        try:
            vm.stop()
        finally:
            clean(run.id)


def run_guest_program(vm: Any, module: str, args: list[str], timeout: float) -> dict[str, Any]:
    """Run `python3 -m lab.reliability.<module> ARGS --out F` in the guest; its JSON."""
    out = f"/tmp/{module}.json"
    command = (f"cd /lab && PYTHONPATH=/lab PYTHONDONTWRITEBYTECODE=1 python3 -m "
               f"lab.reliability.{module} {' '.join(shlex.quote(a) for a in args)} --out {out}")
    result = vm.exec(["sh", "-c", command], timeout=timeout)
    if result.exit_code != 0:
        raise AssertionError(f"guest program {module} failed ({result.exit_code}):\n"
                             f"{result.stdout}\n{result.stderr}\n"
                             f"console:\n{vm.console_tail(40)}")
    data: dict[str, Any] = json.loads(vm.get_file(out))
    return data


def write_summary(name: str, data: dict[str, Any]) -> Path:
    """build/reliability/<name>.json (the figures, whatever pytest's -s says)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                **data}, indent=1) + "\n")
    return path


def report(name: str, figures: dict[str, Any]) -> None:
    """Print the headline figures (shown by pytest with -s or -rA) and write the JSON."""
    path = write_summary(name, figures)
    print(f"\n[reliability] {name}: " + ", ".join(
        f"{k}={v}" for k, v in figures.items() if not isinstance(v, (dict, list))))
    print(f"[reliability] {name}: full figures in {path}")
