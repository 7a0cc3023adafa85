"""The bootcamp server for real accounts: a roster of this machine's unix accounts
(`lanalab serve --roster ... --pam`) logging in with their own passwords through PAM.
Two accounts are made for the test (and removed after): a participant whose group is not
their uid, and an instructor. Root, system accounts and unknown names are refused on the
roster; a wrong password is refused at login; the participant's server runs under their
own uid and group, in their own folder, and the lab service knows them by that uid."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hubrun import REPO, Hub, as_participant, processes_of, started_hub, stop_hub

from lab.polling import poll

pytestmark = [pytest.mark.root, pytest.mark.slow]

pytest.importorskip("jupyterhub", reason="the hub extra: pip install -e '.[hub]'")
pytest.importorskip("pamela", reason="JupyterHub's PAM binding (pamela)")

USERS_GROUP = 100  # Debian's "users": the participant's group differs from their uid
WAIT_S = 300.0  # a JupyterLab start on a loaded 2-core machine


def _useradd(name: str, *options: str) -> None:
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    *options, name], check=True, capture_output=True)


@pytest.fixture(scope="module")
def unix_accounts() -> Iterator[dict[str, str]]:
    """{name: password} of the two accounts made here, deleted again at the end (only
    these: their names carry this process's pid)."""
    made: list[str] = []
    tag = os.getpid() % 100000
    wanted = {f"lpam{tag}p": ("--gid", str(USERS_GROUP)), f"lpam{tag}t": ()}
    try:
        passwords = {}
        for name, options in wanted.items():
            try:
                pwd.getpwnam(name)
                pytest.skip(f"a unix account {name} exists already")
            except KeyError:
                pass
            _useradd(name, *options)
            made.append(name)
            passwords[name] = f"pw-{os.urandom(6).hex()}"
            subprocess.run(["chpasswd"], input=f"{name}:{passwords[name]}", text=True,
                           check=True, capture_output=True)
        yield passwords
    finally:
        for name in made:
            subprocess.run(["userdel", name], check=False, capture_output=True)


def _accounts_only(roster: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="lanalab-pam-") as folder:
        path = Path(folder, "roster.csv")
        path.write_text(roster)
        return subprocess.run([sys.executable, "-m", "lab.cli", "serve", "--state",
                               str(Path(folder, "state")), "--roster", str(path), "--pam",
                               "--accounts-only"], capture_output=True, text=True,
                              cwd=REPO, check=False)


@pytest.mark.parametrize(("name", "said"), [
    ("root", "uid 0: not a person's account"),
    ("daemon", "not a person's account"),
    ("nobody", "not a person's account"),
    ("no-such-user-here", "is not a unix account on this machine"),
])
def test_the_roster_refuses_accounts_that_are_not_people(name: str, said: str) -> None:
    proc = _accounts_only(f"id,name\n{name},Someone\n")
    assert proc.returncode != 0 and said in proc.stderr, proc.stderr


def test_a_pam_roster_cannot_take_tokens() -> None:
    proc = subprocess.run([sys.executable, "-m", "lab.cli", "serve", "--pam", "--new-tokens",
                           "--roster", "/dev/null", "--accounts-only"], capture_output=True,
                          text=True, cwd=REPO, check=False)
    assert proc.returncode != 0 and "--pam goes with --roster" in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def hub(unix_accounts: dict[str, str]) -> Iterator[Hub]:
    participant, instructor = unix_accounts
    roster = f"id,name,role\n{participant},Pat Am\n{instructor},Tea Cher,instructor\n"
    with started_hub(roster, "--pam") as hub:
        yield hub


def log_in(hub: Hub, name: str, password: str) -> tuple[requests.Session, requests.Response]:
    """The hub's login form, as a browser posts it (with the _xsrf cookie it was given)."""
    session = requests.Session()
    session.get(f"{hub.url}/hub/login", timeout=60)
    answer = session.post(f"{hub.url}/hub/login", timeout=WAIT_S,
                          data={"username": name, "password": password,
                                "_xsrf": session.cookies.get("_xsrf", "")})
    return session, answer


def ids_of(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
    gid = re.search(r"^Gid:\s+(\d+)", status, re.M)
    assert uid and gid
    return int(uid.group(1)), int(gid.group(1))


def test_a_wrong_password_is_refused(hub: Hub, unix_accounts: dict[str, str]) -> None:
    participant = next(iter(unix_accounts))
    _session, answer = log_in(hub, participant, "not-the-password")
    assert answer.status_code == 403, answer.status_code
    assert not processes_of({hub.uids[participant]})


def test_the_participant_works_under_their_own_uid_and_group(
        hub: Hub, unix_accounts: dict[str, str]) -> None:
    participant = next(iter(unix_accounts))
    uid = pwd.getpwnam(participant).pw_uid
    assert hub.uids[participant] == uid and hub.gids[participant] == USERS_GROUP
    _session, answer = log_in(hub, participant, unix_accounts[participant])
    assert answer.ok, (answer.status_code, hub.log.read_text()[-3000:])

    def server() -> list[str]:
        return [line for line in processes_of({uid}) if "jupyterhub-singleuser" in line]

    assert poll(lambda: bool(server()), WAIT_S, interval=1), hub.log.read_text()[-3000:]
    assert ids_of(int(server()[0].split()[1])) == (uid, USERS_GROUP)
    home = hub.state / "home" / participant
    found = home.stat()
    assert (found.st_uid, found.st_gid, found.st_mode & 0o777) == (uid, USERS_GROUP, 0o700)
    status = as_participant(hub, participant, "status")
    assert status.returncode == 0 and "you have no lab running" in status.stdout, status


def test_only_the_instructor_is_an_admin(hub: Hub, unix_accounts: dict[str, str]) -> None:
    participant, instructor = unix_accounts
    for name, allowed in ((instructor, True), (participant, False)):
        session, _answer = log_in(hub, name, unix_accounts[name])
        answer = session.get(f"{hub.url}/hub/api/users", timeout=60,
                             headers={"X-XSRFToken": session.cookies.get("_xsrf", "")})
        assert (answer.status_code == 200) == allowed, (name, answer.status_code)


def test_stopping_the_hub_ends_every_server(hub: Hub) -> None:
    uids = set(hub.uids.values())
    stop_hub(hub)
    assert poll(lambda: not processes_of(uids), 60, interval=0.5), processes_of(uids)
