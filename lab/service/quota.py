"""Per-user quotas: concurrent labs, VMs and guest memory, counted over the user's labs
that are up or coming up; a refusal names the limit and what to do."""

from __future__ import annotations

from lab.errors import LabError
from lab.service.config import Quota
from lab.topology import Topology


class QuotaExceeded(LabError):
    """A new lab would take a user over one of their limits."""


def check_quota(quota: Quota, labs: int, vms: int, memory_mb: int,
                new_vms: int, new_memory_mb: int) -> None:
    """labs/vms/memory_mb: what the user has now; new_*: what the new lab asks for."""
    hint = "tear one of your labs down (`lanalab down --run ID`) or ask your instructor"
    if labs + 1 > quota.max_labs:
        raise QuotaExceeded(f"quota: you have {labs} lab(s) and may have at most "
                            f"{quota.max_labs} at once", hint)
    if vms + new_vms > quota.max_vms:
        raise QuotaExceeded(f"quota: this lab's {new_vms} VM(s) on top of your {vms} would "
                            f"exceed your limit of {quota.max_vms} VMs", hint)
    if memory_mb + new_memory_mb > quota.max_memory_mb:
        raise QuotaExceeded(f"quota: this lab's {new_memory_mb} MB of guest memory on top of "
                            f"your {memory_mb} MB would exceed your limit of "
                            f"{quota.max_memory_mb} MB", hint)


def check_shape(quota: Quota, topo: Topology) -> None:
    """A lab a user writes may not take the machine by its size alone."""
    nodes = len(topo.vms) + len(topo.hosts) + len(topo.switches)
    if nodes > quota.max_nodes_per_lab:
        raise QuotaExceeded(f"quota: this lab has {nodes} nodes (VMs, hosts, switches); the "
                            f"limit is {quota.max_nodes_per_lab} per lab",
                            "make the topology smaller or ask your instructor")
    for vm in topo.vms:
        if vm.cpus > quota.max_cpus_per_vm:
            raise QuotaExceeded(f"quota: VM {vm.name} asks for {vm.cpus} vCPUs; the limit is "
                                f"{quota.max_cpus_per_vm} per VM",
                                f"set cpus = {quota.max_cpus_per_vm} or fewer")
