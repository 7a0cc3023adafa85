"""JupyterHub's login for a class roster: the participant's id and the token the
instructor handed out (lab/hub/roster.py), or, for a roster of unix accounts, the
account's own password checked by PAM. Instructors log in as hub admins."""

from __future__ import annotations

import asyncio
import pwd
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Unicode

from lab.hub.roster import Account, Accounts


def pam_accepts(account: Account, password: str, service: str) -> bool:
    """PAM's answer for the account's password, and the account still the one on the
    roster (a unix account deleted and made again may have another uid)."""
    import pamela

    try:
        if pwd.getpwnam(account.id).pw_uid != account.uid:
            return False
        pamela.authenticate(account.id, password, service=service)
    except (KeyError, pamela.PAMError):
        return False
    return True


class RosterAuthenticator(Authenticator):  # type: ignore[misc]
    state_dir = Unicode(help="the hub's state folder (accounts.json)").tag(config=True)
    pam_service = Unicode("login", help="the PAM service that checks unix accounts' "
                          "passwords (/etc/pam.d/<name>)").tag(config=True)

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        pid = (data.get("username") or "").strip().lower()
        password = data.get("password") or ""
        accounts = Accounts(Path(self.state_dir))
        account = accounts.get(pid)
        if account is not None and account.auth == "pam":
            # PAM blocks (and delays failures on purpose): keep the hub's loop free
            good = password != "" and await asyncio.get_running_loop().run_in_executor(
                None, pam_accepts, account, password, self.pam_service)
        else:
            good = accounts.check(pid, password) is not None
        if account is None or not good:
            self.log.warning("login refused for %r from %s", pid[:40],
                             handler.request.remote_ip)
            return None
        return {"name": account.id, "admin": account.instructor}
