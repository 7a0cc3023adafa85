"""Hypervisors in topology files: `[[hypervisor]]` tables and a VM's `on`, refused with the
place and a hint when wrong; files without them load as before."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.topology import NicSpec, SwitchSpec, Topology, VmSpec
from lab.topology.loader import TOPOLOGY_DIR, load_topology
from lab.topology.model import LOCAL, HypervisorSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "multihost.toml"

HV2 = ('[[hypervisor]]\nname = "hv2"\nuri = "qemu+tcp://198.51.100.2/system"\n'
       'underlay = "198.51.100.2"\n')
VM_ON_HV2 = '[[switch]]\nname = "s1"\n[[vm]]\nname = "vm1"\non = "hv2"\n'


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return str(path)


def _hypervisor(**keys: object) -> str:
    table = {"name": "hv2", "uri": "qemu+tcp://198.51.100.2/system", "underlay": "198.51.100.2",
             **keys}
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in table.items() if v is not None]
    return "[[hypervisor]]\n" + "\n".join(lines) + "\n"


def test_the_example_puts_two_vms_on_hv1_one_on_hv2_and_the_host_local() -> None:
    topo = load_topology(str(EXAMPLE))
    assert topo.hypervisor_names() == [LOCAL, "hv1", "hv2"]
    assert [(vm.name, vm.on) for vm in topo.vms] == [("vm1", "hv1"), ("vm2", "hv1"),
                                                     ("vm3", "hv2")]
    assert [h.name for h in topo.hosts] == ["h1"]
    assert topo.hypervisor("hv2") == HypervisorSpec("hv2", "qemu+tcp://198.51.100.6/system",
                                                    "203.0.113.2")
    with pytest.raises(KeyError):
        topo.hypervisor(LOCAL)  # implicit: never a declared table


def test_files_without_hypervisors_are_all_local_as_before() -> None:
    for path in sorted(TOPOLOGY_DIR.glob("*.toml")):
        topo = load_topology(str(path))
        if path.stem != "multihost-example":
            assert topo.hypervisors == ()
            assert all(vm.on is None for vm in topo.vms)
            assert topo.hypervisor_names() == [LOCAL]


def test_a_vm_may_be_pinned_to_the_local_machine(tmp_path: Path) -> None:
    topo = load_topology(_write(tmp_path, '[[vm]]\nname = "vm1"\non = "local"\n'))
    assert topo.vm("vm1").on == LOCAL


@pytest.mark.parametrize("uri", [
    "qemu:///system", "qemu+ssh://root@hv2/system", "qemu+ssh://lab@hv2.example:2222/system",
    "qemu+tcp://198.51.100.2/system", "qemu+ssh://root@hv2/system?keyfile=/root/.ssh/lab",
])
def test_libvirt_uris_of_the_system_instance_are_taken(tmp_path: Path, uri: str) -> None:
    topo = load_topology(_write(tmp_path, _hypervisor(uri=uri) + VM_ON_HV2))
    assert topo.hypervisor("hv2").uri == uri


def test_capacity_overrides_are_read(tmp_path: Path) -> None:
    topo = load_topology(_write(tmp_path, _hypervisor(vcpus=4, memory_mb=2048) + VM_ON_HV2))
    assert (topo.hypervisor("hv2").vcpus, topo.hypervisor("hv2").memory_mb) == (4, 2048)


@pytest.mark.parametrize(("text", "message"), [
    ('[[vm]]\nname = "vm1"\non = "hv9"\n', "vm vm1: on = 'hv9' names no hypervisor"),
    (HV2 + HV2 + VM_ON_HV2, "hypervisor name 'hv2' is used twice"),
    (_hypervisor(name="local") + VM_ON_HV2.replace("hv2", "local"),
     "hypervisor local: 'local' is the machine the lab runs on"),
    (_hypervisor(name="HV 2") + VM_ON_HV2, "bad name 'HV 2'"),
    (_hypervisor(uri="http://198.51.100.2/system") + VM_ON_HV2, "has scheme 'http'"),
    (_hypervisor(uri="qemu+tls://198.51.100.2/system") + VM_ON_HV2, "has scheme 'qemu+tls'"),
    (_hypervisor(uri="xen:///system") + VM_ON_HV2, "has scheme 'xen'"),
    (_hypervisor(uri="198.51.100.2") + VM_ON_HV2, "has scheme ''"),
    (_hypervisor(uri="qemu+ssh://root@hv2/session") + VM_ON_HV2, "must name the system instance"),
    (_hypervisor(uri="qemu+ssh:///system") + VM_ON_HV2, "names no host"),
    (_hypervisor(uri="qemu://hv2/system") + VM_ON_HV2, "libvirt over TLS"),
    (_hypervisor(uri="qemu+ssh://hv2:ssh/system") + VM_ON_HV2, "bad libvirt URI"),
    (_hypervisor(underlay="198.51.100.300") + VM_ON_HV2,
     "underlay '198.51.100.300' is not an IPv4"),
    (_hypervisor(underlay="198.51.100.2/24") + VM_ON_HV2, "is not an IPv4 address"),
    (_hypervisor(underlay="2001:db8::2") + VM_ON_HV2, "is not an IPv4 address"),
    (_hypervisor(underlay="hv2.example") + VM_ON_HV2, "is not an IPv4 address"),
    (_hypervisor(underlay="127.0.0.1") + VM_ON_HV2, "underlay 127.0.0.1 cannot carry tunnels"),
    (_hypervisor(underlay="239.1.2.3") + VM_ON_HV2, "underlay 239.1.2.3 cannot carry tunnels"),
    (_hypervisor(underlay="0.0.0.0") + VM_ON_HV2, "underlay 0.0.0.0 cannot carry tunnels"),
    (_hypervisor(underlay="255.255.255.255") + VM_ON_HV2, "cannot carry tunnels"),
    (HV2 + _hypervisor(name="hv3", underlay="198.51.100.3") + VM_ON_HV2,
     "hypervisor hv3: URI qemu+tcp://198.51.100.2/system is already hypervisor hv2"),
    (HV2 + _hypervisor(name="hv3", uri="qemu+tcp://hv3/system") + VM_ON_HV2,
     "hypervisor hv3: underlay 198.51.100.2 is already hypervisor hv2's"),
    (_hypervisor(vcpus=0) + VM_ON_HV2, "hypervisor hv2: vcpus must be 1..4096"),
    (_hypervisor(memory_mb=64) + VM_ON_HV2, "hypervisor hv2: memory_mb must be 128.."),
    (_hypervisor(memory_mb="lots") + VM_ON_HV2, "memory_mb = 'lots' should be a int or nothing"),
    (_hypervisor(underlay=None) + VM_ON_HV2, "hypervisor hv2: missing underlay"),
    (_hypervisor(uri=None, underlay=None) + VM_ON_HV2, "hypervisor hv2: missing uri, underlay"),
    (_hypervisor(site="lab") + VM_ON_HV2, "hypervisor hv2: unknown key(s) site"),
    ('hypervisor = "hv2"\n' + VM_ON_HV2, "'hypervisor' must be a list of tables"),
    ('[[vm]]\nname = "vm1"\non = 2\n', "on = 2 should be a str or nothing"),
    ('[[host]]\nname = "h1"\non = "local"\n', "host: unknown key(s) on"),
])
def test_bad_hypervisors_are_refused_with_the_place(tmp_path: Path, text: str,
                                                    message: str) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(_write(tmp_path, text))
    assert message in str(info.value)
    assert str(tmp_path / "t.toml") in info.value.message


@pytest.mark.parametrize("text", [
    '[[vm]]\nname = "vm1"\non = "hv9"\n',
    _hypervisor(name="local") + VM_ON_HV2.replace("hv2", "local"),
    _hypervisor(uri="http://198.51.100.2/system") + VM_ON_HV2,
    _hypervisor(underlay="198.51.100.2/24") + VM_ON_HV2,
    _hypervisor(underlay="127.0.0.1") + VM_ON_HV2,
    _hypervisor(uri=None) + VM_ON_HV2,
])
def test_hypervisor_errors_say_what_to_do(tmp_path: Path, text: str) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(_write(tmp_path, text))
    assert info.value.hint


def test_python_topologies_check_hypervisors_too() -> None:
    hv2 = HypervisorSpec("hv2", "qemu+ssh://root@hv2/system", "198.51.100.2")
    vm = VmSpec("vm1", nics=(NicSpec("s1"),), on="hv2")
    topo = Topology(name="t", switches=(SwitchSpec("s1"),), vms=(vm,), hypervisors=(hv2,))
    assert topo.vm("vm1").on == "hv2"
    with pytest.raises(TopologyError, match="names no hypervisor"):
        Topology(name="t", switches=(SwitchSpec("s1"),), vms=(vm,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        hv2.underlay = "198.51.100.9"  # type: ignore[misc]


def test_a_lab_spans_hosts_only_when_it_names_hypervisors() -> None:
    from lab.multihost.spread import spans_hosts

    assert spans_hosts(load_topology(str(EXAMPLE)))
    assert not spans_hosts(load_topology("default"))  # one machine: as before
