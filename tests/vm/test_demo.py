"""The main job's demonstration works: LANA counts traffic between the two guests."""

from __future__ import annotations

import pytest

from lab.demo import PINGS, read_counter, run_counter_demo

pytestmark = pytest.mark.vm


def test_counter_demo_counts_traffic_in_both_guests(default_lab) -> None:
    lines: list[str] = []
    after = run_counter_demo(default_lab, lines.append)
    assert set(after) == {"vm1", "vm2"}
    for vm, (packets, octets) in after.items():
        # each guest saw the other's echo requests and the replies to its own, plus ARP
        assert packets >= 2 * PINGS, (vm, packets)
        assert octets >= packets * 42, (vm, octets)  # no frame is shorter than ARP
    assert any("modules unloaded" in line for line in lines)
    for vm in after:  # the demo leaves the guests as it found them
        out = default_lab.vms[vm].exec(["sh", "-c", "lsmod | grep -c '^lana' || true"])
        assert out.stdout.strip() == "0"


def test_reading_a_counter_that_does_not_exist_fails_clearly(default_lab) -> None:
    from lab.errors import LabError

    with pytest.raises(LabError, match="No such file"):
        read_counter(default_lab, "vm1", "nosuchcounter")
