"""Bringing the hub up: the state folder, the accounts, the proxy, the config, then
JupyterHub itself in place of this process (so signals reach it and it stops the proxy
and every participant's server when it ends)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from lab.errors import LabError
from lab.hub import workspace
from lab.hub.config import HubSettings, write_config
from lab.hub.labservice import socket_path, write_service_config
from lab.hub.proxy import ensure_proxy
from lab.hub.roster import Accounts

DEFAULT_STATE = Path("/var/lib/lanalab/hub")


def unreachable(path: Path) -> Path | None:
    """The first folder on the way to `path` that others cannot enter, or None.
    Participants run the lab's own Python and read its code as their own uid."""
    for folder in [*reversed(path.resolve().parents), path.resolve()]:
        mode = folder.stat().st_mode
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return folder
    return None


def check_reachable() -> None:
    for path in (Path(sys.executable), workspace.REPO_ROOT / "lab"):
        blocked = unreachable(path)
        if blocked is not None:
            raise LabError(f"participants cannot reach {path}: {blocked} is closed to "
                           "other users", f"chmod o+x {blocked}, or clone the lab into a "
                           "folder everybody can enter (e.g. /opt/lanalab)")


def quiet_jupyterlab() -> None:
    """No "get notified about Jupyter news?" prompt for every participant, and every cell
    of a notebook kept on the page (JupyterLab 4 otherwise drops cells scrolled out of
    view, and with them what the browser's find and screen readers see): defaults in
    JupyterLab's settings overrides (the lab's own Python environment)."""
    folder = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "overrides.json"
    overrides = json.loads(path.read_text()) if path.is_file() else {}
    overrides.setdefault("@jupyterlab/apputils-extension:notification", {})["fetchNews"] = \
        "false"
    overrides.setdefault("@jupyterlab/notebook-extension:tracker", {})["windowingMode"] = \
        "none"
    path.write_text(json.dumps(overrides, indent=1) + "\n")


def prepare_state(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o711)  # participants reach home/<id> only


def run_hub(settings: HubSettings) -> None:
    if os.geteuid() != 0:
        raise LabError("the hub starts participants' servers under their own uids: it "
                       "needs root", "run `sudo lanalab serve ...`")
    check_reachable()
    accounts = Accounts(settings.state_dir)
    if not accounts.accounts:
        raise LabError(f"no accounts in {settings.state_dir}",
                       "pass the class list once: lanalab serve --roster class.csv")
    from lab.notebook.kernelspec import ensure_kernel_spec

    ensure_kernel_spec()
    quiet_jupyterlab()
    proxy = ensure_proxy()
    write_service_config(settings.state_dir, accounts)
    config = write_config(HubSettings(settings.state_dir, settings.ip, settings.port, proxy,
                                      settings.pam_service), accounts)
    print(f"[serve] JupyterHub on http://{settings.ip}:{settings.port}/ for "
          f"{len(accounts.accounts)} accounts (state: {settings.state_dir}), their labs "
          f"through the lab service on {socket_path(settings.state_dir)}; "
          "Ctrl-C stops it and every participant's server", flush=True)
    argv = [sys.executable, "-m", "jupyterhub", "-f", str(config)]
    os.chdir(settings.state_dir)
    os.execv(argv[0], argv)
