"""Hidden checks of exercise 5 (instructor mode)."""

from __future__ import annotations

import pytest

from lab.errors import LabError
from lab.grading.checks import expect
from lab.grading.nodes import LabNodes
from lab.lana.procfs import parse_fblocks
from lab.voice.scenario import CallResult


@pytest.mark.points(1)
def test_change_leaves_nothing_behind(call: CallResult | LabError, lab: LabNodes) -> None:
    """after the call, vm1 holds only vl1 and meter (no stray blocks from the change)"""
    expect(isinstance(call, CallResult), "the call did not finish")
    expect(lab.vm("vm1").run("test -e /proc/net/lana/fblock/meter").exit_code == 0,
           "there is no `meter`: the change did not happen")
    blocks = parse_fblocks(lab.vm("vm1").run("cat /proc/net/lana/fblocks").stdout)
    extra = sorted(set(blocks) - {"vl1", "meter"})
    expect(not extra, "after the call vm1 still holds " + ", ".join(
        f"`{n}` ({blocks[n].type})" for n in extra) + ": remove what you only needed "
        "during the change")
