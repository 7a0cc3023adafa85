"""Keep one lab usable across many submissions: when a submission left a guest that
cannot be reset (its kernel crashed, or a buggy block holds LANA in place), reboot just
that VM on its existing taps instead of the whole lab."""

from __future__ import annotations

import contextlib

from lab.errors import GradingError, LabError
from lab.grading.nodes import GuestNode, LabNodes
from lab.grading.reset import reset_lana
from lab.labrun import LabRun, guest_exec_checked
from lab.vm.backends import make_vm
from lab.vm.qemu import Nic


def restart_vm(lab: LabRun, name: str, ready_timeout: float = 180.0) -> float:
    """Stop VM `name` of a lab this process owns and boot it again; -> boot seconds."""
    assert lab.run is not None and lab.fabric is not None
    spec = lab.topo.vm(name)
    with contextlib.suppress(LabError):  # a crashed guest's qemu is already gone
        lab.vms[name].stop()
    nics = [Nic(tap=t.tap, model=spec.nics[t.nic_index].model)
            for t in lab.fabric.taps_of(name)]
    vm = make_vm(lab.backend, name, lab.image, lab.run, nics=nics, share=lab.share,
                 memory_mb=spec.memory_mb, cpus=spec.cpus, uri=lab.libvirt_uri,
                 accel=lab._accel())  # the clock the lab was booted with
    lab.vms[name] = vm
    vm.start()
    seconds = vm.wait_ready(ready_timeout)
    for i, nic in enumerate(spec.nics):
        if nic.ip:
            guest_exec_checked(vm, ["ip", "addr", "add", nic.ip, "dev", f"eth{i}"])
    lab.write_state()
    return seconds


def unusable_guests(run_id: str) -> dict[str, str]:
    """VMs that a reset cannot bring back to a clean LANA state: name -> why."""
    nodes = LabNodes.attach(run_id)
    broken = {}
    for name, guest in nodes.vms.items():
        problem = _reset_problem(guest)
        if problem:
            broken[name] = problem
    return broken


def _reset_problem(guest: GuestNode) -> str | None:
    try:
        reset_lana(guest)
    except GradingError as exc:
        return str(exc)
    return None
