"""Grader of exercise 3: four classic BPF filters, compiled with bpfc on the host first
(fast feedback, no VM), then loaded into bpf blocks in vm1 and fed a fixed corpus."""

from __future__ import annotations

import pytest

from lab.grading.bpf import Compiled, opcodes
from lab.grading.checks import expect
from lab.grading.nodes import GuestNode

BPF_LDX_MSH = 0xB1  # ldxb 4*([k]&0xf)
BPF_IND_LOADS = {0x40, 0x48, 0x50}  # ld/ldh/ldb [x + k]


def _compiles(compiled: dict[str, Compiled], name: str) -> None:
    expect(compiled[name].ok, compiled[name].error)


@pytest.mark.host
@pytest.mark.points(1)
def test_arp_bpf_compiles(compiled: dict[str, Compiled]) -> None:
    """arp.bpf compiles with bpfc (checked on the host before any VM boots)"""
    _compiles(compiled, "arp")


@pytest.mark.host
@pytest.mark.points(1)
def test_udp_bpf_compiles(compiled: dict[str, Compiled]) -> None:
    """udp.bpf compiles with bpfc (checked on the host before any VM boots)"""
    _compiles(compiled, "udp")


@pytest.mark.host
@pytest.mark.points(1)
def test_vlan_bpf_compiles(compiled: dict[str, Compiled]) -> None:
    """vlan.bpf compiles with bpfc (checked on the host before any VM boots)"""
    _compiles(compiled, "vlan")


@pytest.mark.host
@pytest.mark.points(1)
def test_index_bpf_compiles(compiled: dict[str, Compiled]) -> None:
    """index.bpf compiles with bpfc (checked on the host before any VM boots)"""
    _compiles(compiled, "index")


def _graded(name: str, passed_per_class: list, loaded: dict[str, str]) -> None:
    from conftest import class_feedback

    problem = class_feedback(name, passed_per_class, loaded.get(name))
    expect(problem is None, problem or "")


@pytest.mark.points(3)
def test_arp_filter_passes_exactly_arp(passed_per_class: list, loaded: dict) -> None:
    """arp.bpf passes every ARP frame of the corpus and nothing else"""
    _graded("arp", passed_per_class, loaded)


@pytest.mark.points(3)
def test_udp_filter_passes_exactly_ipv4_udp_to_your_port(passed_per_class: list,
                                                         loaded: dict) -> None:
    """udp.bpf passes exactly the IPv4 UDP datagrams to your UDP port"""
    _graded("udp", passed_per_class, loaded)


@pytest.mark.points(3)
def test_vlan_filter_passes_exactly_your_vlan(passed_per_class: list, loaded: dict) -> None:
    """vlan.bpf passes exactly the frames of your VLAN id, any priority"""
    _graded("vlan", passed_per_class, loaded)


@pytest.mark.points(3)
def test_index_filter_passes_exactly_tcp_to_your_port(passed_per_class: list,
                                                      loaded: dict) -> None:
    """index.bpf passes exactly IPv4 TCP to your TCP port, whatever the IPv4 header length"""
    _graded("index", passed_per_class, loaded)


@pytest.mark.points(1)
def test_index_filter_uses_the_index_register(loaded: dict, vm1: GuestNode) -> None:
    """the program in the kernel's f_index block loads through the index register X"""
    expect("index" not in loaded, loaded.get("index", ""))
    program = vm1.read("/proc/net/lana/fblock/f_index")
    ops = set(opcodes(program))
    expect(BPF_LDX_MSH in ops and ops & BPF_IND_LOADS,
           "index.bpf must compute the IPv4 header length into X (`ldxb 4*([14]&0xf)`) and "
           "load the port relative to it (`ldh [x + 16]`); the program in the kernel has "
           + ("no `ldxb 4*([k]&0xf)`" if BPF_LDX_MSH not in ops else "no `[x + k]` load"))

