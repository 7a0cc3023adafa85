"""Grader of exercise 1: eth0 -> counter "rx" in vm1, counting frames sent from h1."""

from __future__ import annotations

import pytest

from lab.grading import corpus
from lab.grading.apply import script_feedback
from lab.grading.checks import counter, expect, expect_on_top, instance
from lab.grading.nodes import GuestNode, LabNodes
from lab.grading.traffic import send_frames, wait_settled
from lab.vm.qga import ExecResult

FRAMES = 25
FRAME_LEN = 100


@pytest.mark.points(1)
def test_stack_sh_runs_to_the_end(stack: ExecResult) -> None:
    """stack.sh runs in vm1 without a failing command"""
    expect(stack.exit_code == 0, script_feedback(stack, "stack.sh"))


@pytest.mark.points(1)
def test_eth0_is_hooked_into_lana(stack: ExecResult, vm1: GuestNode) -> None:
    """eth0 is hooked into LANA (an instance 'eth0' of type eth)"""
    instance(vm1, "eth0", "eth")


@pytest.mark.points(1)
def test_rx_is_a_counter(stack: ExecResult, vm1: GuestNode) -> None:
    """an instance 'rx' of type counter exists"""
    instance(vm1, "rx", "counter")


@pytest.mark.points(2)
def test_rx_sits_on_top_of_eth0(stack: ExecResult, vm1: GuestNode) -> None:
    """rx is bound on top of eth0, so frames from eth0 go up to rx"""
    expect_on_top(vm1, "rx", "eth0")


@pytest.mark.points(3)
def test_rx_counts_each_frame_from_h1_exactly(stack: ExecResult, vm1: GuestNode,
                                              lab: LabNodes, vm1_mac: str) -> None:
    """rx counts exactly the frames h1 sends to vm1 (packets and bytes)"""
    before = counter(vm1, "rx")
    frames = [corpus.udp(vm1_mac, "10.0.0.1", 7000 + i, FRAME_LEN) for i in range(FRAMES)]
    send_frames(lab.host("h1"), frames)
    want = (before[0] + FRAMES, before[1] + FRAMES * FRAME_LEN)
    after = wait_settled(lambda: counter(vm1, "rx"), expect=want)
    got = (after[0] - before[0], after[1] - before[1])
    expect(got == (FRAMES, FRAMES * FRAME_LEN),
           f"h1 sent {FRAMES} frames of {FRAME_LEN} bytes to vm1, but rx counted "
           f"{got[0]} packets and {got[1]} bytes; "
           + ("nothing reached rx: is rx bound on top of eth0, and is eth0 still hooked?"
              if got[0] == 0 else "every frame that arrives on eth0 must reach rx once"))
