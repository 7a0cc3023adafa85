"""Hidden checks of exercise 7 (instructor mode): kinds of frames the visible corpus
lacks, sent to both filters."""

from __future__ import annotations

from typing import Any

import pytest

from lab.grading.checks import expect
from lab.grading.nodes import GuestNode, LabNodes


def hidden_kinds(port: int) -> list:
    from conftest import Kind, tcp, udp

    nops = b"\x01" * 39 + b"\x00"
    return [
        Kind(f"IPv4 UDP to port {port} behind a 60-byte IPv4 header (IHL 15)",
             [udp(port, size=120, options=nops) for _ in range(3)], True),
        Kind(f"IPv4 TCP to port {port} behind a 24-byte IPv4 header",
             [tcp(port, options=b"\x01\x01\x01\x00") for _ in range(2)], False),
        Kind(f"IPv4 UDP to port {port}, a 1400-byte datagram",
             [udp(port, size=1414) for _ in range(2)], True),
    ]


@pytest.mark.points(2)
def test_both_filters_hold_on_more_kinds_of_frames(stacks, verdicts, lab: LabNodes,
                                                   vm1: GuestNode, vm2: GuestNode,
                                                   variant: dict[str, Any]) -> None:
    """both filters give the specified verdict on kinds of frames the visible corpus lacks"""
    from conftest import send_kinds, verdict_feedback

    expect(stacks.cbpf_error is None and stacks.xdp_error is None,
           "not checked: both filters must load first")
    more = send_kinds(lab, vm1, vm2, hidden_kinds(int(variant["udp_port"])))
    problems = [p for p in (verdict_feedback(w, more, None) for w in ("cbpf", "xdp")) if p]
    expect(not problems, "\n".join(problems))
