"""The main job's demonstration: LANA counting traffic in both guests of a lab.

In each VM: load the core, hook eth0 in observe mode (Linux keeps its copy, so ping still
works), put a counter on top, send traffic between the guests, read the counters, then take
the stack down in reverse order and unload every module.
"""

from __future__ import annotations

from collections.abc import Callable

from lab.errors import LabError
from lab.labrun import LabRun, guest_exec_checked

MODULES = ["lana", "fb_eth", "fb_counter"]
PINGS = 10


def _sh(lab: LabRun, vm: str, command: str) -> str:
    return guest_exec_checked(lab.vms[vm], ["sh", "-c", command])


def read_counter(lab: LabRun, vm: str, name: str = "rx") -> tuple[int, int]:
    packets, octets = _sh(lab, vm, f"cat /proc/net/lana/fblock/{name}").split()[:2]
    return int(packets), int(octets)


def build_counter_stack(lab: LabRun, vm: str) -> None:
    _sh(lab, vm, f"modprobe -a {' '.join(MODULES)} && vlink ethernet hook eth0 && "
                 "fbctl set eth0 mode=observe && fbctl add rx counter && fbctl bind rx eth0")


def tear_down_counter_stack(lab: LabRun, vm: str) -> None:
    _sh(lab, vm, "fbctl unbind rx eth0 && fbctl rm rx && vlink ethernet unhook eth0 && "
                 f"rmmod {' '.join(reversed(MODULES))}")


def run_counter_demo(lab: LabRun, say: Callable[[str], None]) -> dict[str, tuple[int, int]]:
    vms = list(lab.vms)
    if len(vms) < 2:
        raise LabError("the counter demo needs two VMs in the topology")
    ips = {spec.name: spec.nics[0].ip.split("/")[0] for spec in lab.topo.vms if spec.nics
           and spec.nics[0].ip}
    for vm in vms:
        build_counter_stack(lab, vm)
        say(f"{vm}: LANA stack eth0 -> counter 'rx' is up; counter reads {read_counter(lab, vm)}")
    before = {vm: read_counter(lab, vm) for vm in vms}
    a, b = vms[0], vms[1]
    for src, dst in ((a, b), (b, a)):
        say(f"{src}: ping -c {PINGS} {ips[dst]} ({dst})")
        _sh(lab, src, f"ping -q -c {PINGS} -i 0.2 -W 2 {ips[dst]}")
    after = {vm: read_counter(lab, vm) for vm in vms}
    for vm in vms:
        dp = after[vm][0] - before[vm][0]
        db = after[vm][1] - before[vm][1]
        say(f"{vm}: LANA counter 'rx': {after[vm][0]} packets, {after[vm][1]} bytes "
            f"(+{dp} packets, +{db} bytes during the pings)")
        if dp < PINGS:
            raise LabError(f"{vm}: the LANA counter saw only {dp} new packets for "
                           f"{PINGS} pings each way")
    for vm in vms:
        tear_down_counter_stack(lab, vm)
        say(f"{vm}: LANA stack taken down, modules unloaded")
    for vm in vms:
        lab.vms[vm].check_console()
    return after
