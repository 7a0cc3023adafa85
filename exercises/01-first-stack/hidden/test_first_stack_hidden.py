"""Hidden checks of exercise 1 (instructor mode)."""

from __future__ import annotations

import pytest

from lab.grading import corpus
from lab.grading.checks import counter, expect
from lab.grading.nodes import GuestNode, LabNodes
from lab.grading.traffic import send_frames, wait_settled
from lab.vm.qga import ExecResult

SIZES = [64, 90, 128, 333, 1000, 1514]


@pytest.mark.points(2)
def test_rx_counts_mixed_sizes_and_arp_exactly(stack: ExecResult, vm1: GuestNode,
                                               lab: LabNodes, vm1_mac: str) -> None:
    """rx counts frames of any size and type exactly (IPv4 of 64..1514 bytes, ARP)"""
    before = counter(vm1, "rx")
    frames = [corpus.udp(vm1_mac, "10.0.0.1", 9, size) for size in SIZES]
    frames += [corpus.arp(vm1_mac, "10.0.0.1"), corpus.arp(vm1_mac, "10.0.0.1", reply=True)]
    send_frames(lab.host("h1"), frames)
    want = (before[0] + len(frames), before[1] + sum(len(f) for f in frames))
    after = wait_settled(lambda: counter(vm1, "rx"), expect=want)
    expect(after == want, f"rx should have grown by {len(frames)} packets and "
           f"{want[1] - before[1]} bytes for frames of mixed sizes, but grew by "
           f"{after[0] - before[0]} packets and {after[1] - before[1]} bytes")


@pytest.mark.points(1)
def test_rx_can_be_reset(stack: ExecResult, vm1: GuestNode) -> None:
    """`fbctl set rx reset=1` zeroes rx (it is a real counter block)"""
    result = vm1.run("fbctl set rx reset=1")
    expect(result.exit_code == 0, f"`fbctl set rx reset=1` failed: {result.stderr.strip()}")
    expect(counter(vm1, "rx") == (0, 0), "rx does not read 0 0 after a reset")
