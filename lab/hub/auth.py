"""JupyterHub's login for a class roster: the participant's id and the token the
instructor handed out (lab/hub/roster.py). Instructors log in as hub admins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Unicode

from lab.hub.roster import Accounts


class RosterAuthenticator(Authenticator):  # type: ignore[misc]
    state_dir = Unicode(help="the hub's state folder (accounts.json)").tag(config=True)

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        pid = (data.get("username") or "").strip().lower()
        account = Accounts(Path(self.state_dir)).check(pid, data.get("password") or "")
        if account is None:
            self.log.warning("login refused for %r from %s", pid[:40],
                             handler.request.remote_ip)
            return None
        return {"name": account.id, "admin": account.instructor}
