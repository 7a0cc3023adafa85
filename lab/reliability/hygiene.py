"""Host hygiene: SIGKILL a lab command at a random moment, clean its run, and show that
nothing the run made is left while a decoy the lab did not make is untouched.

The decoy is a private network namespace `decoy<hex>` holding a veth pair, plus a
`sleep` process; both are made here, checked after every clean, and removed at the end.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.runstate import process_matches, process_starttime, run_base_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
LANALAB = [sys.executable, "-m", "lab.cli"]


@dataclass
class Decoy:
    netns: str
    pid: int
    starttime: int
    process: subprocess.Popen[bytes]

    @classmethod
    def create(cls) -> Decoy:
        netns = f"decoy{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "-n", netns, "link", "add", "name", "dva", "type", "veth",
                        "peer", "name", "dvb"], check=True)
        process = subprocess.Popen(["sleep", "3600"], start_new_session=True)
        start = process_starttime(process.pid)
        assert start is not None
        return cls(netns, process.pid, start, process)

    def intact(self) -> list[str]:
        """What is wrong with the decoy (empty: untouched)."""
        wrong = []
        if self.netns not in _netns_names():
            wrong.append(f"netns {self.netns} is gone")
        else:
            links = subprocess.run(["ip", "-n", self.netns, "-o", "link", "show"],
                                   capture_output=True, text=True).stdout
            for name in ("dva", "dvb"):
                if f" {name}@" not in links:
                    wrong.append(f"veth {name} in {self.netns} is gone")
        if not process_matches(self.pid, self.starttime):
            wrong.append(f"decoy process {self.pid} is gone")
        return wrong

    def remove(self) -> None:
        if process_matches(self.pid, self.starttime):
            self.process.kill()
        self.process.wait(10)
        subprocess.run(["ip", "netns", "del", self.netns], check=False)


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _runs() -> set[str]:
    base = run_base_dir()
    return {p.name for p in base.iterdir() if p.is_dir()} if base.is_dir() else set()


def _processes_mentioning(text: str) -> list[str]:
    """Live processes whose command line mentions `text` (e.g. qemu with its run folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state not in ("Z", "X"):
            found.append(f"{entry.name}: {cmdline[:160]}")
    return found


def leftovers(run_id: str, records: list[dict[str, Any]]) -> list[str]:
    """Everything of run `run_id` that still exists: recorded or just named after it."""
    left = []
    for r in records:
        kind = r.get("kind")
        if kind == "link" and Path("/sys/class/net", r["ifname"]).exists():
            left.append(f"link {r['ifname']}")
        elif kind == "netns" and r["name"] in _netns_names():
            left.append(f"netns {r['name']}")
        elif kind == "process" and process_matches(r["pid"], r["starttime"]):
            left.append(f"process {r['pid']} ({r.get('argv0')})")
        elif kind == "path" and Path(r["path"]).exists():
            left.append(f"path {r['path']}")
    left += [f"link {n} (unrecorded)" for n in os.listdir("/sys/class/net")
             if n.startswith(run_id) and f"link {n}" not in left]
    left += [f"netns {n} (unrecorded)" for n in _netns_names()
             if n.startswith(run_id) and f"netns {n}" not in left]
    left += [f"process {p} (unrecorded)" for p in _processes_mentioning(f"/{run_id}/")]
    folder = run_base_dir() / run_id
    if folder.exists():
        sockets = [str(p) for p in folder.rglob("*") if p.is_socket()]
        left.append(f"run folder {folder} (sockets: {sockets})")
    return left


def _owner(run_id: str) -> int | None:
    import json

    try:
        meta = json.loads((run_base_dir() / run_id / "run.json").read_text())
    except (OSError, ValueError):
        return None
    pid = meta.get("owner_pid")
    return pid if isinstance(pid, int) else None


def _records(run_id: str) -> list[dict[str, Any]]:
    import json

    path = run_base_dir() / run_id / "resources.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line: the kill came while it was written
    return out


@dataclass
class KillResult:
    command: str
    delay: float
    run_ids: list[str] = field(default_factory=list)
    recorded: int = 0
    alive_at_kill: bool = True
    leftovers: list[str] = field(default_factory=list)
    decoy: list[str] = field(default_factory=list)
    clean_exit: list[int] = field(default_factory=list)


def kill_and_clean(argv: list[str], delay: float, decoy: Decoy, settle: float = 10.0
                   ) -> KillResult:
    """Run `lanalab ARGV`, SIGKILL it after `delay` s, `lanalab clean --run` each run it
    started, then list what is left and what happened to the decoy."""
    before = _runs()
    result = KillResult(" ".join(argv), delay)
    owner = subprocess.Popen([*LANALAB, *argv], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        time.sleep(delay)
        result.alive_at_kill = owner.poll() is None
        family = _descendants(owner.pid)  # the grader runs pytest in a child process
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
    # A child that outlives the killed command (the grader's pytest) would go on making
    # a lab nobody owns: a finding. End those (ours, started by us) before cleaning.
    # Children dying of the kill take a moment under load: wait until none is left or
    # 10 s pass; those still running then outlived it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            process_matches(pid, start) and not _recorded_anywhere(pid)
            for pid, start in family.items()):
        time.sleep(0.1)
    for pid, start in family.items():
        if process_matches(pid, start) and not _recorded_anywhere(pid):
            result.leftovers.append(f"orphan of the killed command: {pid} "
                                    f"({_cmdline(pid)[:120]})")
            os.kill(pid, signal.SIGKILL)
    # only runs this very process (or a child of it) owns: other labs may start beside us
    owners = {owner.pid, *family}
    result.run_ids = sorted(r for r in _runs() - before if _owner(r) in owners)
    for run_id in result.run_ids:
        records = _records(run_id)
        result.recorded += len(records)
        clean = subprocess.run([*LANALAB, "clean", "--run", run_id], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=300)
        result.clean_exit.append(clean.returncode)
        deadline = time.monotonic() + settle  # a SIGHUP'ed Mininet shell takes a moment
        while leftovers(run_id, records) and time.monotonic() < deadline:
            time.sleep(0.2)
        result.leftovers += [f"{run_id}: {x}" for x in leftovers(run_id, records)]
    result.decoy = decoy.intact()
    return result


def _recorded_anywhere(pid: int) -> bool:
    """A process some run recorded (qemu, a Mininet shell): `clean` is to remove it."""
    base = run_base_dir()
    return base.is_dir() and any(f'"pid": {pid},' in path.read_text()
                                 for path in base.glob("*/resources.jsonl"))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def _descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live descendant of `root`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        parent = todo.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                start = process_starttime(pid)
                if start is not None:
                    found[pid] = start
                    todo.append(pid)
    return found
