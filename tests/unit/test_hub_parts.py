"""The bootcamp server's parts that need no hub running: the roster and its accounts,
the generated JupyterHub configuration, the reachability check of the lab's files."""

from __future__ import annotations

import ast
import os
import tempfile
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.hub.config import HubSettings, config_text
from lab.hub.roster import UID_FIRST, Accounts, read_roster
from lab.hub.server import unreachable


def roster(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "class.csv"
    path.write_text(text)
    return path


def test_roster_reads_ids_names_and_roles(tmp_path: Path) -> None:
    path = roster(tmp_path, "id,name,role\nalice,Alice A\n\nbob,,participant\n"
                            "teach,T,instructor\n")
    assert read_roster(path) == [("alice", "Alice A", "participant"),
                                 ("bob", "bob", "participant"),
                                 ("teach", "T", "instructor")]


@pytest.mark.parametrize(("text", "message"), [
    ("Alice,A\n", "line 1: bad id 'Alice'"),
    ("al/../ice,A\n", "bad id"),
    ("1abc,A\n", "bad id"),
    ("a" * 33 + ",A\n", "bad id"),
    ("alice,A,root\n", "unknown role 'root'"),
    ("alice\n", "1 fields"),
    ("alice,A,instructor,x\n", "4 fields"),
    ("alice,A\nalice,B\n", "line 2: alice is listed twice"),
    ("id,name\n", "lists nobody"),
])
def test_malformed_rosters_are_refused_with_the_line(tmp_path: Path, text: str,
                                                      message: str) -> None:
    with pytest.raises(LabError, match=message.replace("(", r"\(")):
        read_roster(roster(tmp_path, text))


def test_a_missing_roster_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cannot read the roster"):
        read_roster(tmp_path / "nope.csv")


def test_accounts_keep_uids_and_tokens_across_syncs(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path)
    tokens = accounts.sync([("alice", "A", "participant"), ("bob", "B", "participant")])
    assert set(tokens) == {"alice", "bob"}
    assert oct(os.stat(tmp_path / "accounts.json").st_mode & 0o777) == "0o600"
    assert Accounts(tmp_path).check("alice", tokens["alice"]) is not None
    assert Accounts(tmp_path).check("alice", tokens["bob"]) is None
    assert Accounts(tmp_path).check("alice", "") is None
    assert Accounts(tmp_path).check("mallory", tokens["bob"]) is None
    uids = {a.id: a.uid for a in Accounts(tmp_path).accounts.values()}
    assert uids == {"alice": UID_FIRST, "bob": UID_FIRST + 1}
    # bob leaves, carol joins: alice keeps uid and token, carol does not get bob's uid
    # while alice's is taken, and no token is shown again for alice
    again = Accounts(tmp_path).sync([("alice", "A", "participant"),
                                     ("carol", "C", "instructor")])
    assert set(again) == {"carol"}
    accounts = Accounts(tmp_path)
    assert accounts.check("alice", tokens["alice"]) is not None
    assert accounts.get("bob") is None and accounts.get("carol").instructor
    assert accounts.get("carol").uid != UID_FIRST
    renewed = accounts.sync([("alice", "A", "participant")], new_tokens=True)
    assert Accounts(tmp_path).check("alice", tokens["alice"]) is None
    assert Accounts(tmp_path).check("alice", renewed["alice"]).uid == UID_FIRST


def test_only_a_hash_of_the_token_is_stored(tmp_path: Path) -> None:
    tokens = Accounts(tmp_path).sync([("alice", "A", "participant")])
    assert tokens["alice"] not in (tmp_path / "accounts.json").read_text()


def test_config_is_python_with_literal_values_only(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path)
    accounts.sync([("teach", "T", "instructor"), ("alice", "x\"); import os #", "participant")])
    text = config_text(HubSettings(tmp_path / "st\"ate", "127.0.0.1", 8123), accounts)
    tree = ast.parse(text)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert {ast.unparse(c.func) for c in calls} == {"get_config", "set"}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert 'c.JupyterHub.bind_url = "http://127.0.0.1:8123"' in text
    assert 'c.JupyterHub.hub_bind_url = "http://127.0.0.1:8124"' in text
    assert 'c.Authenticator.admin_users = set(["teach"])' in text
    assert "c.JupyterHub.cleanup_servers = True" in text


def test_unreachable_names_the_closed_folder() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as top:  # pytest's tmp_path is 0700
        base = Path(top)
        base.chmod(0o755)
        closed = base / "closed"
        (closed / "inner").mkdir(parents=True)
        closed.chmod(0o700)
        assert unreachable(closed / "inner") == closed
        closed.chmod(0o711)
        assert unreachable(closed / "inner") is None


def test_capacity_extrapolation_takes_the_tighter_bound() -> None:
    from lab.bench.capacity import Step, extrapolate

    steps = [Step(4, 30.0, 300.0, 0.05, 40.0, 20000)]
    small = extrapolate(steps, cores=2, memory_mb=24 * 1024)
    assert (small["by_cpu"], small["by_memory"], small["labs"]) == (28.0, 33.5, 28)
    big = extrapolate(steps, cores=32, memory_mb=128 * 1024)
    assert big["labs"] == int(min(big["by_cpu"], big["by_memory"]))


def test_the_hub_runs_the_lab_service_for_its_roster(tmp_path: Path) -> None:
    from lab.hub.labservice import socket_path, write_service_config
    from lab.service.config import load_config

    accounts = Accounts(tmp_path)
    accounts.sync([("teach", "T", "instructor"), ("alice", "A", "participant")])
    text = config_text(HubSettings(tmp_path, "127.0.0.1", 8123), accounts)
    assert str(socket_path(tmp_path)) in text and '"name": "lanalab-service"' in text
    config = load_config(write_service_config(tmp_path, accounts))
    teach, alice = accounts.get("teach"), accounts.get("alice")
    assert teach is not None and alice is not None
    assert config.is_instructor(teach.uid, teach.uid)
    assert not config.is_instructor(alice.uid, alice.uid)
    assert config.classroom.homes == tmp_path / "home"
    assert (socket_path(tmp_path).parent.stat().st_mode & 0o777) == 0o711


def test_a_pam_roster_takes_people_from_passwd_and_refuses_the_rest(tmp_path: Path) -> None:
    import pwd

    people = [p for p in pwd.getpwall() if 1000 <= p.pw_uid < UID_FIRST]
    accounts = Accounts(tmp_path)
    for name in ("root", "daemon", "nobody", "no-such-user-here"):
        with pytest.raises(LabError):
            accounts.sync_unix([(name, name, "participant")])
    assert not (tmp_path / "accounts.json").exists()  # refused before anything is saved
    if people:
        person = people[0]
        accounts.sync_unix([(person.pw_name, "P", "instructor")])
        account = Accounts(tmp_path).get(person.pw_name)
        assert account is not None and account.auth == "pam"
        assert (account.uid, account.group) == (person.pw_uid, person.pw_gid)
        assert Accounts(tmp_path).check(person.pw_name, "") is None  # no token login
        with pytest.raises(LabError, match="unix accounts"):
            Accounts(tmp_path).sync([("someone", "S", "participant")])


def test_a_token_roster_stays_a_token_roster(tmp_path: Path) -> None:
    Accounts(tmp_path).sync([("alice", "Alice", "participant")])
    with pytest.raises(LabError, match="log in with tokens"):
        Accounts(tmp_path).sync_unix([("root", "R", "participant")])
