"""The hub's configuration file, written into its state folder at every start."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from lab.hub.labservice import managed_service
from lab.hub.roster import Accounts

CONFIG_FILE = "jupyterhub_config.py"


@dataclass(frozen=True)
class HubSettings:
    state_dir: Path
    ip: str = "127.0.0.1"
    port: int = 8000
    proxy: Path = Path("configurable-http-proxy")
    pam_service: str = "login"  # for rosters of unix accounts (lanalab serve --pam)


def config_text(settings: HubSettings, accounts: Accounts) -> str:
    """Python for JupyterHub to load: every value is a JSON literal (no user text is
    pasted into code)."""
    state = settings.state_dir
    singleuser = Path(sys.executable).with_name("jupyterhub-singleuser")
    admins = sorted(a.id for a in accounts.accounts.values() if a.instructor)
    values = {
        "JupyterHub.bind_url": f"http://{settings.ip}:{settings.port}",
        # the hub's own API and the proxy's: this machine only, on the next two ports
        "JupyterHub.hub_bind_url": f"http://127.0.0.1:{settings.port + 1}",
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{settings.port + 2}",
        "JupyterHub.authenticator_class": "lab.hub.auth.RosterAuthenticator",
        "JupyterHub.spawner_class": "lab.hub.spawner.RosterSpawner",
        "JupyterHub.db_url": f"sqlite:///{state / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(state / "jupyterhub_cookie_secret"),
        "JupyterHub.cleanup_servers": True,
        "JupyterHub.cleanup_proxy": True,
        "ConfigurableHTTPProxy.command": [str(settings.proxy)],
        "ConfigurableHTTPProxy.pid_file": str(state / "proxy.pid"),
        "RosterAuthenticator.state_dir": str(state),
        "RosterAuthenticator.pam_service": settings.pam_service,
        "RosterSpawner.state_dir": str(state),
        "Authenticator.allow_all": True,  # the roster decides: unknown ids cannot log in
        "Authenticator.admin_users": admins,
        "Spawner.cmd": [str(singleuser)],
        "Spawner.default_url": "/lab",
        "Spawner.start_timeout": 180,  # a loaded 2-core machine under TCG is slow
        "Spawner.http_timeout": 180,
        "Spawner.args": ["--MultiKernelManager.default_kernel_name=lanalab"],
        # the lab service, started and stopped with the hub: participants' labs
        "JupyterHub.services": [managed_service(state)],
    }
    lines = ["# written by `lanalab serve` at each start: edit lab/hub/config.py instead",
             "c = get_config()  # noqa: F821"]
    for key, value in values.items():
        section, name = key.split(".")
        if name == "admin_users":
            lines.append(f"c.{section}.{name} = set({json.dumps(value)})")
        else:
            lines.append(f"c.{section}.{name} = {json.dumps(value)}")
    text = "\n".join(lines) + "\n"
    return text.replace(" true\n", " True\n").replace(" false\n", " False\n")


def write_config(settings: HubSettings, accounts: Accounts) -> Path:
    path = settings.state_dir / CONFIG_FILE
    path.write_text(config_text(settings, accounts))
    return path
