"""Placement of VMs over hypervisors: pins honoured, linked VMs kept together, the rest
balanced, and a clear error naming the VM that does not fit."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.multihost.placement import Capacity, PlacementError, place, with_overrides
from lab.topology import HostLink, HostSpec, NicSpec, SwitchSpec, Topology, VmSpec
from lab.topology.loader import load_topology
from lab.topology.model import LOCAL, HypervisorSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "multihost.toml"

HVS = (HypervisorSpec("hv1", "qemu+tcp://198.51.100.1/system", "198.51.100.1"),
       HypervisorSpec("hv2", "qemu+tcp://198.51.100.2/system", "198.51.100.2"))


def _vm(name: str, *switches: str, mb: int = 512, cpus: int = 1,
        on: str | None = None) -> VmSpec:
    return VmSpec(name, tuple(NicSpec(s) for s in switches), memory_mb=mb, cpus=cpus, on=on)


def _topo(*vms: VmSpec, switches: int = 4, hosts: tuple[HostSpec, ...] = ()) -> Topology:
    return Topology(name="t", switches=tuple(SwitchSpec(f"s{i}") for i in range(switches)),
                    vms=vms, hosts=hosts, hypervisors=HVS)


def test_without_hypervisors_every_vm_is_local() -> None:
    topo = load_topology("default")
    assert place(topo, {LOCAL: Capacity(4, 4096)}) == {"vm1": LOCAL, "vm2": LOCAL}


def test_pinned_vms_stay_where_they_are_pinned() -> None:
    topo = load_topology(str(EXAMPLE))
    free = {LOCAL: Capacity(64, 65536), "hv1": Capacity(2, 1024), "hv2": Capacity(1, 512)}
    assert place(topo, free) == {"vm1": "hv1", "vm2": "hv1", "vm3": "hv2"}


def test_linked_vms_share_a_hypervisor_rather_than_balance() -> None:
    # balance alone would split each pair over the two equal hypervisors
    topo = _topo(_vm("a", "s0"), _vm("b", "s0"), _vm("c", "s1"), _vm("d", "s1"))
    result = place(topo, {"hv1": Capacity(4, 2048), "hv2": Capacity(4, 2048)})
    assert result["a"] == result["b"]
    assert result["c"] == result["d"]
    assert result["a"] != result["c"]  # the two unlinked pairs are balanced


def test_a_pair_goes_where_both_fit_not_where_one_fits_best() -> None:
    # alone, a would go to hv1 (more memory), and b would then not fit beside it
    topo = _topo(_vm("a", "s0", mb=1024), _vm("b", "s0", mb=256, cpus=2))
    result = place(topo, {"hv1": Capacity(1, 2048), "hv2": Capacity(4, 1536)})
    assert result == {"a": "hv2", "b": "hv2"}


def test_a_chain_of_links_stays_whole_when_it_fits() -> None:
    topo = _topo(_vm("a", "s0"), _vm("b", "s0", "s1"), _vm("c", "s1", "s2"), _vm("d", "s2"))
    result = place(topo, {"hv1": Capacity(8, 4096), "hv2": Capacity(8, 8192)})
    assert set(result.values()) == {"hv2"}  # the roomier one, all four together


def test_unlinked_vms_are_balanced() -> None:
    topo = _topo(_vm("a", "s0", mb=1024), _vm("b", "s1", mb=1024))
    result = place(topo, {"hv1": Capacity(4, 2048), "hv2": Capacity(4, 2048)})
    assert result["a"] != result["b"]


def test_an_unpinned_vm_follows_its_pinned_neighbour() -> None:
    topo = _topo(_vm("a", "s0", on="hv2"), _vm("b", "s0"))
    result = place(topo, {LOCAL: Capacity(16, 16384), "hv1": Capacity(16, 16384),
                          "hv2": Capacity(2, 1024)})
    assert result == {"a": "hv2", "b": "hv2"}


def test_a_vm_linked_to_a_mininet_host_stays_local() -> None:
    topo = _topo(_vm("a", "s0"), hosts=(HostSpec("h1", (HostLink("s0"),)),))
    result = place(topo, {LOCAL: Capacity(1, 512), "hv1": Capacity(16, 16384)})
    assert result == {"a": LOCAL}


def test_a_group_too_big_for_one_host_is_split_and_still_placed() -> None:
    topo = _topo(_vm("a", "s0", mb=1024), _vm("b", "s0", mb=1024), _vm("c", "s0", mb=1024))
    free = {"hv1": Capacity(4, 2048), "hv2": Capacity(4, 2048)}
    result = place(topo, free)
    on_hv1 = [vm for vm, hv in result.items() if hv == "hv1"]
    assert sorted(result) == ["a", "b", "c"]
    assert len(on_hv1) in (1, 2)  # two on one host, one on the other


def test_placement_is_deterministic() -> None:
    topo = _topo(*(_vm(f"v{i}", f"s{i % 3}", mb=256 * (1 + i % 4)) for i in range(9)))
    free = {LOCAL: Capacity(4, 3072), "hv1": Capacity(4, 3072), "hv2": Capacity(4, 3072)}
    first = place(topo, free)
    assert all(place(topo, free) == first for _ in range(5))
    assert place(topo, dict(reversed(free.items()))) == first  # not the dict's order


def test_overflow_names_the_vm_and_every_host_shortfall() -> None:
    topo = _topo(_vm("big", "s0", mb=8192, cpus=4))
    with pytest.raises(PlacementError) as info:
        place(topo, {LOCAL: Capacity(2, 8192), "hv1": Capacity(8, 4096),
                     "hv2": Capacity(1, 1024)})
    assert info.value.message == (
        "<python>: vm big (4 vCPUs, 8192 MB) fits on no hypervisor: local is short by "
        "2 vCPUs; hv1 is short by 4096 MB; hv2 is short by 3 vCPUs and 7168 MB")
    assert info.value.hint
    assert isinstance(info.value, TopologyError)  # the CLI's error path


def test_overflow_counts_what_earlier_vms_took() -> None:
    topo = _topo(_vm("a", "s0", mb=1024), _vm("b", "s1", mb=1024), _vm("c", "s2", mb=1024))
    with pytest.raises(PlacementError, match=r"vm c \(1 vCPU, 1024 MB\) fits on no hypervisor: "
                                             r"hv1 is short by 512 MB; hv2 is short by 512 MB"):
        place(topo, {"hv1": Capacity(4, 1536), "hv2": Capacity(4, 1536)})


def test_a_pinned_vm_that_does_not_fit_says_by_how_much() -> None:
    topo = _topo(_vm("a", "s0", mb=1024, cpus=2, on="hv1"))
    with pytest.raises(PlacementError) as info:
        place(topo, {"hv1": Capacity(1, 512), "hv2": Capacity(8, 8192)})
    assert "vm a (on = 'hv1') does not fit on hv1" in info.value.message
    assert "short by 1 vCPU and 512 MB" in info.value.message


def test_capacities_must_name_known_hypervisors() -> None:
    topo = _topo(_vm("a", "s0", on="hv2"))
    with pytest.raises(PlacementError, match="unknown hypervisor.*hv7"):
        place(topo, {"hv7": Capacity(1, 512)})
    with pytest.raises(PlacementError, match="no capacity known for hypervisor hv2"):
        place(topo, {"hv1": Capacity(8, 8192)})


def test_hypervisors_without_capacity_get_no_vm() -> None:
    topo = _topo(_vm("a", "s0"), _vm("b", "s1"))
    assert set(place(topo, {"hv2": Capacity(8, 8192)}).values()) == {"hv2"}


def test_overrides_replace_what_libvirt_reports() -> None:
    reported = Capacity(32, 65536)
    assert with_overrides(HVS[0], reported) == reported
    spec = HypervisorSpec("hv3", "qemu+tcp://hv3/system", "198.51.100.3", vcpus=4)
    assert with_overrides(spec, reported) == Capacity(4, 65536)
    spec = HypervisorSpec("hv3", "qemu+tcp://hv3/system", "198.51.100.3", memory_mb=2048)
    assert with_overrides(spec, reported) == Capacity(32, 2048)


@pytest.mark.parametrize("seed", range(30))
def test_random_labs_never_overfill_a_host(seed: int) -> None:
    rng = random.Random(seed)
    vms = [_vm(f"v{i}", *rng.sample([f"s{j}" for j in range(4)], rng.randint(0, 2)),
               mb=rng.choice([256, 512, 1024, 2048]), cpus=rng.randint(1, 3),
               on=rng.choice([None, None, None, "hv1", "hv2", LOCAL]))
           for i in range(rng.randint(1, 10))]
    topo = _topo(*vms)
    free = {hv: Capacity(rng.randint(2, 12), rng.choice([2048, 4096, 8192]))
            for hv in (LOCAL, "hv1", "hv2")}
    try:
        result = place(topo, free)
    except PlacementError as exc:
        assert "does not fit" in exc.message or "fits on no hypervisor" in exc.message
        return
    assert sorted(result) == sorted(vm.name for vm in vms)
    for hv, room in free.items():
        mine = [vm for vm in vms if result[vm.name] == hv]
        assert sum(vm.cpus for vm in mine) <= room.vcpus
        assert sum(vm.memory_mb for vm in mine) <= room.memory_mb
    assert all(result[vm.name] == vm.on for vm in vms if vm.on)
