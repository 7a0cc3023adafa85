"""lab.bench.labspeed without VMs: the figures every run gets for free, and the reuse of
scripts/bench-foundation.py (loaded from its file, not copied)."""

from __future__ import annotations

import inspect

from lab.bench import labspeed


def test_basic_names_the_run_timings() -> None:
    speed = labspeed.basic({"image_ensure_s": 0.234, "vm_boot_to_ready_s": 3.917,
                            "lab_up_s": 4.26, "lab_down_s": 0.2, "measure_s": 200.0})
    assert speed == {"image build, warm (up to date)": 0.23,
                     "VM boot to guest-agent ready (bench lab)": 3.92,
                     "bench topology up (1 VM, 1 host)": 4.26,
                     "bench topology down": 0.2}
    assert labspeed.basic({}) == {}


def test_foundation_pieces_are_the_scripts_own() -> None:
    module = labspeed.foundation()
    for name in ("bench_boot", "bench_topology", "bench_cold_build", "timed"):
        function = getattr(module, name)
        assert inspect.getsourcefile(function) == str(labspeed.FOUNDATION)
    seconds, value = module.timed(lambda x: x * 2, 21)
    assert value == 42 and seconds >= 0
