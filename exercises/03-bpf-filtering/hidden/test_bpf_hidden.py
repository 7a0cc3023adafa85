"""Hidden checks of exercise 3 (instructor mode)."""

from __future__ import annotations

from typing import Any

import pytest

from lab.grading import corpus
from lab.grading.checks import expect
from lab.grading.nodes import GuestNode, LabNodes


@pytest.mark.points(2)
def test_udp_filter_handles_ipv4_options(passed_per_class: list, loaded: dict,
                                         vm1: GuestNode, vm1_mac: str, lab: LabNodes,
                                         variant: dict[str, Any]) -> None:
    """udp.bpf also passes UDP to your port behind a 24-byte IPv4 header"""
    from conftest import send_class

    expect("udp" not in loaded, loaded.get("udp", ""))
    port = variant["udp_port"]
    ppe, before = send_class(vm1, lab, [], 0)
    frames = [corpus.udp(vm1_mac, "10.0.0.1", port, ip_options=True) for _ in range(3)]
    _, after = send_class(vm1, lab, frames, ppe)
    got = after["udp"] - before["udp"]
    expect(got == 3, f"udp.bpf passed {got} of 3 IPv4 UDP datagrams to port {port} that "
           "carry 4 bytes of IPv4 options: the UDP header does not always start at 34")
