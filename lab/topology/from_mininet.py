"""Mininet's own Topo API as a way to write lab topologies.

People who know Mininet write what they always write; a host added with `cls=LanaVM` (or
`vm=True`) becomes a VM that runs LANA, every other host a Mininet host:

    from mininet.topo import Topo
    from lab.topology.from_mininet import LanaVM, topology_from_mininet

    class Mixed(Topo):
        def build(self):
            s1 = self.addSwitch("s1")
            self.addLink(self.addHost("vm1", cls=LanaVM, ip="10.0.0.1/24"), s1)
            self.addLink(self.addHost("h1", ip="10.0.0.100/24"), s1, bw=10)

    topo = topology_from_mininet(Mixed())

Links between two switches or two hosts are not supported (the lab's switches are separate
bridges, and a host-to-host cable would bypass them); they are refused with a message.
"""

from __future__ import annotations

from typing import Any

from lab.errors import TopologyError
from lab.topology.model import HostLink, HostSpec, NicSpec, SwitchSpec, Topology, VmSpec


class LanaVM:
    """Marker class: `topo.addHost("vm1", cls=LanaVM)` asks for a LANA VM, not a netns host.
    Options: ip, model ("virtio" or "e1000e"), memory_mb, cpus."""


def _is_vm(opts: dict[str, Any]) -> bool:
    return opts.get("cls") is LanaVM or bool(opts.get("vm"))


def _shape(opts: dict[str, Any]) -> dict[str, Any]:
    return {key: opts[key] for key in ("bw", "delay", "loss") if opts.get(key) is not None}


def _ip_for_link(node_opts: dict[str, Any], link_opts: dict[str, Any], side: str,
                 first_link: bool) -> str | None:
    params = link_opts.get(f"params{side}", {}) or {}
    if "ip" in params:
        return str(params["ip"])
    return str(node_opts["ip"]) if first_link and node_opts.get("ip") else None


def topology_from_mininet(topo: Any, name: str | None = None) -> Topology:
    """Translate a mininet.topo.Topo into the lab's validated Topology."""
    switches = [SwitchSpec(s) for s in topo.switches()]
    switch_names = {s.name for s in switches}
    nics: dict[str, list[NicSpec]] = {h: [] for h in topo.hosts()}
    links: dict[str, list[HostLink]] = {h: [] for h in topo.hosts()}
    for a, b, opts in topo.links(sort=True, withInfo=True):
        if (a in switch_names) == (b in switch_names):
            kind = "switches" if a in switch_names else "hosts"
            raise TopologyError(f"link {a} - {b} joins two {kind}",
                                hint="connect every host or VM to a switch; the lab's "
                                     "switches are separate bridges")
        host, switch = (b, a) if a in switch_names else (a, b)
        side = "2" if a in switch_names else "1"
        host_opts = topo.nodeInfo(host)
        ip = _ip_for_link(host_opts, opts, side, first_link=not (nics[host] or links[host]))
        if _is_vm(host_opts):
            nics[host].append(NicSpec(switch, model=host_opts.get("model", "virtio"), ip=ip,
                                      **_shape(opts)))
        else:
            links[host].append(HostLink(switch, ip=ip, **_shape(opts)))
    vms = tuple(VmSpec(h, tuple(nics[h]), memory_mb=topo.nodeInfo(h).get("memory_mb", 512),
                       cpus=topo.nodeInfo(h).get("cpus", 1))
                for h in topo.hosts() if _is_vm(topo.nodeInfo(h)))
    hosts = tuple(HostSpec(h, tuple(links[h])) for h in topo.hosts()
                  if not _is_vm(topo.nodeInfo(h)))
    return Topology(name=name or type(topo).__name__.lower(), switches=tuple(switches),
                    vms=vms, hosts=hosts, source=f"<mininet {type(topo).__name__}>")
