"""The pure parts of a lab across hypervisors (lab.multihost.spread): how each host is
reached, which bridges stay local, how a host's uplink is read through its shell."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from lab.errors import LabError, TopologyError
from lab.fabric import Fabric
from lab.multihost.hostshell import HostShell, NetnsShell, SshShell
from lab.multihost.spread import shell_for, uplinks_via
from lab.multihost.uplink import Uplink, check_underlay_off_uplink
from lab.runstate import RunRecord
from lab.topology.loader import load_topology
from lab.topology.model import HypervisorSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "multihost.toml"
TCP = "qemu+tcp://198.51.100.6/system"


@pytest.mark.parametrize(("spec", "shell"), [
    (HypervisorSpec("hv2", TCP, "203.0.113.2", shell="netns:lab1a2b-hv2"),
     NetnsShell("hv2", "lab1a2b-hv2")),
    (HypervisorSpec("hv2", TCP, "203.0.113.2", shell="ssh:admin@hv2.lab"),
     SshShell("hv2", "admin@hv2.lab")),
    (HypervisorSpec("hv2", "qemu+ssh://root@hv2.lab/system", "203.0.113.2"),
     SshShell("hv2", "root@hv2.lab")),
    (HypervisorSpec("hv2", "qemu+ssh://hv2.lab/system", "203.0.113.2"),
     SshShell("hv2", "hv2.lab")),
])
def test_each_hypervisor_is_reached_through_its_shell(spec: HypervisorSpec,
                                                     shell: HostShell) -> None:
    assert shell_for(spec) == shell


def test_a_tcp_uri_without_a_shell_says_what_to_add() -> None:
    with pytest.raises(TopologyError, match="needs a shell on the host") as err:
        shell_for(HypervisorSpec("hv2", TCP, "203.0.113.2"))
    assert 'shell = "ssh:root@<host>"' in (err.value.hint or "")


@pytest.mark.parametrize("shell", ["ssh", "ssh:", "telnet:hv2", "netns:-x", "ssh:a b",
                                   "ssh:-oProxyCommand=x", "netns:a/b"])
def test_bad_shells_are_refused_when_the_file_is_read(tmp_path: Path, shell: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(f'[[hypervisor]]\nname = "hv2"\nuri = "{TCP}"\nunderlay = "203.0.113.2"\n'
                    f'shell = "{shell}"\n[[switch]]\nname = "s1"\n[[vm]]\nname = "vm1"\n'
                    'on = "hv2"\n')
    with pytest.raises(TopologyError, match="hypervisor hv2: shell"):
        load_topology(str(path))


def test_remote_vms_get_no_tap_and_remote_only_switches_no_local_bridge(
        tmp_path: Path) -> None:
    """The example: s1 has the local Mininet host h1 (a local bridge), s2 only VMs on hv1
    (no local bridge); only local VMs get taps."""
    topo = load_topology(str(EXAMPLE))
    run = RunRecord.create(tmp_path)
    fabric = Fabric(topo, run, remote_vms=frozenset({"vm1", "vm2", "vm3"}))
    assert fabric.local_switches == ["s1"] and fabric.taps == []
    mixed = Fabric(topo, run, remote_vms=frozenset({"vm3"}))
    assert mixed.local_switches == ["s1", "s2"]
    assert [t.vm for t in mixed.taps] == ["vm1", "vm1", "vm2"]
    assert set(Fabric(topo, run).bridges) == {"s1", "s2"}  # names: the same on every host


class RoutesHost(HostShell):
    """A host whose `ip -j` answers come from a table."""

    def run(self, argv: Sequence[str], timeout: float = 30.0, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        answers = {
            "route": [{"dst": "default", "gateway": "10.9.0.1", "dev": "enp1s0"}],
            "addr": [{"ifname": "enp1s0", "addr_info": [{"local": "10.9.0.7"}]}],
        }
        return subprocess.CompletedProcess(list(argv), 0, json.dumps(answers[argv[3]]), "")


def test_a_remote_hosts_uplink_is_read_through_its_shell_and_kept_off() -> None:
    uplinks = uplinks_via(RoutesHost("hv2"))
    assert uplinks == (Uplink("enp1s0", ("10.9.0.7",)),)
    with pytest.raises(LabError, match="hypervisor hv2: underlay 10.9.0.7 is an address of "
                                       "enp1s0"):
        check_underlay_off_uplink("hv2", "10.9.0.7", uplinks)
    check_underlay_off_uplink("hv2", "203.0.113.2", uplinks)


def test_a_testbed_address_is_never_reached_through_the_uplink() -> None:
    """198.51.100.0/24 with no lab link routes through the default route's device here:
    refused before a packet goes; names and other addresses are left to the user."""
    from lab.multihost.uplink import read_uplinks
    from lab.vm.libvirt_conn import HostGoneError, check_route

    if not read_uplinks():
        pytest.skip("this machine has no default route")
    with pytest.raises(HostGoneError, match="the uplink"):
        check_route("qemu+tcp://198.51.100.250/system")
    check_route("qemu+ssh://root@hv2.example/system")
    check_route("qemu+tcp://10.255.255.1/system")


def test_a_lab_across_hosts_refuses_the_instruction_clock_before_making_anything(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lab.labrun import LabRun

    monkeypatch.setenv("LANALAB_RUN_DIR", str(tmp_path))
    lab = LabRun(load_topology(str(EXAMPLE)), image=None, icount_shift=0)  # type: ignore[arg-type]
    with pytest.raises(LabError, match="cannot give the instruction clock"):
        lab.up()
    assert lab.run is None and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("uri", "remote"), [
    ("qemu:///system", False), ("qemu+unix:///system", False), ("test:///default", False),
    ("qemu+tcp://198.51.100.6/system", True), ("qemu+ssh://root@hv2/system", True)])
def test_a_uri_is_remote_when_it_names_a_host(uri: str, remote: bool) -> None:
    from lab.vm.libvirt_conn import is_remote

    assert is_remote(uri) is remote
