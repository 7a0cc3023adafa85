"""The service's configuration: a TOML file (docs/service.md), every key optional."""

from __future__ import annotations

import grp
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lab.errors import LabError

DEFAULT_SOCKET = Path("/run/lanalab/service.sock")
DEFAULT_LOG = Path("/var/log/lanalab/service.jsonl")


@dataclass(frozen=True)
class Quota:
    max_labs: int = 2
    max_vms: int = 4
    max_memory_mb: int = 2048
    max_cpus_per_vm: int = 2  # vCPUs are host threads under TCG
    max_nodes_per_lab: int = 16  # VMs, Mininet hosts and switches of one lab


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int = 8 << 20  # a frame; a submission's base64 must fit in it
    max_submission_bytes: int = 4 << 20  # unpacked
    max_submission_files: int = 512
    max_topology_bytes: int = 64 << 10
    max_output_bytes: int = 1 << 20  # exec stdout/stderr each, console per read
    max_capture_bytes: int = 16 << 20
    max_capture_seconds: float = 60.0
    max_exec_seconds: float = 600.0
    rate_per_second: float = 10.0  # requests per uid, token bucket
    rate_burst: int = 30
    max_inflight_per_uid: int = 4  # requests of one uid running at once
    read_timeout_s: float = 10.0  # a request must arrive within this


@dataclass(frozen=True)
class Classroom:
    """Where participants keep their work, for an instructor's `grade_class` (the
    bootcamp server writes it: homes = <hub state>/home, one folder per participant)."""

    homes: Path | None = None
    work: str = "notebooks/work"  # in each home: <work>/<exercise>/ is the submission


@dataclass(frozen=True)
class ServiceConfig:
    socket: Path = DEFAULT_SOCKET
    log: Path = DEFAULT_LOG
    instructor_uids: frozenset[int] = frozenset()
    instructor_groups: frozenset[str] = frozenset()
    quota: Quota = field(default_factory=Quota)
    limits: Limits = field(default_factory=Limits)
    classroom: Classroom = field(default_factory=Classroom)

    def is_instructor(self, uid: int, gid: int) -> bool:
        if uid == 0 or uid in self.instructor_uids:
            return True
        for name in self.instructor_groups:
            try:
                group = grp.getgrnam(name)
            except KeyError:
                continue
            if gid == group.gr_gid:
                return True
            try:
                import pwd

                if pwd.getpwuid(uid).pw_name in group.gr_mem:
                    return True
            except KeyError:
                continue
        return False


def _section(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise LabError(f"{where}: must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise LabError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                       hint=f"known: {', '.join(sorted(known))}")
    for key, value in data.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise LabError(f"{where}.{key}: must be a positive number, not {value!r}")
    return cls(**data)


def load_config(path: Path | None) -> ServiceConfig:
    if path is None:
        return ServiceConfig()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LabError(f"service config {path}: {exc}") from exc
    unknown = set(doc) - {"service", "instructors", "quota", "limits", "classroom"}
    if unknown:
        raise LabError(f"service config {path}: unknown section(s) {', '.join(sorted(unknown))}",
                       hint="sections: service, instructors, quota, limits, classroom")
    service = doc.get("service", {})
    extra = set(service) - {"socket", "log"}
    if extra:
        raise LabError(f"service config {path}: [service] unknown key(s) {', '.join(extra)}")
    inst = doc.get("instructors", {})
    uids, groups = inst.get("uids", []), inst.get("groups", [])
    if not all(isinstance(u, int) for u in uids) or not all(isinstance(g, str) for g in groups):
        raise LabError(f"service config {path}: [instructors] uids are numbers, groups names")
    return ServiceConfig(
        socket=Path(service.get("socket", DEFAULT_SOCKET)),
        log=Path(service.get("log", DEFAULT_LOG)),
        instructor_uids=frozenset(uids), instructor_groups=frozenset(groups),
        quota=_section(Quota, doc.get("quota", {}), "[quota]"),
        limits=_section(Limits, doc.get("limits", {}), "[limits]"),
        classroom=_classroom(doc.get("classroom", {}), path))


def _classroom(data: Any, path: Path) -> Classroom:
    if not isinstance(data, dict) or set(data) - {"homes", "work"} or not all(
            isinstance(v, str) for v in data.values()):
        raise LabError(f"service config {path}: [classroom] takes homes and work, as strings")
    work = data.get("work", Classroom.work)
    if work.startswith("/") or ".." in Path(work).parts:
        raise LabError(f"service config {path}: [classroom] work is a path inside a home")
    return Classroom(Path(data["homes"]) if "homes" in data else None, work)
