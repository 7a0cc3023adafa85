"""Run records: what the lab created on the host, and how to remove exactly that.

Division of labour: `RunRecord` owns one run folder (`/run/lanalab/<run-id>/`, base folder
overridable with `LANALAB_RUN_DIR`). Every part of the lab that creates a host resource calls
`record()` *before* creating it (a process right after spawning it), so a crash or kill -9
leaves a complete list behind. `clean()` walks the records and removes what still exists and
nothing else: a process only if its start time still matches, a link or netns by its recorded
name, a path by its recorded location. Cleaning is idempotent and safe when nothing exists.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import LabError, RunStateError

DEFAULT_RUN_DIR = Path("/run/lanalab")
RESOURCES_FILE = "resources.jsonl"
META_FILE = "run.json"
IFNAMSIZ_MAX = 15  # Linux: IFNAMSIZ 16 including the NUL
KINDS = ("link", "netns", "process", "path", "libvirt-domain", "libvirt-volume")
TERM_GRACE_S = 3.0
# Extra metadata (a JSON object) a run made by the lab service carries in run.json: its
# owner's uid and what it counts against that owner's quota (lab.service.ownership)
RUN_META_ENV = "LANALAB_RUN_META"


def run_base_dir() -> Path:
    return Path(os.environ.get("LANALAB_RUN_DIR", str(DEFAULT_RUN_DIR)))


def process_starttime(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'
    rest = stat[stat.rindex(")") + 2 :].split()
    return int(rest[19])


def process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def process_matches(pid: int, starttime: int) -> bool:
    """True when `pid` still names the very process recorded (not a reused pid, not a zombie)."""
    return process_starttime(pid) == starttime and process_state(pid) not in (None, "Z", "X")


class RunRecord:
    """One run: its id (also the host-name prefix), its folder and its resource log."""

    def __init__(self, run_id: str, folder: Path) -> None:
        self.run_id = run_id
        self.folder = folder

    @property
    def id(self) -> str:
        return self.run_id

    @property
    def dir(self) -> Path:
        return self.folder

    @property
    def prefix(self) -> str:
        return self.run_id

    @classmethod
    def create(cls, base: Path | None = None) -> RunRecord:
        base = base or run_base_dir()
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        sysnet = Path("/sys/class/net")
        existing_ifnames = set(os.listdir(sysnet)) if sysnet.is_dir() else set()
        for _ in range(64):
            run_id = f"lab{secrets.token_hex(2)}"
            clash = any(n.startswith(run_id) for n in existing_ifnames)
            try:
                (base / run_id).mkdir(mode=0o700)
            except FileExistsError:
                continue
            if clash:
                (base / run_id).rmdir()
                continue
            record = cls(run_id, base / run_id)
            record._write_meta()
            return record
        raise RunStateError(
            f"no free run id under `{base}`",
            "run `lanalab clean` to remove stale runs",
        )

    @classmethod
    def open(cls, run_id: str, base: Path | None = None) -> RunRecord:
        folder = (base or run_base_dir()) / run_id
        if not folder.is_dir():
            raise RunStateError(f"run `{run_id}` not found in `{folder.parent}`",
                                "list runs with `lanalab clean --list`")
        return cls(run_id, folder)

    def adopt(self) -> None:
        """Make the calling process the run's owner (a lab that forked into the background)."""
        self._write_meta()

    def _write_meta(self) -> None:
        pid = os.getpid()
        # adopt() after a fork keeps what create() was given (the service's owner uid)
        extra = {k: v for k, v in self.meta().items()
                 if k not in ("run_id", "owner_pid", "owner_starttime", "created")}
        extra = extra or _env_meta()
        meta = {**extra, "run_id": self.run_id, "owner_pid": pid,
                "owner_starttime": process_starttime(pid),
                "created": self.meta().get("created", time.time())}
        path = self.folder / META_FILE
        path.write_text(json.dumps(meta) + "\n")
        _fsync_path(path)
        _fsync_path(self.folder)

    def meta(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.folder / META_FILE).read_text())
            return data
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def owner_alive(self) -> bool:
        meta = self.meta()
        pid, start = meta.get("owner_pid"), meta.get("owner_starttime")
        return isinstance(pid, int) and isinstance(start, int) and process_matches(pid, start)

    def record(self, kind: str, **fields: Any) -> None:
        """Append one resource (fsync'ed) before the caller creates it."""
        if kind not in KINDS:
            raise RunStateError(f"unknown resource kind `{kind}` (known: {', '.join(KINDS)})")
        line = json.dumps({"kind": kind, **fields}, sort_keys=True) + "\n"
        path = self.folder / RESOURCES_FILE
        fresh = not path.exists()
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        if fresh:
            _fsync_path(self.folder)

    def record_process(self, pid: int, argv0: str) -> None:
        start = process_starttime(pid)
        if start is None:
            return  # already gone: nothing to clean later
        self.record("process", pid=pid, starttime=start, argv0=argv0)

    def spawn(self, argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
        """Start `argv` (stdin /dev/null) recorded before it runs: the child waits in sh,
        reading its stdin pipe, until its pid is in resources.jsonl, then execs argv (same
        pid, same start time). Killed between fork and record, we leave a waiting sh that
        reads EOF and exits, never an unrecorded qemu that `clean` could not find."""
        hold = 'read -r go && exec "$@" < /dev/null'
        proc = subprocess.Popen(["sh", "-c", hold, argv[0], *argv], stdin=subprocess.PIPE,
                                **popen)
        assert proc.stdin is not None
        try:
            self.record_process(proc.pid, argv[0])
            proc.stdin.write(b"go\n")
        finally:
            proc.stdin.close()
        return proc

    def resources(self) -> list[dict[str, Any]]:
        path = self.folder / RESOURCES_FILE
        if not path.exists():
            return []
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash: the resource was not created yet
        return entries

    def ifname(self, suffix: str) -> str:
        """Host interface name `<prefix>-<suffix>`, checked against the 15-char limit."""
        name = f"{self.prefix}-{suffix}"
        if len(name) > IFNAMSIZ_MAX or not suffix or "/" in name or any(c.isspace() for c in name):
            raise RunStateError(
                f"interface name `{name}` is invalid ({len(name)} chars, Linux allows "
                f"{IFNAMSIZ_MAX}, no '/' or spaces)",
                f"use a suffix of at most {IFNAMSIZ_MAX - len(self.prefix) - 1} chars "
                "(shorter node or port names)",
            )
        return name

    def path(self, name: str) -> Path:
        return self.folder / name


@dataclass
class CleanReport:
    removed: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped_live_runs: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # records naming what is not the lab's

    def merge(self, other: CleanReport) -> None:
        self.refused += other.refused
        self.removed += other.removed
        self.already_gone += other.already_gone
        self.errors += other.errors
        self.skipped_live_runs += other.skipped_live_runs

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    folder: Path
    owner_pid: int | None
    alive: bool
    created: float | None
    resources: int


def list_runs(base: Path | None = None) -> list[RunInfo]:
    """Every run folder under the base folder, with the liveness of its owning process."""
    infos = []
    for record in _iter_runs(base):
        meta = record.meta()
        infos.append(RunInfo(record.run_id, record.folder, meta.get("owner_pid"),
                             record.owner_alive(), meta.get("created"), len(record.resources())))
    return infos


def _iter_runs(base: Path | None) -> Iterator[RunRecord]:
    base = base or run_base_dir()
    if not base.is_dir():
        return
    for folder in sorted(base.iterdir()):
        if folder.is_dir() and folder.name.startswith("lab"):
            yield RunRecord(folder.name, folder)


def clean(run_id: str | None = None, base: Path | None = None,
          include_live: bool = False) -> CleanReport:
    """Remove what runs recorded. No run id: every run whose owner is dead (or all, if
    `include_live`). A named run is cleaned even while its owner lives (its own teardown)."""
    report = CleanReport()
    if run_id is not None:
        folder = (base or run_base_dir()) / run_id
        if folder.is_dir():
            report.merge(clean_run(RunRecord(run_id, folder)))
        else:
            report.already_gone.append(f"run {run_id}")
        return report
    for record in _iter_runs(base):
        if record.owner_alive() and not include_live:
            report.skipped_live_runs.append(record.run_id)
            continue
        report.merge(clean_run(record))
    return report


# libvirt domains go first (a libvirtd the run started is one of its processes and must
# still answer), then their volumes on the hosts' pools (a running domain holds its
# overlay), then processes (qemu holds taps and files), then network objects, then paths;
# within a kind, the newest record first.
_ORDER = {"libvirt-domain": 0, "libvirt-volume": 1, "process": 2, "link": 3, "netns": 4,
          "path": 5}


def clean_run(record: RunRecord) -> CleanReport:
    report = CleanReport()
    entries = list(reversed(record.resources()))
    entries.sort(key=lambda e: _ORDER.get(e.get("kind", ""), 9))
    for entry in entries:
        kind = entry.get("kind", "")
        remover = _REMOVERS.get(kind)
        label = f"{kind} {_describe(entry)}"
        if remover is None:
            report.errors.append(f"{label}: unknown kind, left alone")
            continue
        try:
            _check_owned(kind, entry, record)
        except RunStateError as exc:
            report.refused.append(f"{label}: {exc}")
            continue
        try:
            removed = remover(entry)
        except Exception as exc:  # noqa: BLE001 - one failure must not stop the others
            report.errors.append(f"{label}: {exc}")
            continue
        (report.removed if removed else report.already_gone).append(label)
    if not report.errors:
        shutil.rmtree(record.folder, ignore_errors=True)
        report.removed.append(f"run folder {record.folder}")
    return report


def _check_owned(kind: str, entry: dict[str, Any], record: RunRecord) -> None:
    """Host interfaces and namespaces are removed by name only if the name carries the run
    prefix (or, for a VXLAN device, the run's `lvx` stem): a bad record must never take down
    the host's own eth0 or lo. A libvirt volume needs the prefix too: image volumes, which
    other runs boot from, are never a run's (lab.multihost.images)."""
    from lab.multihost.vxlan import device_stem  # lab.multihost imports this module

    name = entry.get("ifname") if kind == "link" else entry.get("name")
    stems = (record.prefix, device_stem(record.id)) if kind == "link" else (record.prefix,)
    if kind in ("link", "netns", "libvirt-volume") and not str(name or "").startswith(stems):
        raise RunStateError(f"refusing to remove {kind} `{name}`: its name lacks the run "
                            f"prefix `{record.prefix}`")


def _describe(entry: dict[str, Any]) -> str:
    keys = ("name", "ifname", "host", "pid", "path", "argv0", "uri")
    return " ".join(f"{k}={entry[k]}" for k in keys if k in entry)


def _remove_process(entry: dict[str, Any]) -> bool:
    pid, start = int(entry["pid"]), int(entry["starttime"])
    if not process_matches(pid, start):
        return False
    os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, start, TERM_GRACE_S):
        if process_matches(pid, start):
            os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, start, TERM_GRACE_S):
            raise RunStateError(f"process {pid} survived SIGKILL")
    return True


