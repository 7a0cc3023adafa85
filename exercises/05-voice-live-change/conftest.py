"""Exercise 5 grader fixtures: one voice call between vm1 and vm2, during which the
student's change.sh runs in vm1; a capture of the call on the lab's bridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.grading.apply import GUEST_DIR, copy_submission
from lab.grading.nodes import LabNodes
from lab.voice.scenario import CallResult, Change, ChangePlan, run_voice_call

SECONDS = 8.0  # of audio each way: 400 Opus frames of 20 ms (the grader's FRAMES)
START_S = 1.0  # change.sh starts this long after the call's first frame


@pytest.fixture(scope="session")
def call(lab: LabNodes, submission: Path,
         tmp_path_factory: pytest.TempPathFactory) -> CallResult | LabError:
    """The call, or why it could not be completed (a check then says so)."""
    if not (submission / "change.sh").is_file():
        pytest.fail(f"the submission has no change.sh: put it into {submission}",
                    pytrace=False)
    vm1 = lab.vm("vm1")
    copy_submission(vm1, submission)
    plan = ChangePlan((Change(START_S, "change.sh",
                              f"cd {GUEST_DIR} && sh -e -x ./change.sh"),))
    pcap = tmp_path_factory.mktemp("voice") / "call.pcap"
    try:
        return run_voice_call({name: node.agent for name, node in lab.vms.items()},
                              SECONDS, {"vm1": plan}, lab.lab.state["bridges"]["s1"], pcap)
    except LabError as exc:
        return exc
