"""The plan of links between hosts: VNIs in the lab's range without collisions, device
names within IFNAMSIZ, one flood entry per peer host, the MTU rule, and the uplink check."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

from lab.errors import LabError, TopologyError
from lab.fabric import Fabric
from lab.multihost.uplink import Uplink, check_underlay_off_uplink, read_uplinks
from lab.multihost.vxlan import (
    CROSSING_MTU,
    VNI_FIRST,
    VNI_LAST,
    crossing_switches,
    device_name,
    nic_mtus,
    pick_vni,
    plan_tunnels,
    run_tag,
    underlays,
)
from lab.runstate import IFNAMSIZ_MAX, RunRecord
from lab.topology.loader import load_topology
from lab.topology.model import LOCAL

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "multihost.toml"

RUN = RunRecord("lab1a2b", Path("/nonexistent/lab1a2b"))  # names only: nothing is written
LOCAL_UNDERLAY = "203.0.113.10"
EXAMPLE_PLACEMENT = {"vm1": "hv1", "vm2": "hv1", "vm3": "hv2"}


@pytest.fixture
def example() -> Any:
    return load_topology(str(EXAMPLE))


def test_device_names_fit_ifnamsiz_and_tell_runs_apart() -> None:
    assert device_name("lab1a2b", 0) == "lvx1a2b0"
    assert device_name("lab1a2b", 3) != device_name("lab1a2c", 3)
    for run_id in ("lab0000", "labffff", "lab" + "f" * 12, "x" * 40):
        for index in (0, 9, 10, 999, 999_999):
            name = device_name(run_id, index)
            assert len(name) <= IFNAMSIZ_MAX == 15
            assert name.startswith("lvx")
    assert run_tag("lab" + "0123456789") == "456789"  # the tail tells runs apart


def test_a_device_name_past_ifnamsiz_is_refused() -> None:
    with pytest.raises(TopologyError, match="Linux allows 15"):
        device_name("lababcdef", 1_000_000)  # lvx + 6 + 7 digits = 16 characters
    with pytest.raises(TopologyError):
        device_name("lab1a-2b", 0)


def test_vnis_stay_in_the_labs_range_and_follow_the_switch_index() -> None:
    for run_id in (f"lab{i:04x}" for i in range(0, 65536, 997)):
        for index in range(12):
            assert VNI_FIRST <= pick_vni(run_id, index, set()) <= VNI_LAST
    first = pick_vni("lab1a2b", 0, set())
    assert pick_vni("lab1a2b", 0, set()) == first  # stable: no salted hash()
    assert len({pick_vni("lab1a2b", i, set()) for i in range(50)}) == 50
    assert pick_vni("lab1a2b", 0, set()) != pick_vni("lab1a2c", 0, set())


def test_a_vni_in_use_is_stepped_over_and_the_range_wraps() -> None:
    natural = pick_vni("lab1a2b", 0, set())
    assert natural + 3 <= VNI_LAST  # holds for this run id: the test is not vacuous
    assert pick_vni("lab1a2b", 0, {natural, natural + 1, natural + 2}) == natural + 3
    assert pick_vni("lab1a2b", 0, {natural + 1}) == natural  # only taken ones move
    # the switch index whose VNI is the range's last but one: with both last taken, the
    # next free one is the range's first
    index = VNI_LAST - 1 - natural
    assert pick_vni("lab1a2b", index, set()) == VNI_LAST - 1
    assert pick_vni("lab1a2b", index, {VNI_LAST - 1, VNI_LAST}) == VNI_FIRST


def test_a_full_vni_range_is_an_error() -> None:
    with pytest.raises(TopologyError, match="no free VNI in 4200000-4299999"):
        pick_vni("lab1a2b", 0, set(range(VNI_FIRST, VNI_LAST + 1)))


def test_only_switches_with_nodes_on_several_hosts_cross(example: Any) -> None:
    assert crossing_switches(example, EXAMPLE_PLACEMENT) == {"s1": (LOCAL, "hv1", "hv2")}
    assert crossing_switches(load_topology("default"), {"vm1": LOCAL, "vm2": LOCAL}) == {}


def test_the_plan_floods_to_every_peer_host_and_never_to_itself(example: Any) -> None:
    (tunnel,) = plan_tunnels(example, EXAMPLE_PLACEMENT, RUN, underlays(example, LOCAL_UNDERLAY))
    assert (tunnel.switch, tunnel.index, tunnel.device) == ("s1", 0, "lvx1a2b0")
    assert VNI_FIRST <= tunnel.vni <= VNI_LAST
    addresses = {LOCAL: LOCAL_UNDERLAY, "hv1": "203.0.113.1", "hv2": "203.0.113.2"}
    assert [end.hypervisor for end in tunnel.ends] == [LOCAL, "hv1", "hv2"]
    for end in tunnel.ends:
        assert end.underlay == addresses[end.hypervisor]
        assert len(end.fdb) == 2  # three hosts: two peers each
        peers = {argv[-1] for argv in end.fdb}
        assert peers == set(addresses.values()) - {end.underlay}
        for argv in end.fdb:
            assert argv[:7] == ("bridge", "fdb", "append", "00:00:00:00:00:00", "dev",
                                "lvx1a2b0", "dst")


def test_the_device_argv_is_a_vxlan_of_the_vni_on_the_own_underlay(example: Any) -> None:
    (tunnel,) = plan_tunnels(example, EXAMPLE_PLACEMENT, RUN, underlays(example, LOCAL_UNDERLAY))
    hv2 = tunnel.end("hv2")
    assert hv2.add == ("ip", "link", "add", "lvx1a2b0", "mtu", "1450", "type", "vxlan",
                       "id", str(tunnel.vni), "local", "203.0.113.2", "dstport", "4789",
                       "nolearning")
    assert hv2.enslave == ("ip", "link", "set", "lvx1a2b0", "master", hv2.bridge, "up")
    with pytest.raises(KeyError):
        tunnel.end("hv9")


def test_tunnels_use_the_fabrics_bridge_names(example: Any) -> None:
    (tunnel,) = plan_tunnels(example, EXAMPLE_PLACEMENT, RUN, underlays(example, LOCAL_UNDERLAY))
    assert {end.bridge for end in tunnel.ends} == {Fabric(example, RUN).bridges["s1"]}
    assert tunnel.ends[0].bridge == "lab1a2b-s0"


def test_switches_of_one_lab_get_distinct_vnis_clear_of_those_in_use(example: Any) -> None:
    everywhere = {"vm1": "hv1", "vm2": "hv2", "vm3": "hv2"}  # now s2 crosses too
    addresses = underlays(example, LOCAL_UNDERLAY)
    natural = [t.vni for t in plan_tunnels(example, everywhere, RUN, addresses)]
    assert len(natural) == len(set(natural)) == 2
    in_use = set(natural)
    moved = plan_tunnels(example, everywhere, RUN, addresses, vnis_in_use=in_use)
    assert len({t.vni for t in moved}) == 2
    assert not {t.vni for t in moved} & in_use
    assert [t.device for t in moved] == ["lvx1a2b0", "lvx1a2b1"]


def test_a_lab_on_one_host_needs_no_tunnel() -> None:
    topo = load_topology("default")
    assert plan_tunnels(topo, {"vm1": LOCAL, "vm2": LOCAL}, RUN, {}) == ()


def test_a_crossing_switch_needs_every_underlay(example: Any) -> None:
    with pytest.raises(TopologyError, match="no underlay address is known for local"):
        plan_tunnels(example, EXAMPLE_PLACEMENT, RUN, underlays(example))
    with pytest.raises(TopologyError, match="cannot carry tunnels"):
        underlays(example, "127.0.0.1")


def test_every_vm_must_be_placed_before_planning(example: Any) -> None:
    with pytest.raises(TopologyError, match="no hypervisor for vm.s. vm3"):
        plan_tunnels(example, {"vm1": "hv1", "vm2": "hv1"}, RUN, underlays(example))


def test_nics_on_crossing_switches_get_the_lower_mtu(example: Any) -> None:
    mtus = nic_mtus(example, EXAMPLE_PLACEMENT)
    assert mtus == {("vm1", 0): CROSSING_MTU, ("vm1", 1): 1500, ("vm2", 0): 1500,
                    ("vm3", 0): CROSSING_MTU, ("h1", 0): CROSSING_MTU}
    assert CROSSING_MTU == 1450
    local = {"vm1": LOCAL, "vm2": LOCAL, "vm3": LOCAL}
    assert set(nic_mtus(example, local).values()) == {1500}


def test_an_underlay_on_the_default_route_device_is_refused() -> None:
    uplinks = [Uplink("eth0", ("203.0.113.7", "203.0.113.8")), Uplink("wlan0", ())]
    with pytest.raises(LabError, match="underlay 203.0.113.8 is an address of eth0") as info:
        check_underlay_off_uplink("hv2", "203.0.113.8", uplinks)
    assert info.value.hint
    check_underlay_off_uplink("hv2", "198.51.100.2", uplinks)  # a network of the lab's own
    check_underlay_off_uplink("hv2", "198.51.100.2", [])  # no default route at all


class _Msg:
    def __init__(self, **attrs: Any) -> None:
        self.attrs = attrs

    def get_attr(self, name: str) -> Any:
        return self.attrs.get(name)


class _FakeIPRoute:
    """What read_uplinks asks of pyroute2's IPRoute: one plain, one multipath route."""

    def get_default_routes(self, family: int) -> list[_Msg]:
        assert family == socket.AF_INET
        return [_Msg(RTA_OIF=2), _Msg(RTA_MULTIPATH=[{"oif": 3}, {"oif": 2}])]

    def get_links(self, index: int) -> list[_Msg]:
        return [_Msg(IFLA_IFNAME={2: "eth0", 3: "eth1"}[index])]

    def get_addr(self, index: int, family: int) -> list[_Msg]:
        return {2: [_Msg(IFA_LOCAL="203.0.113.7", IFA_ADDRESS="203.0.113.7")],
                3: [_Msg(IFA_ADDRESS="198.51.100.9")]}[index]


def test_uplinks_are_read_from_the_default_routes() -> None:
    assert read_uplinks(_FakeIPRoute()) == (Uplink("eth0", ("203.0.113.7",)),
                                            Uplink("eth1", ("198.51.100.9",)))


def test_the_hosts_own_uplinks_read_as_ipv4_addresses() -> None:
    try:
        uplinks = read_uplinks()  # netlink reads only: nothing is changed
    except OSError as exc:
        pytest.skip(f"no netlink here: {exc}")
    for uplink in uplinks:
        assert uplink.device
        for addr in uplink.addresses:
            ipaddress.IPv4Address(addr)
