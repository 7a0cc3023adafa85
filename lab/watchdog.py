"""The running lab's watchdog: notices a VM whose qemu died or whose kernel crashed.

The owner of a lab polls it every second. A kernel Oops, BUG or panic, or a qemu that
exited, makes the node failed: the trace is written to the lab's log folder (which outlives
the run folder), and the owner tears the rest of the lab down. A WARNING is logged but
does not end the lab: the kernel goes on running.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.errors import GuestKernelError
from lab.labrun import LabRun

LOG_BASE_ENV = "LANALAB_LOG_DIR"
DEFAULT_LOG_BASE = Path("/var/log/lanalab")


def log_base_dir() -> Path:
    return Path(os.environ.get(LOG_BASE_ENV, DEFAULT_LOG_BASE))


@dataclass(frozen=True)
class NodeEvent:
    vm: str
    fatal: bool
    headline: str
    trace: str
    at: float


def check_vms(lab: LabRun) -> list[NodeEvent]:
    """One look at every VM: what went wrong since the last look."""
    events = []
    for name, vm in lab.vms.items():
        try:
            vm.check_console()
        except GuestKernelError as exc:
            fatal = not exc.headline.startswith("WARNING")
            events.append(NodeEvent(name, fatal, exc.headline, exc.trace, time.time()))
            continue
        if not vm.running():
            events.append(NodeEvent(name, True, "qemu exited", vm.console_tail(), time.time()))
    return events


def keep_evidence(lab: LabRun, events: list[NodeEvent]) -> Path:
    """Save the events and every console log where `lanalab status` finds them later."""
    assert lab.run is not None
    folder = log_base_dir() / lab.run.id
    folder.mkdir(parents=True, exist_ok=True)
    if lab.run.meta().get("service"):
        folder.chmod(0o700)  # a service lab's consoles are its owner's business, not others'
    with (folder / "events.jsonl").open("a") as log:
        for event in events:
            log.write(json.dumps(asdict(event)) + "\n")
    for name, vm in lab.vms.items():
        console = Path(vm.describe()["console_log"])
        if console.exists():
            shutil.copyfile(console, folder / f"{name}.console.log")
    return folder


def last_failures(limit: int = 3) -> list[tuple[str, NodeEvent]]:
    """The most recent fatal events of labs that are gone, newest first."""
    base = log_base_dir()
    if not base.is_dir():
        return []
    found = []
    for events_file in base.glob("*/events.jsonl"):
        for line in events_file.read_text().splitlines():
            event = NodeEvent(**json.loads(line))
            if event.fatal:
                found.append((events_file.parent.name, event))
    found.sort(key=lambda item: item[1].at, reverse=True)
    return found[:limit]
