"""The whole lab from the CLI, as a user drives it: up, status, exec, down; and a lab killed
with SIGKILL half-way, after which `lanalab clean` leaves nothing behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.runstate import list_runs, process_matches, run_base_dir

pytestmark = [pytest.mark.vm, pytest.mark.slow]

LANALAB = [sys.executable, "-m", "lab.cli"]
REPO_ROOT = Path(__file__).resolve().parents[2]


def lanalab(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([*LANALAB, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"lanalab {' '.join(args)} exited {result.returncode}\n"
                    f"stdout: {result.stdout}\nstderr: {result.stderr}")
    return result


def recorded(run_dir: Path) -> list[dict]:
    path = run_dir / "resources.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def link_exists(ifname: str) -> bool:
    return Path("/sys/class/net", ifname).exists()


def live_processes(records: list[dict]) -> list[int]:
    """Recorded processes still running (a zombie awaiting its reaper does not count)."""
    return [r["pid"] for r in records
            if r["kind"] == "process" and process_matches(r["pid"], r["starttime"])]


def assert_nothing_left(records: list[dict]) -> None:
    links = [r["ifname"] for r in records if r["kind"] == "link" and link_exists(r["ifname"])]
    assert links == [], f"interfaces left behind: {links}"
    deadline = time.monotonic() + 10  # a SIGHUP'ed Mininet shell takes a moment to exit
    while live_processes(records) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_processes(records) == [], "processes left behind"


def processes_naming(folder: Path) -> list[str]:
    """Processes whose command line names `folder` (a qemu's disk and sockets live in its
    run folder): one the lab started but never recorded would show up here."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and f"{folder}/" in cmdline:
            found.append(f"{entry.name}: {cmdline[:100]}")
    return found


def runs_of(pid: int) -> set[Path]:
    """The run folders owned by process `pid` (other labs may come and go meanwhile)."""
    return {r.folder for r in list_runs() if r.owner_pid == pid}


def test_up_status_exec_down(image) -> None:
    out = lanalab("up").stdout
    run_id = re.search(r"^lab (lab[0-9a-f]+) is up", out, re.M)
    assert run_id, out
    run_dir = run_base_dir() / run_id.group(1)
    run = ("--run", run_dir.name)  # other labs may run beside this one: name ours
    try:
        status = lanalab("status").stdout
        assert f"lab {run_dir.name}" in status
        for node in ("vm1", "vm2", "h1"):
            assert node in status
        assert lanalab("exec", *run, "vm1", "--", "uname", "-r").stdout.startswith("6.1.")
        result = lanalab("exec", *run, "vm1", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
                         check=False)
        assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
        pcap = run_dir.parent / f"{run_dir.name}-capture.pcap"
        capture = subprocess.Popen([*LANALAB, "capture", *run, "vm1", "-w", str(pcap), "-c", "4",
                                    "--seconds", "60", "--filter", "icmp"], cwd=REPO_ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert capture.stderr is not None
        said = ""  # until "capturing on vm1": tcpdump listens on vm1's tap then
        while not said.endswith("(tcpdump is listening)\n"):
            line = capture.stderr.readline()
            assert line, f"lanalab capture ended before it listened: {said}"
            said += line
        lanalab("exec", *run, "h1", "--", "ping", "-c", "2", "-W", "5", "10.0.0.1")
        out, err = capture.communicate(timeout=90)
        assert capture.returncode == 0, out + err
        assert "4 packets captured" in out, out + err  # 2 echo requests, 2 replies
        assert pcap.stat().st_size > 24  # a pcap header and packets
        pcap.unlink()
        lanalab("exec", *run, "vm2", "--", "ping", "-c", "2", "-W", "5", "10.0.0.100")
        records = recorded(run_dir)
        assert any(r["kind"] == "process" for r in records)
    finally:
        lanalab("down", *run)
    assert_nothing_left(records)
    assert not run_dir.exists()


def test_sigkill_half_way_then_clean_leaves_nothing(image) -> None:
    owner = subprocess.Popen([*LANALAB, "up", "--foreground"], cwd=REPO_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Kill while the VMs boot: qemu is recorded but the lab is not up yet.
        deadline = time.monotonic() + 120
        run_dir = None
        while time.monotonic() < deadline:
            new = runs_of(owner.pid)
            if new:
                run_dir = new.pop()
                path = run_dir / "resources.jsonl"
                if path.exists() and '"qemu' in path.read_text():
                    break
            time.sleep(0.05)
        assert run_dir is not None, "the lab never recorded a qemu process"
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        records = recorded(run_dir)
        assert any(link_exists(r["ifname"]) for r in records if r["kind"] == "link")
    finally:
        if owner.poll() is None:
            owner.kill()
    lanalab("clean", "--run", run_dir.name)
    assert_nothing_left(records)
    assert not run_dir.exists()
    assert processes_naming(run_dir) == [], "unrecorded processes of the lab still run"
