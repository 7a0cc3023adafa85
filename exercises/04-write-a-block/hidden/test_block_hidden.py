"""Hidden checks of exercise 4 (instructor mode)."""

from __future__ import annotations

import pytest

from lab.grading import corpus
from lab.grading.checks import expect
from lab.grading.nodes import GuestNode, LabNodes
from lab.grading.traffic import send_frames, wait_settled
from lab.vm.qga import ExecResult


@pytest.mark.points(2)
def test_fresh_instance_passes_everything(stack: ExecResult, vm1: GuestNode,
                                          lab: LabNodes, vm1_mac: str) -> None:
    """a new sampler instance (n not set) passes every frame"""
    from conftest import GUEST_KO, counter

    vm1.run(f"grep -q '^fb_sampler ' /proc/modules || insmod {GUEST_KO}")
    setup = vm1.run("fbctl add s9 sampler && fbctl unbind c s1 2>/dev/null; "
                    "fbctl bind s9 eth0 && fbctl bind c s9")
    expect(setup.exit_code == 0, f"could not set up s9: {setup.stderr.strip()}")
    before = counter(vm1)
    frames = [corpus.udp(vm1_mac, "10.0.0.1", 9, 80 + i) for i in range(7)]
    send_frames(lab.host("h1"), frames)
    want = (before[0] + 7, before[1] + sum(map(len, frames)))
    after = wait_settled(lambda: counter(vm1), expect=want)
    expect(after == want, f"a fresh sampler must pass all 7 frames; "
           f"{after[0] - before[0]} passed (n must start as 1)")
