"""JupyterHub's spawner for a class roster: each participant's JupyterLab runs under the
participant's own uid (no /etc/passwd entry needed), in their own folder, with the lab's
Python and its `lanalab` kernel. The lab service (`lanalab service`) tells participants
apart by that uid."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Unicode

from lab.hub import workspace
from lab.hub.labservice import WORK, socket_path
from lab.hub.roster import Account, Accounts


def drop_to(account: Account, home: Path) -> Callable[[], None]:
    """What the child runs before exec: no supplementary groups, the participant's uid
    and group, their folder as the working directory."""
    def preexec() -> None:
        os.setgroups([])
        os.setgid(account.group)
        os.setuid(account.uid)
        os.chdir(home)
        os.umask(0o077)
    return preexec


class RosterSpawner(LocalProcessSpawner):  # type: ignore[misc]
    state_dir = Unicode(help="the hub's state folder (accounts.json, home/)").tag(config=True)

    def _account(self) -> Account:
        account = Accounts(Path(self.state_dir)).get(self.user.name)
        if account is None:  # removed from the roster after logging in
            raise RuntimeError(f"{self.user.name} is not on the roster any more")
        return account

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        account = self._account()
        return drop_to(account, workspace.home_of(Path(self.state_dir), account))

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        account = self._account()
        home = workspace.home_of(Path(self.state_dir), account)
        env.update(USER=account.id, LOGNAME=account.id, HOME=str(home), SHELL="/bin/bash",
                   LANALAB_WORK_DIR=str(home / WORK),
                   LANALAB_SERVICE_SOCKET=str(socket_path(Path(self.state_dir))))
        return env

    async def start(self) -> Any:
        home = workspace.prepare(Path(self.state_dir), self._account())
        self.notebook_dir = str(home)
        return await super().start()
