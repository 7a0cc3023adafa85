"""The systemd unit `lanalab service --systemd-unit` prints: this checkout's Python and
options in ExecStart, labs left alone when the service stops, and a unit systemd accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.service.systemd import REPO_ROOT, unit_text


def test_the_unit_runs_this_checkout_with_the_options_given() -> None:
    text = unit_text(Path("/run/x/s.sock"), Path("/etc/lanalab/service.toml"))
    [exec_start] = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert exec_start == (f"ExecStart={sys.executable} -m lab.cli service --socket "
                          "/run/x/s.sock --config /etc/lanalab/service.toml")
    assert f"WorkingDirectory={REPO_ROOT}" in text
    assert "KillMode=process" in text  # stopping the service must not kill the labs
    assert "--socket" not in unit_text()


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze on this machine")
    unit = tmp_path / "lanalab-service.service"
    unit.write_text(unit_text())
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr

