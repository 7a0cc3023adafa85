"""The lab service of a bootcamp server: JupyterHub starts it as one of its managed
services (and stops it with the hub), on a socket in the hub's state folder, with the
roster's instructors as its instructors. Participants' servers are told the socket, so
their notebooks' labs go through it under their uids."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lab.hub.roster import Accounts

WORK = "notebooks/work"  # in each participant's home: LANALAB_WORK_DIR (lab/hub/spawner.py)
SERVICE_DIR = "service"  # in the state folder: 0711, the socket 0666 (SO_PEERCRED decides)


def socket_path(state_dir: Path) -> Path:
    return state_dir / SERVICE_DIR / "service.sock"


def config_path(state_dir: Path) -> Path:
    return state_dir / SERVICE_DIR / "service.toml"


def write_service_config(state_dir: Path, accounts: Accounts) -> Path:
    """The service's configuration: its refusal log beside it, the instructors' uids, the
    participants' homes for grading the class; the quotas are the service's defaults."""
    folder = state_dir / SERVICE_DIR
    folder.mkdir(mode=0o711, exist_ok=True)
    folder.chmod(0o711)
    uids = sorted(a.uid for a in accounts.accounts.values() if a.instructor)
    path = config_path(state_dir)
    path.write_text("# written by `lanalab serve` at each start\n"
                    f"[service]\nlog = {json.dumps(str(folder / 'refusals.jsonl'))}\n"
                    f"[instructors]\nuids = {json.dumps(uids)}\n"
                    f"[classroom]\nhomes = {json.dumps(str(state_dir / 'home'))}\n"
                    f"work = {json.dumps(WORK)}\n")
    path.chmod(0o600)
    return path


def managed_service(state_dir: Path) -> dict[str, Any]:
    """JupyterHub's entry for it (c.JupyterHub.services): a command the hub runs as root,
    restarts if it dies, and ends when the hub ends."""
    return {"name": "lanalab-service",
            "command": [sys.executable, "-m", "lab.cli", "service",
                        "--socket", str(socket_path(state_dir)),
                        "--config", str(config_path(state_dir))]}
