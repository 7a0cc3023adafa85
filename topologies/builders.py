"""Ready topologies written in Python: call a builder, get a validated Topology.

`lanalab up star --param n=4` or, from Python, `from topologies.builders import star`.
Addresses are all inside 10.0.0.0/24 on the lab's own bridges.
"""

from __future__ import annotations

from lab.topology import HostLink, HostSpec, NicSpec, SwitchSpec, Topology, VmSpec


def _ip(index: int) -> str:
    return f"10.0.0.{index}/24"


def two_vm() -> Topology:
    """The default lab: vm1 and vm2 running LANA, Mininet host h1, one switch."""
    return Topology(
        name="two-vm", description="Two LANA VMs and one Mininet host on one switch",
        switches=(SwitchSpec("s1"),),
        vms=(VmSpec("vm1", (NicSpec("s1", ip=_ip(1)),)),
             VmSpec("vm2", (NicSpec("s1", ip=_ip(2)),))),
        hosts=(HostSpec("h1", (HostLink("s1", _ip(100)),)),))


def bench(model: str = "virtio") -> Topology:
    """The thesis's benchmark setup: a traffic source host sending to a LANA VM (the sink)."""
    return Topology(
        name="bench", description="Traffic source h1 -> LANA sink vm1",
        switches=(SwitchSpec("s1"),),
        vms=(VmSpec("vm1", (NicSpec("s1", model=model, ip=_ip(1)),)),),
        hosts=(HostSpec("h1", (HostLink("s1", _ip(100)),)),))


def star(n: int = 3) -> Topology:
    """N LANA VMs behind one switch, plus a Mininet host to drive traffic."""
    if not 1 <= n <= 16:
        raise ValueError("star: n must be 1..16")
    return Topology(
        name=f"star{n}", description=f"{n} LANA VMs and h1 behind one switch",
        switches=(SwitchSpec("s1"),),
        vms=tuple(VmSpec(f"vm{i}", (NicSpec("s1", ip=_ip(i)),)) for i in range(1, n + 1)),
        hosts=(HostSpec("h1", (HostLink("s1", _ip(100)),)),))


def chain(n: int = 3) -> Topology:
    """h1 - s1 - vm1 - s2 - vm2 - ... - vmN - s(N+1) - h2: every VM sits between two
    switches, so traffic from h1 to h2 crosses each VM only where a LANA stack forwards it
    (for example an xconnect block on top of eth0 and eth1)."""
    if not 1 <= n <= 8:
        raise ValueError("chain: n must be 1..8")
    switches = tuple(SwitchSpec(f"s{i}") for i in range(1, n + 2))
    vms = tuple(VmSpec(f"vm{i}", (NicSpec(f"s{i}"), NicSpec(f"s{i + 1}")))
                for i in range(1, n + 1))
    hosts = (HostSpec("h1", (HostLink("s1", _ip(101)),)),
             HostSpec("h2", (HostLink(f"s{n + 1}", _ip(102)),)))
    return Topology(name=f"chain{n}", description=f"h1 -> {n} LANA VMs in a chain -> h2",
                    switches=switches, vms=vms, hosts=hosts)


def mixed(vms: int = 2, hosts: int = 2) -> Topology:
    """LANA VMs with virtio and e1000e NICs side by side with several Mininet hosts."""
    models = ("virtio", "e1000e")
    return Topology(
        name="mixed", description=f"{vms} VMs (virtio and e1000e NICs) and {hosts} hosts",
        switches=(SwitchSpec("s1"),),
        vms=tuple(VmSpec(f"vm{i}", (NicSpec("s1", model=models[(i - 1) % 2], ip=_ip(i)),))
                  for i in range(1, vms + 1)),
        hosts=tuple(HostSpec(f"h{i}", (HostLink("s1", _ip(100 + i)),))
                    for i in range(1, hosts + 1)))


BUILDERS = {"two-vm": two_vm, "bench": bench, "star": star, "chain": chain, "mixed": mixed}