def _wait_gone(pid: int, start: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        # a zombie counts as gone: its parent (maybe us, through Popen) reaps it
        if not process_matches(pid, start):
            return True
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return False


def _remove_link(entry: dict[str, Any]) -> bool:
    """A link of this machine's root namespace, or one on a hypervisor host, removed there
    through the host's shell (lab.multihost.hostshell)."""
    from pyroute2 import IPRoute

    if entry.get("shell", "local") != "local":
        from lab.multihost.hostshell import delete_link, hostshell_from

        return delete_link(hostshell_from(entry), entry["ifname"])
    with IPRoute() as ipr:
        indexes = ipr.link_lookup(ifname=entry["ifname"])
        if not indexes:
            return False
        ipr.link("del", index=indexes[0])
    return True


def _remove_netns(entry: dict[str, Any]) -> bool:
    from pyroute2 import netns

    if entry["name"] not in netns.listnetns():
        return False
    netns.remove(entry["name"])
    return True


def _remove_path(entry: dict[str, Any]) -> bool:
    path = Path(entry["path"])
    if not path.is_absolute() or path == Path("/") or len(path.parts) < 3:
        raise RunStateError(f"refusing to remove `{path}` (not a lab-made path)")
    if path.is_symlink() or path.is_file() or path.is_socket():
        path.unlink()
        return True
    if path.is_dir():
        shutil.rmtree(path)
        return True
    if path.exists():
        path.unlink()
        return True
    return False


def _remove_libvirt_domain(entry: dict[str, Any]) -> bool:
    try:
        import libvirt
    except ImportError:
        raise RunStateError("libvirt-python is not installed; cannot destroy the domain",
                            "install the `libvirt` extra or destroy it with virsh") from None
    from lab.vm.libvirt_conn import HostGoneError, is_remote, open_connection

    try:
        conn = open_connection(entry["uri"])
    except HostGoneError:
        return False  # its testbed host went, and the domain with it
    except libvirt.libvirtError as exc:
        if not is_remote(entry["uri"]):
            # the local daemon is gone (another lab stopped the one it started); the
            # domain's qemu may still run: end it by its pid file, if it is that qemu
            return _kill_orphan_domain_qemu(entry["name"])
        raise RunStateError(f"the hypervisor at {entry['uri']} is unreachable "
                            f"({exc.get_error_message()})",
                            "the run's record is kept: run `lanalab clean` again once the "
                            "host is back") from None
    try:
        try:
            dom = conn.lookupByName(entry["name"])
            persistent = dom.isPersistent()  # a transient domain is gone once destroyed
            if dom.isActive():
                dom.destroy()
            if persistent:
                dom.undefine()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False  # gone, possibly while we looked at it
            raise
        return True
    finally:
        conn.close()


def _kill_orphan_domain_qemu(name: str) -> bool:
    return kill_domain_qemu(Path("/run/libvirt/qemu") / f"{name}.pid") is not None


def kill_domain_qemu(pid_file: Path) -> int | None:
    """SIGKILL the qemu of the libvirt domain whose pid file (written by its libvirtd) is
    `pid_file`, named `<domain>.pid`, if that pid is still that domain's qemu; its pid, or
    None when there was nothing to end."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if not any(arg.startswith(f"guest={pid_file.stem}".encode()) for arg in cmdline):
        return None  # the pid is someone else's now
    start = process_starttime(pid)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return None  # ended meanwhile
    if start is not None:
        _wait_gone(pid, start, TERM_GRACE_S)
    return pid


def _remove_libvirt_volume(entry: dict[str, Any]) -> bool:
    """A run's volume in a host's storage pool (lab.multihost.images: the overlay and console
    log of a VM on a remote hypervisor), deleted through the host's URI; an unreachable host
    is an error that names it, and the record stays for the next clean."""
    from lab.multihost.images import delete_volume, host_of, open_host
    from lab.vm.libvirt_conn import HostGoneError

    try:
        import libvirt
    except ImportError:
        raise RunStateError("libvirt-python is not installed; cannot delete the volume",
                            "install the `libvirt` extra or delete it with virsh") from None
    uri = entry["uri"]
    try:
        conn = open_host(uri)
    except HostGoneError:
        return False  # its testbed host went, and its pool with it
    except LabError as exc:
        raise RunStateError(f"the hypervisor {host_of(uri)} is unreachable ({exc.message}); "
                            f"volume {entry['name']} is left in its pool {entry['pool']}",
                            "the run's record is kept: run `lanalab clean` again once the "
                            "host is back") from None
    try:
        return delete_volume(conn, entry["pool"], entry["name"])
    except libvirt.libvirtError as exc:
        raise RunStateError(f"volume {entry['name']} in pool {entry['pool']} on "
                            f"{host_of(uri)}: {exc.get_error_message()}") from None
    finally:
        conn.close()


_REMOVERS = {
    "process": _remove_process,
    "link": _remove_link,
    "netns": _remove_netns,
    "path": _remove_path,
    "libvirt-domain": _remove_libvirt_domain,
    "libvirt-volume": _remove_libvirt_volume,
}


def _env_meta() -> dict[str, Any]:
    text = os.environ.get(RUN_META_ENV, "")
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunStateError(f"${RUN_META_ENV} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RunStateError(f"${RUN_META_ENV} must be a JSON object")
    return data


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
