"""A `lanalab serve` hub for a test: started on free ports with a state folder under /tmp,
stopped at the end with every lab its participants left up. Shared by the hub's tests."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.polling import poll

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Hub:
    url: str
    state: Path
    proc: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)
    uids: dict[str, int] = field(default_factory=dict)
    gids: dict[str, int] = field(default_factory=dict)


def free_ports(count: int) -> int:
    """A port P with P..P+count-1 free (the hub, its API, the proxy's API)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports")


def wait_healthy(hub_url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    def healthy() -> bool:
        assert proc.poll() is None, f"the hub exited:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{hub_url}/hub/health", timeout=5) as answer:
                return answer.status == 200
        except OSError:
            return False

    if not poll(healthy, 120, interval=0.5):
        pytest.fail(f"the hub did not answer /hub/health in 120 s:\n{log.read_text()[-3000:]}")


def skip_unless_reachable() -> None:
    from lab.hub.server import unreachable

    closed = unreachable(REPO / "lab") or unreachable(Path(sys.executable))
    if closed is not None:  # participants' uids could not run the lab's Python
        pytest.skip(f"this checkout is closed to other users at {closed}: clone the lab "
                    "where everybody can enter (the bootcamp server refuses to start here)")


@contextmanager
def started_hub(roster_text: str, *roster_args: str) -> Iterator[Hub]:
    """The roster's accounts made (`lanalab serve --roster ... ROSTER_ARGS
    --accounts-only`), then the hub serving them until the block ends."""
    skip_unless_reachable()
    # under /tmp (not pytest's 0700 folder): participants must reach their own folders
    state = Path(tempfile.mkdtemp(prefix="lanalab-hub-"))
    roster = state.parent / f"{state.name}-roster.csv"
    roster.write_text(roster_text)
    lanalab = [sys.executable, "-m", "lab.cli", "serve", "--state", str(state)]
    log = state.parent / f"{state.name}.log"
    hub: Hub | None = None
    try:
        subprocess.run([*lanalab, "--roster", str(roster), *roster_args, "--accounts-only"],
                       check=True, capture_output=True, cwd=REPO)
        port = free_ports(3)
        with open(log, "wb") as out:
            proc = subprocess.Popen([*lanalab, "--port", str(port)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=REPO)
        hub = Hub(f"http://127.0.0.1:{port}", state, proc, log)
        wait_healthy(hub.url, proc, log)
        accounts = json.loads((state / "accounts.json").read_text())["accounts"]
        hub.uids = {a["id"]: a["uid"] for a in accounts}
        hub.gids = {a["id"]: a.get("gid") or a["uid"] for a in accounts}
        yield hub
    finally:
        if hub is not None:
            stop_hub(hub)
            take_down_labs_of(set(hub.uids.values()))
        shutil.rmtree(state, ignore_errors=True)
        roster.unlink(missing_ok=True)
        log.unlink(missing_ok=True)


def stop_hub(hub: Hub) -> None:
    if hub.proc.poll() is None:
        hub.proc.send_signal(signal.SIGTERM)
        try:
            hub.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            hub.proc.kill()
            hub.proc.wait()


def take_down_labs_of(uids: set[int]) -> None:
    """Labs a failed notebook left up: the service keeps them when it stops."""
    from lab.service.ops_labs import take_down
    from lab.service.ownership import all_labs

    for lab in all_labs():
        if lab.owner_uid in uids:
            take_down(lab)


def processes_of(uids: set[int]) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "uid=,pid=,args="], capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if int(line.split()[0]) in uids]


def as_participant(hub: Hub, pid: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """`lanalab ARGV` as the participant's uid and group, on the hub's lab service."""
    from lab.hub.labservice import socket_path

    home = hub.state / "home" / pid
    return subprocess.run(["setpriv", f"--reuid={hub.uids[pid]}", f"--regid={hub.gids[pid]}",
                           "--clear-groups", sys.executable, "-m", "lab.cli", "--socket",
                           str(socket_path(hub.state)), *argv], capture_output=True,
                          text=True, timeout=900, cwd=home, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(home),
                               "PYTHONPATH": str(REPO), "LC_ALL": "C.UTF-8"})
