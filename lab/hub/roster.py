"""A class roster and its accounts.

The instructor's roster is CSV, one participant per line: `id,name[,role]` (role
`participant`, the default, or `instructor`; a header line `id,...` is skipped). Each
account gets a unix uid of its own from a range no system account uses (participants need
no entry in /etc/passwd: the service and the file system tell them apart by uid alone) and
a login token. Only a hash of the token is kept (scrypt); the token itself is shown once,
to the instructor, when the account is made.

With PAM (`lanalab serve --roster class.csv --pam`), the roster's ids are the machine's own
unix accounts instead: each keeps its uid and group from /etc/passwd, logs in with its own
password through PAM, and gets no token. The roster still decides who is in the class and
who teaches it; root and system accounts are refused.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
import pwd
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.errors import LabError

ID_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
ROLES = ("participant", "instructor")
UID_FIRST = 62000  # above Debian's dynamic range (1000-59999), below nobody (65534)
UID_LAST = 62999
FIRST_USER_UID = 1000  # Debian's first uid for people; below it are system accounts
ACCOUNTS_FILE = "accounts.json"


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    role: str
    uid: int
    salt: str
    token_hash: str
    auth: str = "token"  # or "pam": the unix account's own password
    gid: int | None = None  # a PAM account's group; a token account's gid is its uid

    @property
    def instructor(self) -> bool:
        return self.role == "instructor"

    @property
    def group(self) -> int:
        return self.uid if self.gid is None else self.gid


def _hash(token: str, salt: str) -> str:
    return hashlib.scrypt(token.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1,
                          dklen=32).hex()


def read_roster(path: Path) -> list[tuple[str, str, str]]:
    """(id, name, role) per line; a clear error naming the line for anything malformed."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise LabError(f"cannot read the roster {path}: {exc.strerror}",
                       "pass a CSV file with lines id,name[,role]") from exc
    entries: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or (number == 1 and row[0].strip() == "id"):
            continue
        where = f"{path}, line {number}"
        if len(row) not in (2, 3):
            raise LabError(f"{where}: {len(row)} fields", "each line is id,name[,role]")
        pid, name = row[0].strip(), row[1].strip()
        role = row[2].strip() if len(row) == 3 else "participant"
        if not ID_RE.match(pid):
            raise LabError(f"{where}: bad id {pid!r}",
                           "an id is 1-32 lower-case letters, digits, '-' or '_', "
                           "starting with a letter")
        if role not in ROLES:
            raise LabError(f"{where}: unknown role {role!r}", "use participant or instructor")
        if pid in seen:
            raise LabError(f"{where}: {pid} is listed twice", "each id once")
        seen.add(pid)
        entries.append((pid, name or pid, role))
    if not entries:
        raise LabError(f"the roster {path} lists nobody", "add lines id,name[,role]")
    return entries


class Accounts:
    """accounts.json in the hub's state folder (root's, mode 0600)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / ACCOUNTS_FILE
        self.accounts: dict[str, Account] = {}
        if self.path.is_file():
            data = json.loads(self.path.read_text())
            self.accounts = {a["id"]: Account(**a) for a in data["accounts"]}

    def get(self, pid: str) -> Account | None:
        return self.accounts.get(pid)

    def check(self, pid: str, token: str) -> Account | None:
        """The account if `token` is its token (constant-time compare), else None."""
        account = self.accounts.get(pid)
        if account is None or account.auth != "token" or not token:
            return None
        good = hmac.compare_digest(_hash(token, account.salt), account.token_hash)
        return account if good else None

    def by_uid(self) -> dict[int, Account]:
        return {a.uid: a for a in self.accounts.values()}

    def sync(self, roster: list[tuple[str, str, str]], new_tokens: bool = False
             ) -> dict[str, str]:
        """Make accounts for the roster's new ids (and new tokens for all with
        `new_tokens`); ids no longer listed are dropped. Returns {id: token} for every
        account that got a token now."""
        if any(a.auth != "token" for a in self.accounts.values()):
            raise LabError("this hub's accounts are unix accounts (PAM)",
                           "keep --pam with --roster, or start a new --state folder")
        listed = {pid for pid, _n, _r in roster}
        kept = {pid: a for pid, a in self.accounts.items() if pid in listed}
        used = {a.uid for a in kept.values()}
        free = (uid for uid in range(UID_FIRST, UID_LAST + 1) if uid not in used)
        tokens: dict[str, str] = {}
        for pid, name, role in roster:
            old = kept.get(pid)
            if old is not None and not new_tokens:
                kept[pid] = Account(pid, name, role, old.uid, old.salt, old.token_hash)
                continue
            uid = old.uid if old is not None else next(free, None)
            if uid is None:
                raise LabError(f"more than {UID_LAST - UID_FIRST + 1} accounts",
                               "split the class over two servers")
            token, salt = secrets.token_urlsafe(12), secrets.token_hex(16)
            kept[pid] = Account(pid, name, role, uid, salt, _hash(token, salt))
            tokens[pid] = token
        self.accounts = kept
        self.save()
        return tokens

    def sync_unix(self, roster: list[tuple[str, str, str]]) -> None:
        """The roster's ids as the machine's unix accounts (PAM login), every one checked
        before anything is saved; ids no longer listed are dropped."""
        if any(a.auth != "pam" for a in self.accounts.values()):
            raise LabError("this hub's accounts log in with tokens",
                           "drop --pam, or start a new --state folder for PAM accounts")
        self.accounts = {pid: unix_account(pid, name, role) for pid, name, role in roster}
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"version": 1,
                       "accounts": [asdict(a) for a in self.accounts.values()]}, f, indent=1)
        tmp.replace(self.path)


def unix_account(pid: str, name: str, role: str) -> Account:
    """The account of the unix user `pid`, refused for root, system accounts and the lab's
    own uid range (the service tells people apart by uid alone)."""
    try:
        entry = pwd.getpwnam(pid)
    except KeyError:
        raise LabError(f"{pid} is not a unix account on this machine",
                       f"create it (adduser {pid}), or drop --pam to use tokens") from None
    if entry.pw_uid < FIRST_USER_UID or UID_FIRST <= entry.pw_uid <= UID_LAST \
            or entry.pw_uid >= 65534:
        raise LabError(f"{pid} has uid {entry.pw_uid}: not a person's account",
                       f"PAM logins are for people's accounts (uid {FIRST_USER_UID}-"
                       f"{UID_FIRST - 1}); root and system accounts cannot join a class")
    return Account(pid, name, role, entry.pw_uid, "", "", auth="pam", gid=entry.pw_gid)
