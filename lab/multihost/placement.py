"""Which hypervisor each VM of a lab runs on.

Pinned VMs (`on = "hv2"`) go where they say. The others are placed greedily and
deterministically: VMs linked through a switch are kept on one hypervisor when they fit
there together (a link between hosts costs a VXLAN tunnel and 50 bytes of MTU, so links
weigh more than balance), and among equally linked choices the hypervisor with the most
room left wins. Mininet hosts always run on the local machine, so a VM sharing a switch
with one is drawn to `local`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lab.errors import TopologyError
from lab.topology.model import LOCAL, HypervisorSpec, Topology, VmSpec


class PlacementError(TopologyError):
    """The lab's VMs do not fit on its hypervisors."""


@dataclass(frozen=True)
class Capacity:
    """What a hypervisor can give the lab: free vCPUs and free memory (the caller fills it,
    from virNodeGetInfo and virNodeGetFreeMemory)."""

    vcpus: int
    memory_mb: int


def with_overrides(spec: HypervisorSpec, reported: Capacity) -> Capacity:
    """The topology's vcpus/memory_mb of a hypervisor replace what libvirt reports."""
    return Capacity(spec.vcpus if spec.vcpus is not None else reported.vcpus,
                    spec.memory_mb if spec.memory_mb is not None else reported.memory_mb)


def _vcpus(n: int) -> str:
    return f"{n} vCPU" if n == 1 else f"{n} vCPUs"


def _shortfall(vcpus: int, memory_mb: int, room: Capacity) -> str:
    """How much `room` lacks for a demand, e.g. "1 vCPU and 512 MB"."""
    short = []
    if vcpus > room.vcpus:
        short.append(_vcpus(vcpus - room.vcpus))
    if memory_mb > room.memory_mb:
        short.append(f"{memory_mb - room.memory_mb} MB")
    return " and ".join(short)


def _demand(vms: Iterable[VmSpec]) -> tuple[int, int]:
    vms = list(vms)
    return sum(vm.cpus for vm in vms), sum(vm.memory_mb for vm in vms)


def _biggest_first(vms: list[VmSpec]) -> tuple[int, int]:
    vcpus, memory_mb = _demand(vms)
    return -memory_mb, -vcpus


def _fits(vcpus: int, memory_mb: int, room: Capacity) -> bool:
    return vcpus <= room.vcpus and memory_mb <= room.memory_mb


def _neighbours(topo: Topology) -> dict[str, set[str]]:
    """Node name -> the other nodes (VMs and Mininet hosts) it shares a switch with."""
    members: dict[str, set[str]] = {sw.name: set() for sw in topo.switches}
    for vm in topo.vms:
        for nic in vm.nics:
            members[nic.switch].add(vm.name)
    for host in topo.hosts:
        for link in host.links:
            members[link.switch].add(host.name)
    near: dict[str, set[str]] = {name: set() for name in topo.node_names()}
    for nodes in members.values():
        for node in nodes:
            near[node] |= nodes - {node}
    return near


def _linked_groups(vms: list[VmSpec], near: dict[str, set[str]]) -> list[list[VmSpec]]:
    """The VMs of `vms` split into groups joined by switches (connected components), each in
    topology order, the groups in the order of their first VM."""
    by_name = {vm.name: vm for vm in vms}
    seen: set[str] = set()
    groups = []
    for vm in vms:
        if vm.name in seen:
            continue
        group, todo = set(), [vm.name]
        while todo:
            name = todo.pop()
            if name in group:
                continue
            group.add(name)
            todo += [n for n in near[name] if n in by_name and n not in group]
        seen |= group
        groups.append([v for v in vms if v.name in group])
    return groups


