"""The part of a lab that lives on other hypervisors (docs/design/multihost.md): where each
VM runs, how the lab reaches each host, and the bridges and VXLAN ends that join the
hosts' halves of each switch.

LabRun asks `plan()` before it makes anything (placement needs every hypervisor's room,
which also proves each one answers), builds its local fabric, then calls `make_links()`.
Everything made on a host is recorded with that host's shell first, so lab.runstate.clean
removes it there, after a crash too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lab.errors import LabError, TopologyError
from lab.multihost.hostnet import add_bridge, add_vxlan, vnis_in_use
from lab.multihost.hostshell import HostShell, LocalShell, NetnsShell, SshShell
from lab.multihost.images import open_host
from lab.multihost.placement import Capacity, place, with_overrides
from lab.multihost.uplink import Uplink, check_underlay_off_uplink, read_uplinks
from lab.multihost.vxlan import Tunnel, nic_mtus, plan_tunnels, switch_hosts, underlays
from lab.runstate import RunRecord
from lab.topology.model import LOCAL, HypervisorSpec, Topology, check_shell

# the address the other hypervisors reach this machine at, when a switch spans it too
LOCAL_UNDERLAY_ENV = "LANALAB_UNDERLAY"

Progress = Callable[[str], None]


def spans_hosts(topo: Topology) -> bool:
    """True when the topology names hypervisors besides this machine."""
    return bool(topo.hypervisors) or any(vm.on not in (None, LOCAL) for vm in topo.vms)


def shell_for(hv: HypervisorSpec) -> HostShell:
    """How the lab runs commands on `hv`: its `shell`, else ssh to a qemu+ssh URI's host."""
    if hv.shell is not None:
        kind, target = check_shell(f"hypervisor {hv.name}", hv.shell)
        return NetnsShell(hv.name, target) if kind == "netns" else SshShell(hv.name, target)
    parts = urlsplit(hv.uri)
    if parts.scheme == "qemu+ssh" and parts.hostname:
        user = f"{parts.username}@" if parts.username else ""
        return SshShell(hv.name, f"{user}{parts.hostname}")
    raise TopologyError(f"hypervisor {hv.name}: the lab makes bridges and VXLAN devices "
                        f"there, so it needs a shell on the host, and {hv.uri} gives none",
                        hint=f'add shell = "ssh:root@<host>" to the [[hypervisor]] table of '
                             f"{hv.name} (or use a qemu+ssh:// URI)")


def local_capacity() -> Capacity:
    """This machine's vCPUs and available memory (what placement may give local VMs)."""
    from lab.bench.capacity import meminfo  # it imports lab.labrun, which imports us

    return Capacity(os.cpu_count() or 1, meminfo()["MemAvailable"])


