"""The plan of a lab's links between hosts, as data: nothing here runs a command.

A lab switch whose nodes sit on more than one hypervisor becomes, on every such host, the
lab bridge (named as the fabric names it) plus a VXLAN device enslaved to it. The devices
of one switch share a VNI from the lab's range; each one floods to every peer host by an
all-zeros fdb entry (head-end replication: the underlay needs no multicast). The bring-up
code records each name, then runs the argv lists in order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass

from lab.errors import TopologyError
from lab.fabric import Fabric
from lab.runstate import IFNAMSIZ_MAX, RunRecord
from lab.topology.model import LOCAL, Topology, check_underlay

VNI_FIRST = 4_200_000  # the lab's own VNI range: other VXLAN users keep clear of it
VNI_LAST = 4_299_999
VNI_COUNT = VNI_LAST - VNI_FIRST + 1
VXLAN_PORT = 4789  # IANA's
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
UNDERLAY_MTU = 1500
CROSSING_MTU = UNDERLAY_MTU - VXLAN_OVERHEAD  # 1450: bigger frames would not cross
FLOOD_MAC = "00:00:00:00:00:00"  # the fdb entry for unknown, broadcast and multicast frames
DEVICE_PREFIX = "lvx"
RUN_TAG_LEN = 6
DEVICE_RE = re.compile(r"^[a-z0-9]+$")


@dataclass(frozen=True)
class TunnelEnd:
    """One host's side of a switch that crosses hosts: what it runs, in this order."""

    hypervisor: str
    underlay: str
    bridge: str
    add: tuple[str, ...]  # ip link add <dev> ... type vxlan ...
    enslave: tuple[str, ...]  # ip link set <dev> master <bridge> up
    fdb: tuple[tuple[str, ...], ...]  # bridge fdb append ..., one per peer host


@dataclass(frozen=True)
class Tunnel:
    """A lab switch stretched over hosts: one VNI, one device name on every host."""

    switch: str
    index: int  # the switch's position in the topology, as in its bridge's name
    vni: int
    device: str
    ends: tuple[TunnelEnd, ...]

    def end(self, hypervisor: str) -> TunnelEnd:
        for end in self.ends:
            if end.hypervisor == hypervisor:
                return end
        raise KeyError(hypervisor)


def run_tag(run_id: str) -> str:
    """The part of a run id that tells runs apart, at most 6 characters: `lab1a2b` -> `1a2b`
    (every run id starts with `lab`, which would only waste room)."""
    return run_id.removeprefix("lab")[-RUN_TAG_LEN:]


def device_stem(run_id: str) -> str:
    """What every VXLAN device of a run starts with (cleanup checks it owns a name)."""
    return f"{DEVICE_PREFIX}{run_tag(run_id)}"


def device_name(run_id: str, index: int) -> str:
    """`lvx<run6><n>` for switch index n, checked against Linux's interface name limit."""
    name = f"{device_stem(run_id)}{index}"
    if len(name) > IFNAMSIZ_MAX or index < 0 or not DEVICE_RE.match(name):
        raise TopologyError(f"VXLAN device name {name!r} is invalid ({len(name)} characters, "
                            f"Linux allows {IFNAMSIZ_MAX}; letters and digits only)",
                            hint="run ids come from RunRecord.create: use one of those")
    return name


def pick_vni(run_id: str, index: int, taken: Set[int]) -> int:
    """The VNI of switch `index`: the run id hashed into the lab's range plus the index,
    stepping on past any VNI in `taken`."""
    digest = hashlib.sha256(run_id.encode()).digest()  # stable, unlike hash() of a str
    start = (int.from_bytes(digest[:8], "big") + index) % VNI_COUNT
    for step in range(VNI_COUNT):
        vni = VNI_FIRST + (start + step) % VNI_COUNT
        if vni not in taken:
            return vni
    raise TopologyError(f"no free VNI in {VNI_FIRST}-{VNI_LAST}",
                        hint="remove stale lab VXLAN devices (`lanalab clean`)")


