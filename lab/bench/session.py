"""A whole `lanalab bench`: measure, time the lab, write results.json, summary.md, plots."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.bench import labspeed
from lab.bench.plan import Plan
from lab.bench.plots import matplotlib_missing, write_plots
from lab.bench.report import build_results, render_summary, write_json
from lab.bench.runner import run_benchmark

Progress = Callable[[str], None]
DEFAULT_OUT = Path("bench-results")


def default_out_dir() -> Path:
    return DEFAULT_OUT / time.strftime("%Y%m%d-%H%M%S")


def run_session(plan: Plan, out: Path, progress: Progress,
                cold_build: bool = False) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    load_start = list(os.getloadavg())
    raw = run_benchmark(plan, progress)
    speed = labspeed.basic(raw.timings)
    if plan.lab_speed == "full":
        speed.update(labspeed.full(progress, cold_build=cold_build))
    results = build_results(raw, speed, (load_start, list(os.getloadavg())))
    write_results(results, out, progress)
    return results


def write_results(results: dict[str, Any], out: Path, progress: Progress) -> list[Path]:
    """results.json, summary.md and the plots, from the results alone."""
    out.mkdir(parents=True, exist_ok=True)
    written = [write_json(results, out)]
    summary = out / "summary.md"
    summary.write_text(render_summary(results))
    written.append(summary)
    missing = matplotlib_missing()
    if missing:
        progress(missing)
    written += write_plots(results, out)
    return written
