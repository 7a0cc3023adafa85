"""`lanalab up --cli`: the Mininet CLI reaches VMs by name, and substitutes VM names with
their addresses in host commands, as Mininet does for hosts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_mininet_cli_drives_vms_and_hosts(image) -> None:
    commands = "vm1 uname -r\nh1 ping -c 1 -W 5 vm1\nvms\nexit\n"
    done = subprocess.run([sys.executable, "-m", "lab.cli", "up", "--cli", "bench"],
                          cwd=REPO_ROOT, input=commands, capture_output=True, text=True,
                          timeout=300)
    out = done.stdout + done.stderr  # Mininet prints host output through its logger
    assert done.returncode == 0, out
    assert "6.1.0-" in out  # uname -r inside vm1
    assert "vm1 10.0.0.1" in out  # the vms command
    assert "1 received" in out  # h1 pinged vm1 by name
    assert "down" in out  # leaving the CLI tore the lab down