class _Placer:
    def __init__(self, topo: Topology, free: Mapping[str, Capacity]) -> None:
        known = topo.hypervisor_names()
        unknown = sorted(set(free) - set(known))
        if unknown:
            raise PlacementError(f"{topo.source}: capacity given for unknown hypervisor(s) "
                                 f"{', '.join(unknown)}", hint=f"hypervisors: {', '.join(known)}")
        self.topo = topo
        self.order = [name for name in known if name in free]  # local first, then the file's
        self.room = {name: free[name] for name in self.order}
        self.near = _neighbours(topo)
        self.where: dict[str, str] = {host.name: LOCAL for host in topo.hosts}
        self.placement: dict[str, str] = {}

    def take(self, vms: list[VmSpec], hv: str) -> None:
        vcpus, memory_mb = _demand(vms)
        room = self.room[hv]
        self.room[hv] = Capacity(room.vcpus - vcpus, room.memory_mb - memory_mb)
        for vm in vms:
            self.where[vm.name] = hv
            self.placement[vm.name] = hv

    def pin(self, vm: VmSpec) -> None:
        assert vm.on is not None
        where = f"{self.topo.source}: vm {vm.name} (on = {vm.on!r})"
        if vm.on not in self.room:
            raise PlacementError(f"{where}: no capacity known for hypervisor {vm.on}",
                                 hint="the caller must give every hypervisor's free room")
        room = self.room[vm.on]
        if not _fits(vm.cpus, vm.memory_mb, room):
            raise PlacementError(
                f"{where} does not fit on {vm.on}: it needs {_vcpus(vm.cpus)} and "
                f"{vm.memory_mb} MB, {vm.on} has {_vcpus(room.vcpus)} and {room.memory_mb} MB "
                f"left, short by {_shortfall(vm.cpus, vm.memory_mb, room)}",
                hint="free room there, pin the VM elsewhere, or shrink its cpus/memory_mb")
        self.take([vm], vm.on)

    def best(self, vms: list[VmSpec]) -> str | None:
        """The hypervisor that takes all of `vms` with the most links to nodes already
        there, then the most memory and vCPUs left; None when none has room."""
        vcpus, memory_mb = _demand(vms)
        names = {vm.name for vm in vms}
        choices = []
        for i, hv in enumerate(self.order):
            room = self.room[hv]
            if not _fits(vcpus, memory_mb, room):
                continue
            links = sum(1 for vm in vms for n in self.near[vm.name]
                        if n not in names and self.where.get(n) == hv)
            choices.append((-links, -(room.memory_mb - memory_mb), -(room.vcpus - vcpus), i))
        return self.order[min(choices)[3]] if choices else None

    def overflow(self, vm: VmSpec) -> PlacementError:
        shorts = "; ".join(f"{hv} is short by {_shortfall(vm.cpus, vm.memory_mb, room)}"
                           for hv, room in self.room.items()) or "no hypervisor has capacity"
        return PlacementError(
            f"{self.topo.source}: vm {vm.name} ({_vcpus(vm.cpus)}, {vm.memory_mb} MB) fits on "
            f"no hypervisor: {shorts}",
            hint="add a hypervisor ([[hypervisor]]), free room on one, or shrink the VMs' "
                 "cpus/memory_mb")


def place(topo: Topology, free: Mapping[str, Capacity]) -> dict[str, str]:
    """VM name -> hypervisor name, for every VM of `topo`. `free` holds the room of each
    hypervisor the lab may use (after with_overrides); hypervisors absent from it get no
    automatically placed VM. Raises PlacementError naming the VM that does not fit."""
    placer = _Placer(topo, free)
    for vm in topo.vms:
        if vm.on is not None:
            placer.pin(vm)
    unpinned = [vm for vm in topo.vms if vm.on is None]
    groups = _linked_groups(unpinned, placer.near)
    # the biggest groups first: they are the hardest to keep whole (stable: file order next)
    groups.sort(key=_biggest_first)
    for group in groups:
        hv = placer.best(group)
        if hv is not None:
            placer.take(group, hv)
            continue
        # no hypervisor takes the whole group: one VM at a time, still drawn to its links
        for vm in sorted(group, key=lambda v: _biggest_first([v])):
            hv = placer.best([vm])
            if hv is None:
                raise placer.overflow(vm)
            placer.take([vm], hv)
    return {vm.name: placer.placement[vm.name] for vm in topo.vms}
