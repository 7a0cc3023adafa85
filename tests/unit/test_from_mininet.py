"""Mininet's Topo API describes lab topologies: VMs marked with LanaVM, the rest hosts."""

from __future__ import annotations

import pytest
from mininet.topo import Topo

from lab.errors import TopologyError
from lab.topology.from_mininet import LanaVM, topology_from_mininet


class Mixed(Topo):
    def build(self) -> None:  # type: ignore[override]
        s1 = self.addSwitch("s1")
        s2 = self.addSwitch("s2")
        vm1 = self.addHost("vm1", cls=LanaVM, ip="10.0.0.1/24", model="e1000e")
        self.addLink(vm1, s1)
        self.addLink(vm1, s2, params1={"ip": "10.0.1.1/24"})
        self.addLink(self.addHost("h1", ip="10.0.0.100/24"), s1, bw=10)
        self.addLink(s2, self.addHost("h2", ip="10.0.1.100/24"))


def test_vms_hosts_switches_and_links_carry_over() -> None:
    topo = topology_from_mininet(Mixed())
    assert [s.name for s in topo.switches] == ["s1", "s2"]
    (vm,) = topo.vms
    assert vm.name == "vm1"
    assert [(n.switch, n.model, n.ip) for n in vm.nics] == [
        ("s1", "e1000e", "10.0.0.1/24"), ("s2", "e1000e", "10.0.1.1/24")]
    hosts = {h.name: h for h in topo.hosts}
    assert hosts["h1"].links[0].bw == 10
    assert hosts["h2"].links[0].ip == "10.0.1.100/24"  # the link was written switch first


def test_host_to_host_cables_are_refused() -> None:
    topo = Topo()
    topo.addLink(topo.addHost("h1"), topo.addHost("h2"))
    with pytest.raises(TopologyError, match="joins two hosts"):
        topology_from_mininet(topo)


def test_the_model_still_validates() -> None:
    topo = Topo()
    s1 = topo.addSwitch("s1")
    topo.addLink(topo.addHost("vm1", vm=True, model="rtl8139"), s1)
    with pytest.raises(TopologyError, match="unknown NIC model"):
        topology_from_mininet(topo)


def test_a_python_file_with_a_topo_class_loads() -> None:
    from lab.topology.loader import TOPOLOGY_DIR, load_topology

    topo = load_topology(str(TOPOLOGY_DIR / "examples" / "mininet_style.py"))
    assert [vm.name for vm in topo.vms] == ["vm1"]
    assert [h.name for h in topo.hosts] == ["h1"]
