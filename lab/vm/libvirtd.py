"""Make sure a libvirt daemon serves qemu:///system, starting one when none is running.

Division of labour: `ensure_libvirtd(run)` answers "is libvirtd there", and when it is not,
starts it with `libvirtd -d` and records its pid in the run record as a process the lab
started, so the run's cleanup stops it again (nothing is recorded for a daemon that was
already running: the lab never stops what it did not start). With `keep=True` the daemon is
left running after the run and `libvirtd.json` in the run folder says so.

Why the daemon the lab starts gets its own qemu.conf: on hosts where /dev/kvm exists but is
root-only (containers without udev, like the lab's build machines), libvirt probes qemu with
KVM as root, then finds the device unusable for its `libvirt-qemu` user, throws the probe
away and probes again on every API call: measured 68 s per domain creation. The lab's
daemon therefore runs in a private mount namespace in which /etc/libvirt/qemu.conf is the
lab's file (qemu as root, as the lab's direct qemu backend does; stdio logs to files, so no
virtlogd is needed). The host's own configuration is never changed, and a daemon started by
someone else (systemd) is used as it is.

Sharing: a daemon started by one lab also serves labs started while it runs, but it stops
when the lab that started it is cleaned; LibvirtVM then ends its own qemu by pid. To run
several libvirt labs side by side, start libvirtd yourself (systemctl start libvirtd).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.errors import BackendError
from lab.runstate import RunRecord, process_starttime, run_base_dir

LOCAL_SYSTEM_URI = "qemu:///system"
SOCKET = Path("/run/libvirt/libvirt-sock")
PIDFILE = Path("/run/libvirtd.pid")
HOST_QEMU_CONF = Path("/etc/libvirt/qemu.conf")
START_TIMEOUT_S = 20.0
LAB_QEMU_CONF = """\
# qemu.conf of the libvirtd that the LANA lab started (lab/vm/libvirtd.py); the host's
# /etc/libvirt/qemu.conf is untouched and only hidden from this daemon.
user = "+0"
group = "+0"
dynamic_ownership = 0
stdio_handler = "file"
"""


@dataclass(frozen=True)
class DaemonStatus:
    started_by_lab: bool
    pid: int | None
    seconds: float
    kept: bool = False

    def describe(self) -> str:
        if not self.started_by_lab:
            return "libvirtd was already running"
        what = "left running after the run" if self.kept else "stopped when the run is cleaned"
        return f"libvirtd started by the lab (pid {self.pid}, {self.seconds:.1f} s; {what})"


def is_local_system(uri: str) -> bool:
    return uri.rstrip("/") in (LOCAL_SYSTEM_URI, "qemu:///system")


def daemon_running() -> bool:
    """True when something listens on libvirtd's socket."""
    import socket

    if not SOCKET.is_socket():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(SOCKET))
            return True
        except OSError:
            return False  # a stale socket file of a daemon that died


def ensure_libvirtd(run: RunRecord, uri: str = LOCAL_SYSTEM_URI,
                    keep: bool = False) -> DaemonStatus:
    """Start libvirtd for qemu:///system unless it runs. Remote or session URIs are left to
    their own daemons (the lab cannot start those). Raises BackendError with what to do."""
    if not is_local_system(uri) or daemon_running():
        return DaemonStatus(False, None, 0.0)
    # two labs starting at once must not both start a daemon (and record the other's pid)
    lock_path = run_base_dir() / ".libvirtd.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if daemon_running():
            return DaemonStatus(False, None, 0.0)
        return _start_daemon(run, keep)


def _start_daemon(run: RunRecord, keep: bool) -> DaemonStatus:
    for tool in ("libvirtd", "unshare", "mount"):
        if shutil.which(tool) is None:
            raise BackendError(f"`{tool}` not found, so the lab cannot start libvirtd",
                               "install the libvirt-daemon-system package (scripts/setup-host.sh)")
    if os.geteuid() != 0:
        raise BackendError("libvirtd is not running and only root can start it",
                           "run the lab as root, or start libvirtd yourself")
    start = time.monotonic()
    conf = run.path("libvirtd-qemu.conf")
    run.record("path", path=str(conf))
    conf.write_text(LAB_QEMU_CONF)
    PIDFILE.unlink(missing_ok=True)  # left by a daemon that died: would name the wrong pid
    # --propagation slave: the bind mount stays inside the daemon's namespace
    script = f'mount --bind "$1" {HOST_QEMU_CONF} && exec libvirtd -d'
    done = subprocess.run(["unshare", "--mount", "--propagation", "slave",
                           "sh", "-c", script, "lanalab-libvirtd", str(conf)],
                          capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise BackendError(f"libvirtd did not start ({_last_line(done.stderr)})",
                           "try `libvirtd -d` by hand and read its complaint")
    pid = _wait_for_daemon(start)
    if not keep:
        run.record_process(pid, "libvirtd")  # the run's cleanup stops it
    status = DaemonStatus(True, pid, time.monotonic() - start, kept=keep)
    run.path("libvirtd.json").write_text(json.dumps(
        {"started_by_lab": True, "pid": pid, "left_running": keep}) + "\n")
    return status


def _wait_for_daemon(start: float) -> int:
    deadline = start + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if daemon_running():
            try:
                pid = int(PIDFILE.read_text().strip())
            except (OSError, ValueError):
                pid = 0
            if pid and process_starttime(pid) is not None:
                return pid
        time.sleep(0.05)
    raise BackendError(f"libvirtd started but did not answer on {SOCKET} within "
                       f"{START_TIMEOUT_S:g} s",
                       "look at `journalctl -t libvirtd` or run `libvirtd -v` by hand")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"