def remote_capacity(hv: HypervisorSpec) -> Capacity:
    """What libvirt on `hv` reports: its CPUs and free memory. Unreachable: a clear error
    within open_host's connect timeout."""
    try:
        conn = open_host(hv.uri)
    except LabError as exc:
        raise LabError(f"hypervisor {hv.name}: {exc.message}", exc.hint) from None
    try:
        cpus = int(conn.getInfo()[2])
        return Capacity(cpus, int(conn.getFreeMemory()) // (1024 * 1024))
    finally:
        conn.close()


def uplinks_via(shell: HostShell) -> tuple[Uplink, ...]:
    """A host's default-route devices and their IPv4 addresses, read through its shell."""
    routes = json.loads(shell.out(["ip", "-j", "-4", "route", "show", "default"]) or "[]")
    uplinks = []
    for dev in sorted({r["dev"] for r in routes if "dev" in r}):
        shown = json.loads(shell.out(["ip", "-j", "-4", "addr", "show", "dev", dev]) or "[]")
        uplinks.append(Uplink(dev, tuple(a["local"] for link in shown
                                         for a in link.get("addr_info", []))))
    return tuple(uplinks)


@dataclass
class Spread:
    """A lab's placement over hypervisors and the links that join them."""

    topo: Topology
    run: RunRecord
    placement: dict[str, str]  # vm name -> hypervisor name (LOCAL for this machine)
    shells: dict[str, HostShell]  # hypervisor name -> its shell (LOCAL: LocalShell)
    addresses: dict[str, str]  # hypervisor name -> underlay address
    tunnels: tuple[Tunnel, ...] = field(default=())

    @classmethod
    def plan(cls, topo: Topology, run: RunRecord, local_underlay: str | None = None,
             progress: Progress = lambda _m: None) -> Spread:
        """Ask every hypervisor for its room (an unreachable one fails here, before
        anything is made), place the VMs and check every underlay stays off its host's
        uplink."""
        free = {LOCAL: local_capacity()}
        for hv in topo.hypervisors:
            free[hv.name] = with_overrides(hv, remote_capacity(hv))
        placement = place(topo, free)
        local = local_underlay or os.environ.get(LOCAL_UNDERLAY_ENV) or None
        shells: dict[str, HostShell] = {LOCAL: LocalShell()}
        shells.update({hv.name: shell_for(hv) for hv in topo.hypervisors})
        spread = cls(topo, run, placement, shells, underlays(topo, local))
        spread._check_underlays()
        for hv in topo.hypervisors:
            vms = [vm for vm, on in placement.items() if on == hv.name]
            progress(f"hypervisor {hv.name} ({hv.uri}): {', '.join(vms) or 'no VM'}")
        return spread

    def _check_underlays(self) -> None:
        in_use = self.hosts_in_use()
        for hv, addr in self.addresses.items():
            if hv in in_use:
                shell = self.shells[hv]
                uplinks = read_uplinks() if hv == LOCAL else uplinks_via(shell)
                check_underlay_off_uplink(hv, addr, uplinks)

    def hosts_in_use(self) -> list[str]:
        """The hypervisors carrying a node of this lab, in the topology's order."""
        used = {hv for hvs in switch_hosts(self.topo, self.placement).values() for hv in hvs}
        used |= set(self.placement.values())
        return [hv for hv in self.topo.hypervisor_names() if hv in used]

    def remote_vms(self) -> set[str]:
        return {vm for vm, hv in self.placement.items() if hv != LOCAL}

    def uri_of(self, vm: str) -> str:
        return self.topo.hypervisor(self.placement[vm]).uri

    def mtus(self) -> dict[tuple[str, int], int]:
        return nic_mtus(self.topo, self.placement)

    def make_links(self, bridges: Mapping[str, str], progress: Progress) -> None:
        """Each remote host's lab bridges, then a VXLAN end on every host of every switch
        that crosses hosts (the local bridges are the fabric's)."""
        for switch, hvs in switch_hosts(self.topo, self.placement).items():
            for hv in hvs:
                if hv != LOCAL:
                    add_bridge(self.run, self.shells[hv], bridges[switch],
                               role=f"bridge of switch {switch}")
        taken: set[int] = set()
        for hv in self.hosts_in_use():
            taken |= vnis_in_use(self.shells[hv])
        self.tunnels = plan_tunnels(self.topo, self.placement, self.run, self.addresses, taken)
        for tunnel in self.tunnels:
            for end in tunnel.ends:
                add_vxlan(self.run, self.shells[end.hypervisor], tunnel.device, end)
            progress(f"switch {tunnel.switch} crosses "
                     f"{', '.join(e.hypervisor for e in tunnel.ends)}: VXLAN {tunnel.vni} "
                     f"({tunnel.device})")

    def describe(self) -> dict[str, Any]:
        """For lab.json: where each VM runs, the hosts, the tunnels."""
        hosts = {}
        for hv in self.hosts_in_use():
            uri = "local" if hv == LOCAL else self.topo.hypervisor(hv).uri
            hosts[hv] = {"uri": uri, "underlay": self.addresses.get(hv),
                         **self.shells[hv].describe()}
        return {"placement": dict(self.placement), "hypervisors": hosts,
                "tunnels": [{"switch": t.switch, "vni": t.vni, "device": t.device,
                             "hosts": [e.hypervisor for e in t.ends]} for t in self.tunnels]}
