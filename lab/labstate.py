"""Labs as other `lanalab` processes see them: the lab.json files in the run folders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.labrun import STATE_FILE
from lab.runstate import RunRecord, run_base_dir


@dataclass(frozen=True)
class ActiveLab:
    dir: Path
    state: dict

    @property
    def id(self) -> str:
        return str(self.state["id"])

    @property
    def owner_pid(self) -> int:
        return int(self.state["owner_pid"])

    def owner_alive(self) -> bool:
        return RunRecord(self.id, self.dir).owner_alive()

    def agent(self, vm: str):  # -> lab.vm.qga.GuestAgent
        from lab.vm.backends import agent_for

        return agent_for(self.state["vms"][vm])


def list_labs() -> list[ActiveLab]:
    base = run_base_dir()
    if not base.is_dir():
        return []
    labs = []
    for path in sorted(base.glob(f"*/{STATE_FILE}")):
        try:
            labs.append(ActiveLab(path.parent, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue  # a run folder being written or removed right now
    return labs


def find_lab(run_id: str | None) -> ActiveLab:
    labs = list_labs()
    if run_id is not None:
        for lab in labs:
            if lab.id == run_id:
                return lab
        raise LabError(f"no lab with run id {run_id!r}",
                       hint="`lanalab status` lists the running labs")
    if not labs:
        raise LabError("no lab is running", hint="start one with `lanalab up`")
    if len(labs) > 1:
        raise LabError(f"{len(labs)} labs are running",
                       hint=f"choose one with --run: {', '.join(lab.id for lab in labs)}")
    return labs[0]
