#!/usr/bin/env python3
"""Benchmark the lab foundation and print the figures (not a test: machines are noisy).

    .venv/bin/python scripts/bench-foundation.py            # warm build, boots, topology
    .venv/bin/python scripts/bench-foundation.py --cold     # also a cold build (minutes)

Targets on a 2-core machine under TCG: one VM agent-ready <= 8 s, the default two-VM
topology ready <= 15 s, warm image build <= 30 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.image.build import build_image  # noqa: E402
from lab.labrun import LabRun  # noqa: E402
from lab.runstate import RunRecord, clean  # noqa: E402
from lab.topology.loader import load_topology  # noqa: E402
from lab.vm.kvm import accel_verdict  # noqa: E402
from lab.vm.qemu import QemuVM  # noqa: E402


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return time.monotonic() - start, result


def quiet(_: str) -> None:
    pass


def bench_cold_build() -> float:
    with tempfile.TemporaryDirectory(prefix="lanalab-cold-") as cache:
        old = os.environ.get("LANALAB_CACHE")
        os.environ["LANALAB_CACHE"] = cache
        try:
            seconds, _ = timed(build_image, force=True, progress=quiet)
        finally:
            if old is None:
                del os.environ["LANALAB_CACHE"]
            else:
                os.environ["LANALAB_CACHE"] = old
    return seconds


def bench_boot(image, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        run = RunRecord.create()
        vm = QemuVM("bench", image, run, nics=[], share=None)
        try:
            start = time.monotonic()
            vm.start()
            vm.wait_ready(120)
            times.append(time.monotonic() - start)
        finally:
            vm.stop()
            clean(run.id)
    return times


def bench_topology(image) -> tuple[float, float]:
    lab = LabRun(load_topology("default"), image)
    up, _ = timed(lab.up)
    down, _ = timed(lab.down)
    return up, down


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="also time a cold image build")
    parser.add_argument("--boots", type=int, default=3, help="single-VM boots to time")
    args = parser.parse_args()

    print(f"accelerator: {accel_verdict().describe()}")
    if args.cold:
        print(f"image build, cold (empty cache): {bench_cold_build():.1f} s")
    warm, image = timed(build_image, force=False, progress=quiet)
    print(f"image build, warm (up to date):  {warm:.2f} s   (target <= 30 s)")
    boots = bench_boot(image, args.boots)
    print(f"one VM to agent-ready: median {statistics.median(boots):.1f} s over {len(boots)} "
          f"boots ({', '.join(f'{b:.1f}' for b in boots)})   (target <= 8 s)")
    up, down = bench_topology(image)
    print(f"default topology (2 VMs + 1 host): up {up:.1f} s (target <= 15 s), down {down:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
