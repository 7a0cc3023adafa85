"""The topology model and loader: sound files load, broken ones say where and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.topology import NicSpec, SwitchSpec, Topology, VmSpec
from lab.topology.loader import TOPOLOGY_DIR, load_topology


def test_default_topology_has_two_vms_and_a_host() -> None:
    topo = load_topology()
    assert [vm.name for vm in topo.vms] == ["vm1", "vm2"]
    assert [h.name for h in topo.hosts] == ["h1"]
    assert topo.vm("vm1").nics[0].ip == "10.0.0.1/24"


def test_every_shipped_topology_loads() -> None:
    files = sorted(TOPOLOGY_DIR.glob("*.toml"))
    assert files
    for path in files:
        load_topology(str(path))


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("text", "message"), [
    ('name = "x"\n[[vm]]\nname = "vm1"\nnics = [{ switch = "s9" }]\n', "no switch named 's9'"),
    ('[[switch]]\nname = "s1"\n[[vm]]\nname = "vm1"\nnics = [{ switch = "s1", model = "rtl"'
     ' }]\n', "unknown NIC model 'rtl'"),
    ('[[switch]]\nname = "s1"\n[[vm]]\nname = "VM 1"\n', "bad name 'VM 1'"),
    ('[[switch]]\nname = "s1"\n[[vm]]\nname = "a"\n[[host]]\nname = "a"\n', "used twice"),
    ('[[switch]]\nname = "s1"\n[[vm]]\nname = "a"\nnics = [{ switch = "s1", ip = "10.0.0.300/24"'
     ' }]\n', "bad address"),
    ('[[switch]]\nname = "s1"\n[[host]]\nname = "a"\nlinks = [{ switch = "s1", ip = "10.0.0.1/24"'
     ' }]\n[[host]]\nname = "b"\nlinks = [{ switch = "s1", ip = "10.0.0.1/24" }]\n',
     "used twice"),
    ('[[switch]]\nname = "s1"\n[[vm]]\nname = "a"\ncolour = "red"\n', "unknown key(s) colour"),
    ('[[switch]]\nname = "s1"\n', "no VMs and no hosts"),
    ("[[switch]\n", "not valid TOML"),
    ('[[vm]]\nnics = []\n', "missing or malformed field"),
])
def test_broken_topologies_are_refused_with_a_reason(tmp_path: Path, text: str,
                                                     message: str) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(_write(tmp_path, text))
    assert message in str(info.value)


def test_unknown_topology_name_lists_the_known_ones() -> None:
    with pytest.raises(TopologyError) as info:
        load_topology("no-such-topology")
    assert "default" in str(info.value.hint)


def test_python_builders_are_validated_too() -> None:
    with pytest.raises(TopologyError):
        Topology(name="t", switches=(SwitchSpec("s1"),),
                 vms=(VmSpec("vm1", nics=(NicSpec("s1", model="rtl8139"),)),))


@pytest.mark.parametrize("name", ["two-vm", "bench", "star", "chain", "mixed"])
def test_every_builder_gives_a_valid_topology(name: str) -> None:
    topo = load_topology(name)
    assert topo.vms


def test_builder_parameters_are_typed_and_checked() -> None:
    assert len(load_topology("star", {"n": "5"}).vms) == 5
    chain = load_topology("chain", {"n": "2"})
    assert [len(vm.nics) for vm in chain.vms] == [2, 2]
    with pytest.raises(TopologyError, match="no parameter 'size'"):
        load_topology("star", {"size": "3"})
    with pytest.raises(TopologyError, match="bad value"):
        load_topology("star", {"n": "many"})
    with pytest.raises(TopologyError, match="1..16"):
        load_topology("star", {"n": "40"})
    with pytest.raises(TopologyError, match="takes no parameters"):
        load_topology("default", {"n": "2"})


@pytest.mark.parametrize(("nic", "message"), [
    ('bw = 0', "bw must be"), ('delay = "ten"', "bad delay"), ("loss = 120", "loss is a"),
])
def test_link_shapes_are_checked(tmp_path: Path, nic: str, message: str) -> None:
    text = f'[[switch]]\nname = "s1"\n[[vm]]\nname = "a"\nnics = [{{ switch = "s1", {nic} }}]\n'
    with pytest.raises(TopologyError, match=message):
        load_topology(_write(tmp_path, text))


@pytest.mark.parametrize(("text", "message"), [
    ('[[switch]]\nname = 5\n[[host]]\nname = "a"\n', "name = 5 should be a str"),
    ('[[switch]]\nname = "s1"\n[[vm]]\nname = "a"\nmemory_mb = "x"\n', "memory_mb = 'x'"),
    ('[[switch]]\nname = "s1"\n[[vm]]\nname = "a"\ncpus = true\n', "cpus = True"),
    ('[[switch]]\nname = "s1"\n[[vm]]\nname = "a"\nnics = [{ switch = "s1", ip = true }]\n',
     "ip = True"),
    ('[[switch]]\nname = "s1"\n[[vm]]\nname = "a"\nnics = 3\n', "nics must be a list"),
])
def test_values_of_the_wrong_type_are_refused_clearly(tmp_path: Path, text: str,
                                                       message: str) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(_write(tmp_path, text))
    assert message in str(info.value)


def test_a_file_that_is_not_utf8_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(TopologyError, match="not a text file in UTF-8"):
        load_topology(str(path))
