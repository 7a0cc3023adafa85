"""Reconfiguration storm: random control operations on the LANA core while trafgen floods
a guest, then everything removed and unloaded (lab/reliability/storm.py runs in the guest).

Figures: operations done, packets processed, kernel trouble (must be none), instances and
module references left (must be none). Seed and length: LANALAB_RELIABILITY_SEED and
LANALAB_RELIABILITY_SECONDS (default 40 s of guest time); longer runs:
scripts/reliability.py --minutes N.
"""

from __future__ import annotations

import os
import random

import pytest
from debug_guest import debug_locks, debug_manifest, kmemleak_scan

from lab.reliability.guestvm import reliability_guest, report, run_guest_program
from lab.reliability.storm import ENGINES

pytestmark = [pytest.mark.vm, pytest.mark.slow]

SECONDS = float(os.environ.get("LANALAB_RELIABILITY_SECONDS", "40"))
ENGINE_SECONDS = SECONDS / 4  # each other engine model: a shorter storm in one guest


def test_reconfiguration_storm_under_traffic(image) -> None:
    seed = int(os.environ.get("LANALAB_RELIABILITY_SEED", random.randrange(1 << 30)))
    print(f"\n[reliability] storm seed {seed} (rerun: LANALAB_RELIABILITY_SEED={seed})")
    with reliability_guest(image) as vm:
        figures = run_guest_program(vm, "storm", ["--seed", str(seed),
                                                  "--seconds", str(SECONDS)],
                                    timeout=SECONDS * 4 + 300)
        vm.check_console()  # raises on any Oops/BUG/WARNING the console saw
        if debug_manifest() is not None:
            # debug image: the storm's own check reads kmemleak after the modules are gone,
            # when their frames no longer name them; this one also counts those frames
            total, lana_leaks = kmemleak_scan(vm)
            figures["debug"] = {"kmemleak_unreferenced_total": total,
                                "kmemleak_lana_leaks": lana_leaks[:10],
                                "debug_locks_after": debug_locks(vm)}
    report("storm", figures)
    if "debug" in figures:
        assert figures["debug"]["kmemleak_lana_leaks"] == [], figures["debug"]
        assert figures["debug"]["debug_locks_after"] == 1, "lockdep fired: see dmesg"
    assert figures["model_mismatch_count"] == 0, figures["model_mismatches"]
    assert figures["kernel_trouble"] == [], figures["kernel_trouble"]
    assert figures["kmemleak"] == []
    assert figures["instances_left"] == [] and figures["instance_left_warnings"] == 0
    assert figures["leaked_module_refs"] == 0, figures["module_refs_before_unload"]
    assert figures["unload_failed"] == [] and figures["modules_still_loaded"] == []
    assert figures["refusals_without_message"] == [], "refused without saying why"
    assert figures["proc_read_errors"] == []
    assert figures["operations"] >= 300, "too few operations to call it a storm"
    assert figures["packets_processed"] > 1000, "no traffic went through LANA"


def _clean(figures: dict[str, object]) -> None:
    """What every storm must leave: the same checks as above, for one engine's run."""
    assert figures["model_mismatch_count"] == 0, figures["model_mismatches"]
    assert figures["kernel_trouble"] == [], figures["kernel_trouble"]
    assert figures["instances_left"] == [] and figures["instance_left_warnings"] == 0
    assert figures["leaked_module_refs"] == 0, figures["module_refs_before_unload"]
    assert figures["unload_failed"] == [] and figures["modules_still_loaded"] == []


def test_the_storm_on_every_engine_model_with_cpu_hotplug_and_switching(image) -> None:
    """The storm again with lana.ko loaded with each other engine model (kernel threads
    with queues, the hrtimer), then on softirq with the engine switched to a random model
    every 40 operations; in every run CPU 1 goes off line and back every 20 operations,
    under the flood: no oops, nothing left, every module unloads."""
    seed = int(os.environ.get("LANALAB_RELIABILITY_SEED", random.randrange(1 << 30)))
    print(f"\n[reliability] engine storms seed {seed}")
    runs = [(engine, 0) for engine in ENGINES if engine != "softirq"] + [("softirq", 40)]
    results = {}
    with reliability_guest(image) as vm:  # two vCPUs: CPU 1 can go off line
        for engine, every in runs:
            label = f"{engine}+switching" if every else engine
            figures = run_guest_program(vm, "storm", [
                "--seed", str(seed), "--seconds", str(ENGINE_SECONDS), "--engine", engine,
                "--switch-engine-every", str(every), "--hotplug-every", "20"],
                timeout=ENGINE_SECONDS * 4 + 300)
            vm.check_console()
            assert figures["engine"] == engine, figures["engine"]
            assert figures["packets_processed"] > 0, f"{label}: no packet went through"
            assert figures["cpu1_toggles"].get("offline", 0) > 0, f"{label}: no hotplug"
            if every:
                assert sum(figures["engine_switches"].values()) > 0, "no switch happened"
            _clean(figures)
            results[label] = {k: figures[k] for k in (
                "operations", "packets_processed", "engine_switches", "engine_at_end",
                "engine_queue_drops", "cpu1_toggles", "affinity_broken")}
            print(f"[reliability] storm on {label}: {results[label]}")
    report("storm-engines", {"seed": seed, "seconds_each": ENGINE_SECONDS, "runs": results})
