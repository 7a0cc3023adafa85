"""Network objects on a hypervisor host (a lab bridge, a VXLAN device and its fdb entries),
made through that host's shell and recorded with the host they live on.

Each record is a `link` with the host's shell fields (lab.multihost.hostshell describe()),
written before the object is made; lab.runstate.clean removes it on that host through the
same shell, after the run's libvirt domains (whose taps sit on the bridges).
"""

from __future__ import annotations

import json

from lab.multihost.hostshell import HostCommandError, HostShell, link_exists
from lab.multihost.vxlan import TunnelEnd
from lab.runstate import RunRecord


def add_bridge(run: RunRecord, shell: HostShell, name: str, role: str = "lab bridge") -> None:
    """A lab bridge on the host: no STP, no multicast snooping, no IPv6, up."""
    run.record("link", ifname=name, role=role, **shell.describe())
    # no snooping: a snooping bridge joins 224.0.0.106 (router discovery) once it has an
    # address, and its IGMP reports would cross the lab's links as frames no node sent
    shell.run(["ip", "link", "add", name, "type", "bridge", "stp_state", "0",
               "mcast_snooping", "0"])
    _no_ipv6(shell, name)
    shell.run(["ip", "link", "set", name, "up"])


def add_vxlan(run: RunRecord, shell: HostShell, device: str, end: TunnelEnd) -> None:
    """The host's end of a tunnel (lab.multihost.vxlan): the device, enslaved to the end's
    bridge, with one flood entry per peer host."""
    run.record("link", ifname=device, role=f"vxlan of bridge {end.bridge}", **shell.describe())
    shell.run(end.add)
    _no_ipv6(shell, device)
    shell.run(end.enslave)
    for fdb in end.fdb:
        shell.run(fdb)


def _no_ipv6(shell: HostShell, ifname: str) -> None:
    """No IPv6 on a lab link's host side: its MLD reports and router solicitations would
    cross the lab's links as frames no lab node sent (per device, in the host's namespace)."""
    shell.run(["sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1"])


def link_counters(shell: HostShell, ifname: str) -> dict[str, int]:
    """rx/tx packet and byte counters of a link on the host (`ip -s -j link`)."""
    shown = json.loads(shell.out(["ip", "-s", "-j", "link", "show", "dev", ifname]))
    stats = shown[0]["stats64"]
    return {"rx_packets": stats["rx"]["packets"], "tx_packets": stats["tx"]["packets"],
            "rx_bytes": stats["rx"]["bytes"], "tx_bytes": stats["tx"]["bytes"]}


def vnis_in_use(shell: HostShell) -> set[int]:
    """The VNIs of the VXLAN devices already on the host (pick_vni steps around them)."""
    shown = json.loads(shell.out(["ip", "-d", "-j", "link", "show", "type", "vxlan"]) or "[]")
    return {int(link["linkinfo"]["info_data"]["id"]) for link in shown
            if "id" in link.get("linkinfo", {}).get("info_data", {})}


__all__ = ["HostCommandError", "add_bridge", "add_vxlan", "link_counters", "link_exists",
           "vnis_in_use"]
