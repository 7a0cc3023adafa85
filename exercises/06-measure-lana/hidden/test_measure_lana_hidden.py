"""Hidden checks of exercise 6 (instructor mode)."""

from __future__ import annotations

import pytest

from lab.grading.checks import expect
from lab.grading.nodes import GuestNode
from lab.vm.qga import ExecResult


@pytest.mark.points(2)
def test_full_size_frames_reach_sink_with_every_byte(chain: ExecResult, vm1: GuestNode,
                                                     remeasured: object) -> None:
    """after the measurement, 1518-byte frames still pass the whole chain: sink counts
    every frame and byte vb received"""
    from conftest import send_burst

    b = send_burst(vm1, 500, 1518)
    expect(b.vb_packets > 0 and (b.sink_packets, b.sink_bytes) == (b.vb_packets, b.vb_bytes),
           f"pktgen sent {b.sent} frames of 1518 bytes on va: vb received {b.vb_packets} "
           f"({b.vb_bytes} bytes), sink counted {b.sink_packets} ({b.sink_bytes} bytes); "
           "every frame must pass the whole chain once, whatever its size")
