"""Helpers of the multihost tests (test_multihost_lab.py, test_faults.py) around the lab of
lab/multihost/testlab.py."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

from lab.labrun import LabRun
from lab.multihost.hostshell import HostShell, LocalShell, NetnsShell
from lab.multihost.testbed import TwoHostTestbed
from lab.multihost.testlab import spread_lab

__all__ = ["BOOT_TIMEOUT_S", "running_spread_lab", "shells", "spread_lab", "virsh_names"]

BOOT_TIMEOUT_S = 300.0  # three TCG guests at once on a loaded 2-core machine


def virsh_names(uri: str) -> list[str]:
    done = subprocess.run(["virsh", "-c", uri, "list", "--all", "--name"], capture_output=True,
                          text=True, timeout=30, check=True)
    return done.stdout.split()


def shells(testbed: TwoHostTestbed) -> dict[str, HostShell]:
    return {"local": LocalShell(), "hv1": NetnsShell("hv1", testbed.hosts[1].netns),
            "hv2": NetnsShell("hv2", testbed.hosts[2].netns)}


def running_spread_lab(testbed: TwoHostTestbed, folder: Path) -> Iterator[LabRun]:
    """For a module fixture: the lab, up; down afterwards unless a test took it down."""
    run = spread_lab(testbed, folder)
    run.up(ready_timeout=BOOT_TIMEOUT_S)
    try:
        yield run
    finally:
        if run.run is not None:
            run.down()
