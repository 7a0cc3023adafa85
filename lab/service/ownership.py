"""Which labs are whose. A lab the service brings up carries, in its run record's metadata
(run.json), {"service": true, "owner_uid": UID, "vms": N, "memory_mb": M}; a lab without
it (root's own `lanalab up`) belongs to root. Nobody but an instructor sees or acts on a
lab that is not theirs, and a lab that does not exist looks the same as somebody else's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.runstate import RunRecord, list_runs, run_base_dir


class NotYours(LabError):
    """A lab the caller may not see or touch (or that does not exist)."""


@dataclass(frozen=True)
class OwnedLab:
    run_id: str
    folder: Path
    meta: dict[str, Any]
    alive: bool

    @property
    def owner_uid(self) -> int:
        uid = self.meta.get("owner_uid", 0)
        return uid if isinstance(uid, int) else 0

    @property
    def from_service(self) -> bool:
        return self.meta.get("service") is True

    @property
    def vms(self) -> int:
        return int(self.meta.get("vms", 0))

    @property
    def memory_mb(self) -> int:
        return int(self.meta.get("memory_mb", 0))


def all_labs(base: Path | None = None) -> list[OwnedLab]:
    return [OwnedLab(r.run_id, r.folder, RunRecord(r.run_id, r.folder).meta(), r.alive)
            for r in list_runs(base or run_base_dir())]


def visible_labs(uid: int, instructor: bool, base: Path | None = None) -> list[OwnedLab]:
    return [lab for lab in all_labs(base) if instructor or lab.owner_uid == uid]


def find_visible(uid: int, instructor: bool, run_id: str | None,
                 base: Path | None = None) -> OwnedLab:
    """The caller's lab `run_id` (or their only lab), else NotYours with a clear hint."""
    labs = visible_labs(uid, instructor, base)
    if run_id is not None:  # a named lab may be dead (its leftovers can be taken down)
        for lab in labs:
            if lab.run_id == run_id:
                return lab
        raise NotYours(f"lab {run_id!r} is not one of your labs",
                       "`lanalab status` lists your labs; you can act on your own only")
    labs = [lab for lab in labs if lab.alive]
    if not labs:
        raise NotYours("you have no running lab", "start one with `lanalab up`")
    if len(labs) > 1:
        raise NotYours(f"you have {len(labs)} labs running",
                       f"choose one with --run: {', '.join(lab.run_id for lab in labs)}")
    return labs[0]
