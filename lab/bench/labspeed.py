"""Lab speed: how long the lab takes to be usable. The timing pieces come from
scripts/bench-foundation.py (loaded from its file, not copied); grading time comes from
the grading engine, one reference solution per exercise."""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
FOUNDATION = REPO_ROOT / "scripts" / "bench-foundation.py"

Progress = Callable[[str], None]


def foundation() -> ModuleType:
    """scripts/bench-foundation.py as a module (its name has a dash)."""
    spec = importlib.util.spec_from_file_location("lanalab_bench_foundation", FOUNDATION)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {FOUNDATION}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def basic(timings: dict[str, float]) -> dict[str, Any]:
    """What every run measures anyway while bringing up its own bench lab."""
    keys = {"image_ensure_s": "image build, warm (up to date)",
            "vm_boot_to_ready_s": "VM boot to guest-agent ready (bench lab)",
            "lab_up_s": "bench topology up (1 VM, 1 host)",
            "lab_down_s": "bench topology down"}
    return {name: round(timings[key], 2) for key, name in keys.items() if key in timings}


def full(progress: Progress, boots: int = 3, cold_build: bool = False) -> dict[str, Any]:
    """Single-VM boots, the default topology up/down, grading per exercise, optionally a
    cold image build (minutes)."""
    from lab.image.build import build_image

    bf = foundation()
    out: dict[str, Any] = {}
    if cold_build:
        progress("lab speed: cold image build (empty cache, minutes)")
        out["image build, cold (empty cache)"] = round(bf.bench_cold_build(), 1)
    warm, image = bf.timed(build_image, force=False, progress=bf.quiet)
    out["image build, warm (bench-foundation)"] = round(warm, 2)
    progress(f"lab speed: {boots} single-VM boots")
    times = bf.bench_boot(image, boots)
    out[f"one VM to agent-ready, median of {boots}"] = round(statistics.median(times), 2)
    progress("lab speed: default topology up/down")
    up, down = bf.bench_topology(image)
    out["default topology (2 VMs + 1 host) up"] = round(up, 2)
    out["default topology down"] = round(down, 2)
    out.update(grading_times(progress))
    return out


def grading_times(progress: Progress) -> dict[str, Any]:
    """Grade each exercise's reference solution once (each boots its own lab)."""
    from lab.grading.engine import grade
    from lab.grading.exercise import list_exercises

    out: dict[str, Any] = {}
    for exercise in list_exercises():
        solution = exercise.folder("solution")
        if not solution.is_dir():
            continue
        progress(f"lab speed: grading {exercise.name} (reference solution)")
        start = time.monotonic()
        try:
            result = grade(exercise, solution)
            verdict = f"{result.score}/{result.max_score}"
        except Exception as exc:  # a broken grader must not lose the other figures
            verdict = f"failed: {exc}"
        out[f"grade {exercise.name} ({verdict})"] = round(time.monotonic() - start, 1)
    return out
