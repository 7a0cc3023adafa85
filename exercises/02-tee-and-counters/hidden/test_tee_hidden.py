"""Hidden checks of exercise 2 (instructor mode)."""

from __future__ import annotations

import pytest

from lab.grading import corpus
from lab.grading.checks import counter, expect
from lab.grading.nodes import GuestNode, LabNodes
from lab.grading.traffic import send_frames, wait_settled


@pytest.mark.points(2)
def test_both_branches_count_large_and_small_frames(traffic: dict, vm1: GuestNode,
                                                    vm1_mac: str, lab: LabNodes) -> None:
    """a second corpus (full-size IPv4, ARP replies, IPv6) is counted exactly per branch"""
    ipv4 = [corpus.udp(vm1_mac, "10.0.0.1", 53, 1514) for _ in range(3)]
    arps = [corpus.arp(vm1_mac, "10.0.0.1", reply=True, size=60 + i) for i in range(4)]
    other = [corpus.ipv6_udp(vm1_mac, 53, 1000)]
    before = (counter(vm1, "fb4"), counter(vm1, "fb6"))
    send_frames(lab.host("h1"), ipv4 + other + arps)
    want = ((before[0][0] + 3, before[0][1] + 3 * 1514),
            (before[1][0] + 4, before[1][1] + sum(map(len, arps))))
    after = wait_settled(lambda: (counter(vm1, "fb4"), counter(vm1, "fb6")), expect=want)
    expect(after == want, f"expected fb4/fb6 to reach {want}, they read {after}")
