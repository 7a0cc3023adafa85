"""Helpers of the multihost tests (test_multihost_lab.py, test_faults.py) around the lab of
lab/multihost/testlab.py."""

from __future__ import annotations

import subprocess

from lab.multihost.hostshell import HostShell, LocalShell, NetnsShell
from lab.multihost.testbed import TwoHostTestbed
from lab.multihost.testlab import spread_lab

__all__ = ["BOOT_TIMEOUT_S", "shells", "spread_lab", "virsh_names"]

BOOT_TIMEOUT_S = 300.0  # three TCG guests at once on a loaded 2-core machine


def virsh_names(uri: str) -> list[str]:
    done = subprocess.run(["virsh", "-c", uri, "list", "--all", "--name"], capture_output=True,
                          text=True, timeout=30, check=True)
    return done.stdout.split()


def shells(testbed: TwoHostTestbed) -> dict[str, HostShell]:
    return {"local": LocalShell(), "hv1": NetnsShell("hv1", testbed.hosts[1].netns),
            "hv2": NetnsShell("hv2", testbed.hosts[2].netns)}
