"""The autonomic controller (lab.autonomic) defending a stack against 20 floods, in a guest.

One lab (the `bench` topology, vm1 only) and the stack of lab.autonomic.scenario on a veth
pair inside vm1:

    vb -> c0 (counter: rate_high/rate_normal) -> victim -> probe (bpf: 0x88b5) -> app

The controller runs FloodGuard: on c0's rate_high it splices a bpf guard that drops the
flood's EtherType (0x88b6) under `victim`; on rate_normal it takes the guard out again.
lab.autonomic.floods (the guest's python3) keeps a legitimate flow of 0x88b5 frames at 100
per second and floods 20 times. Sender and controller use one clock (time.monotonic() in
vm1). Checked: 20 guards in and out, every legitimate frame counted by `app`, no flood
frame at the victim once the guard was seen, the stack's shape back after every flood and
after the controller stopped, no kernel trouble. The reaction times are printed (-s).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest

from lab.autonomic import scenario
from lab.labrun import LabRun
from lab.topology.loader import load_topology

pytestmark = pytest.mark.vm

FLOODS = 20
FLOOD_TYPE = 0x88B6
TROUBLE = r"BUG|Oops|WARNING|general protection|Call Trace"


class Vm1:
    """lab.autonomic.scenario's Guest for vm1 of a LabRun."""

    def __init__(self, lab: LabRun) -> None:
        self.lab = lab

    def sh(self, command: str, timeout: float = 60.0) -> str:
        return self.lab.sh("vm1", command, timeout=timeout)

    def put(self, path: str, data: bytes | str) -> None:
        self.lab.vms["vm1"].put_file(path, data)


@pytest.fixture(scope="module")
def vm1(image) -> Iterator[Vm1]:
    run = LabRun(load_topology("bench"), image)
    run.up()
    try:
        yield Vm1(run)
        run.vms["vm1"].check_console()
    finally:
        run.down()


def trouble(vm1: Vm1) -> str:
    return vm1.sh(f"dmesg | grep -E '{TROUBLE}' || true").strip()


@pytest.fixture
def guarded(vm1: Vm1) -> Iterator[tuple[Vm1, scenario.Controller]]:
    scenario.build_stack(vm1)
    controller = scenario.start_controller(vm1, "lab.autonomic.policy:FloodGuard", {
        "watch": "c0", "victim": "victim", "guard_type": "bpf",
        "program": scenario.bpf_drop_only(FLOOD_TYPE)})
    assert controller.failed is None, controller.failed
    try:
        yield vm1, controller
    finally:
        scenario.stop_controller(vm1, controller)
        scenario.tear_down_stack(vm1)


def test_twenty_floods_guarded_and_nothing_legitimate_lost(
        guarded: tuple[Vm1, scenario.Controller]) -> None:
    vm1, controller = guarded
    ready = next(r for r in scenario.journal(vm1) if r.kind == "ready")
    run = scenario.flood(vm1, FLOODS, FLOOD_TYPE)
    records = scenario.journal(vm1)
    assert not [r for r in records if r.kind == "error"], records
    assert len(run.floods) == FLOODS, run.floods[-1]
    assert (len(run.reactions), len(run.recoveries)) == (FLOODS, FLOODS), run.floods
    for one in run.floods:  # the guard sat right under the victim, and came out again
        assert "guard on c0" in one["shape_guarded"], one["shape_guarded"]
        assert "victim on guard" in one["shape_guarded"], one["shape_guarded"]
        assert one["shape_after"] == run.first_shape
    inserted = [r for r in records if r.kind == "action" and r.fields["command"] == "insert"]
    assert len(inserted) == FLOODS and all(r.fields["ok"] for r in inserted), inserted
    # nothing legitimate lost by splicing the guard in and out; c0 saw every frame
    assert run.legit_lost == 0, run
    assert run.counts["c0"] == run.legit + run.flood, run
    # flood frames reached the victim only before the guard was in
    before = sum(one["flood_before_guard"] for one in run.floods)
    assert 0 < run.flood_at_victim <= before, (run.flood_at_victim, before)
    assert scenario.stop_controller(vm1, controller)
    stopped = next(r for r in scenario.journal(vm1) if r.kind == "stopped")
    assert stopped.fields["shape"] == ready.fields["shape"]
    assert not trouble(vm1), trouble(vm1)
    ms = sorted(1000 * r for r in run.reactions)
    print(f"\nreaction over {FLOODS} floods (ms): min {ms[0]:.0f}, median "
          f"{statistics.median(ms):.0f}, p90 {ms[int(0.9 * len(ms)) - 1]:.0f}, max "
          f"{ms[-1]:.0f}; guard out after a flood's end (ms): median "
          f"{1000 * statistics.median(run.recoveries):.0f}; legitimate frames "
          f"{run.legit}, lost {run.legit_lost}; flood frames {run.flood}, at the victim "
          f"{run.flood_at_victim} (all before the guard was seen)")