def switch_hosts(topo: Topology, placement: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Switch name -> the hypervisors carrying its nodes, in the topology's hypervisor order
    (Mininet hosts are always local)."""
    missing = [vm.name for vm in topo.vms if vm.name not in placement]
    if missing:
        raise TopologyError(f"{topo.source}: no hypervisor for vm(s) {', '.join(missing)}",
                            hint="place every VM first (lab.multihost.placement.place)")
    on: dict[str, set[str]] = {sw.name: set() for sw in topo.switches}
    for vm in topo.vms:
        for nic in vm.nics:
            on[nic.switch].add(placement[vm.name])
    for host in topo.hosts:
        for link in host.links:
            on[link.switch].add(LOCAL)
    order = topo.hypervisor_names()
    return {sw: tuple(hv for hv in order if hv in hvs) for sw, hvs in on.items()}


def crossing_switches(topo: Topology, placement: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    return {sw: hvs for sw, hvs in switch_hosts(topo, placement).items() if len(hvs) > 1}


def nic_mtus(topo: Topology, placement: Mapping[str, str]) -> dict[tuple[str, int], int]:
    """(node name, NIC or link index) -> the MTU its guest or Mininet side must get: 1450 on a
    switch that crosses hosts, where a 1500-byte frame would be lost without a word, else
    1500."""
    crossing = crossing_switches(topo, placement)
    mtus: dict[tuple[str, int], int] = {}
    for vm in topo.vms:
        for i, nic in enumerate(vm.nics):
            mtus[(vm.name, i)] = CROSSING_MTU if nic.switch in crossing else UNDERLAY_MTU
    for host in topo.hosts:
        for i, link in enumerate(host.links):
            mtus[(host.name, i)] = CROSSING_MTU if link.switch in crossing else UNDERLAY_MTU
    return mtus


def underlays(topo: Topology, local: str | None = None) -> dict[str, str]:
    """Hypervisor name -> underlay address: the declared ones, and the local machine's when
    the caller knows it (the topology cannot: it is the address the others reach us at)."""
    found = {hv.name: hv.underlay for hv in topo.hypervisors}
    if local is not None:
        found[LOCAL] = str(check_underlay(f"{topo.source}: local underlay", local))
    return found


def tunnel_end(hv: str, addr: str, peers: list[str], device: str, vni: int,
               bridge: str) -> TunnelEnd:
    add = ("ip", "link", "add", device, "mtu", str(CROSSING_MTU), "type", "vxlan",
           "id", str(vni), "local", addr, "dstport", str(VXLAN_PORT), "nolearning")
    enslave = ("ip", "link", "set", device, "master", bridge, "up")
    fdb = tuple(("bridge", "fdb", "append", FLOOD_MAC, "dev", device, "dst", peer)
                for peer in peers)
    return TunnelEnd(hv, addr, bridge, add, enslave, fdb)


def plan_tunnels(topo: Topology, placement: Mapping[str, str], run: RunRecord,
                 addresses: Mapping[str, str], vnis_in_use: Set[int] = frozenset()
                 ) -> tuple[Tunnel, ...]:
    """The tunnels of every switch that crosses hosts. `addresses` maps hypervisor name to
    underlay (see underlays()); `vnis_in_use` holds the VNIs of the VXLAN devices already
    on the hosts, which the plan steps around."""
    # the fabric owns the bridge names (it makes the local ones): ask it, do not copy them
    bridges = Fabric(topo, run).bridges
    crossing = crossing_switches(topo, placement)
    taken = set(vnis_in_use)
    tunnels = []
    for index, sw in enumerate(topo.switches):
        if sw.name not in crossing:
            continue
        hvs = crossing[sw.name]
        unknown = [hv for hv in hvs if hv not in addresses]
        if unknown:
            raise TopologyError(f"{topo.source}: switch {sw.name} spans {', '.join(hvs)}, but "
                                f"no underlay address is known for {', '.join(unknown)}",
                                hint="give the local machine's underlay (the address the "
                                     "other hypervisors reach it at), or keep the switch's "
                                     "nodes off it")
        vni = pick_vni(run.run_id, index, taken)
        taken.add(vni)
        device = device_name(run.run_id, index)
        ends = tuple(tunnel_end(hv, addresses[hv], [addresses[p] for p in hvs if p != hv], device,
                          vni, bridges[sw.name]) for hv in hvs)
        tunnels.append(Tunnel(sw.name, index, vni, device, ends))
    return tuple(tunnels)
