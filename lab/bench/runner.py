"""One benchmark run: bring up the bench lab, measure the plan round by round, tear down.

All points run in vm1 of topologies/builders.py:bench. The traffic source is inside the
guest: lanagen (default) or pktgen over a veth pair (why: docs/benchmarks.md, "Traffic
source"). Under TCG the guest's clock counts instructions by default ("Clock").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.bench.guest import GuestBench, Skipped
from lab.bench.plan import ICOUNT_SHIFT, Plan, Point
from lab.bench.stats import Sample

Progress = Callable[[str], None]
BATCH = 6  # points per guest call: fewer qga round trips, still regular progress lines


@dataclass
class RawRun:
    plan: Plan
    samples: list[Sample] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    guest: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)


def measure_rounds(bench: GuestBench, plan: Plan, raw: RawRun, progress: Progress) -> None:
    for r, order in enumerate(plan.rounds_order()):
        start = time.monotonic()
        for i in range(0, len(order), BATCH):
            chunk: list[Point] = order[i:i + BATCH]
            samples, skipped = bench.measure(chunk, plan, r)
            raw.samples.extend(samples)
            for s in skipped:
                raw.skipped.setdefault(s.label, s.reason)
            _report(progress, r, samples, skipped)
        progress(f"round {r + 1}/{plan.rounds} done in {time.monotonic() - start:.0f} s")


def _report(progress: Progress, r: int, samples: list[Sample], skipped: list[Skipped]) -> None:
    text = ", ".join(f"{s.label} {s.pps / 1000:.1f}k" for s in samples)
    if text:
        progress(f"  round {r + 1}: {text} pps")


def compile_bpf(plan: Plan, progress: Progress) -> tuple[dict[str, bytes], str | None]:
    """The plan's eBPF objects (its eBPF points', AF_XDP's), compiled on the host before any
    VM boots; without clang those points are skipped (and say why), a program clang
    refuses stops the run."""
    from lab.ebpf.compile import PROGRAMS_DIR, compile_program, find_clang
    from lab.errors import LabError

    if not plan.bpf_objects:
        return {}, None
    try:
        find_clang()
    except LabError as err:
        progress(f"eBPF points skipped: {err}")
        return {}, str(err)
    objects = {}
    for name in plan.bpf_objects:
        obj = compile_program(PROGRAMS_DIR / f"{name}.bpf.c")
        objects[name] = obj.path.read_bytes()
    progress(f"eBPF objects ready: {', '.join(plan.bpf_objects)}")
    return objects, None


def run_benchmark(plan: Plan, progress: Progress) -> RawRun:
    """Boot the bench topology, measure, tear down (always). Root and the image needed."""
    from lab.image.build import ensure_image
    from lab.labrun import LabRun
    from lab.topology.loader import load_topology

    raw = RawRun(plan)
    bpf, bpf_missing = compile_bpf(plan, progress)
    start = time.monotonic()
    image = ensure_image(progress)
    raw.timings["image_ensure_s"] = time.monotonic() - start
    raw.image = {"path": str(image.path), "digest": image.manifest.get("digest", "")[:16],
                 "kernel_release": image.manifest.get("kernel_release", "")}
    icount = ICOUNT_SHIFT if plan.clock == "instructions" else None
    lab = LabRun(load_topology("bench"), image, progress=progress, backend="qemu",
                 icount_shift=icount)
    lab.up()
    try:
        raw.timings["lab_up_s"] = lab.timings.get("total", float("nan"))
        raw.timings["vm_boot_to_ready_s"] = lab.timings.get("boot vm1", float("nan"))
        raw.timings["fabric_up_s"] = lab.timings.get("fabric", float("nan"))
        vm = lab.vms["vm1"]
        bench = GuestBench(lambda cmd, timeout: lab.sh("vm1", cmd, timeout), vm.put_file,
                           bpf, bpf_missing)
        t = time.monotonic()
        bench.install(plan)
        raw.timings["guest_setup_s"] = time.monotonic() - t
        accel = str(vm.describe().get("accel"))
        clock = "instructions" if icount is not None and accel == "tcg" else "real"
        raw.guest = {**bench.environment(), "accel": accel, "clock": clock}
        plan = raw.plan = plan.for_clock(clock)
        progress(f"guest clock: {clock}" + (" (1 ns = 1 guest instruction)"
                                            if clock == "instructions" else ""))
        t = time.monotonic()
        measure_rounds(bench, plan, raw, progress)
        raw.timings["measure_s"] = time.monotonic() - t
        vm.check_console()  # a kernel warning during the run makes its figures suspect
    finally:
        t = time.monotonic()
        lab.down()
        raw.timings["lab_down_s"] = time.monotonic() - t
    return raw
