"""A guest that panics during a lab run is noticed within seconds: its trace is shown and
kept, the node is reported failed, and the rest of the lab is torn down cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.runstate import list_runs, process_matches

pytestmark = [pytest.mark.vm, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_panicking_guest_fails_its_node_and_the_lab_tears_down(tmp_path: Path) -> None:
    env = {**os.environ, "LANALAB_LOG_DIR": str(tmp_path / "logs")}
    owner = subprocess.Popen([sys.executable, "-m", "lab.cli", "up", "--foreground"],
                             cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        state_file = None
        while state_file is None and time.monotonic() < deadline:
            new = [r.folder for r in list_runs() if r.owner_pid == owner.pid]  # not others'
            state_file = next((d / "lab.json" for d in new if (d / "lab.json").exists()), None)
            time.sleep(0.2)
        assert state_file is not None, "the lab never came up"
        run_id = state_file.parent.name
        records = [json.loads(line) for line in
                   (state_file.parent / "resources.jsonl").read_text().splitlines()]
        subprocess.run([sys.executable, "-m", "lab.cli", "exec", "--run", run_id, "--timeout",
                        "10", "vm1", "--", "sh", "-c", "echo c > /proc/sysrq-trigger"],
                       cwd=REPO_ROOT, env=env, capture_output=True, timeout=60)
        crashed_at = time.monotonic()
        output, _ = owner.communicate(timeout=60)
        noticed_after = time.monotonic() - crashed_at
    finally:
        if owner.poll() is None:
            owner.kill()
    assert owner.returncode == 1, output
    assert "vm1 FAILED" in output, output
    assert "sysrq" in output.lower() or "panic" in output.lower(), output
    assert noticed_after < 30, f"the lab took {noticed_after:.0f} s to notice and tear down"
    evidence = tmp_path / "logs" / run_id
    events = [json.loads(line) for line in (evidence / "events.jsonl").read_text().splitlines()]
    assert any(e["vm"] == "vm1" and e["fatal"] for e in events)
    assert (evidence / "vm1.console.log").exists()
    left_links = [r["ifname"] for r in records
                  if r["kind"] == "link" and Path("/sys/class/net", r["ifname"]).exists()]
    assert left_links == []
    deadline = time.monotonic() + 30  # qemu may take a moment to exit after SIGTERM
    alive = ["?"]
    while alive and time.monotonic() < deadline:
        alive = [r for r in records
                 if r["kind"] == "process" and process_matches(r["pid"], r["starttime"])]
        time.sleep(0.1)
    assert not alive, f"processes the lab started are still running: {alive}"
    status = subprocess.run([sys.executable, "-m", "lab.cli", "status"], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True).stdout
    assert f"lab {run_id}, vm1 failed" in status
