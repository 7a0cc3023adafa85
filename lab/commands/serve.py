"""`lanalab serve`: the bootcamp server, JupyterHub for a class roster."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from lab.errors import LabError

PAM_DIR = Path("/etc/pam.d")

DESCRIPTION = """\
Run JupyterHub for a class on this machine. Participants log in with the id and token
from the roster's accounts, and each gets JupyterLab under a uid of their own, with their
own copy of the notebooks and exercises and the `lanalab` kernel. Instructors (role
`instructor` in the roster) are hub admins.

The roster is CSV, one person per line: id,name[,role]. The first time an id is seen it
gets an account and a token; tokens are printed once and written to TOKENS.csv in the
state folder (root's only). Hand each participant their token.

With --pam, the roster's ids are this machine's own unix accounts instead: they log in
with their own passwords (checked by PAM) and keep their own uids; no tokens are made.
Root and system accounts (uid below 1000) cannot be on such a roster."""

EXAMPLES = """\
examples:
  sudo lanalab serve --roster class.csv --accounts-only   # make accounts, print tokens
  sudo lanalab serve                                       # then serve on 127.0.0.1:8000
  sudo lanalab serve --ip 0.0.0.0 --port 8000              # reachable from the classroom
  sudo lanalab serve --roster staff.csv --pam              # unix accounts, own passwords
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="JupyterHub for a class (the bootcamp server)",
                       description=DESCRIPTION, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--roster", type=Path, help="class list (CSV id,name[,role]): new ids "
                   "get accounts, ids no longer listed lose theirs")
    p.add_argument("--new-tokens", action="store_true",
                   help="with --roster: give every account a new token (old ones stop "
                        "working)")
    p.add_argument("--pam", action="store_true",
                   help="with --roster: the ids are unix accounts of this machine, logging "
                        "in with their own passwords through PAM (no tokens)")
    p.add_argument("--pam-service", default="login", metavar="NAME",
                   help="the PAM service that checks passwords, /etc/pam.d/NAME "
                        "(default login)")
    p.add_argument("--accounts-only", action="store_true",
                   help="update the accounts, print new tokens and exit")
    p.add_argument("--state", type=Path, default=None,
                   help="state folder: accounts, participants' folders, the hub's database "
                        "(default /var/lib/lanalab/hub, or $LANALAB_HUB_DIR)")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(func=cmd_serve)


def _write_tokens(state: Path, tokens: dict[str, str]) -> Path:
    path = state / "TOKENS.csv"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "token"])
        writer.writerows(sorted(tokens.items()))
    return path


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from lab.hub.config import HubSettings
        from lab.hub.roster import Accounts, read_roster
        from lab.hub.server import DEFAULT_STATE, prepare_state, run_hub
    except ModuleNotFoundError as exc:
        raise LabError(f"the hub is not installed ({exc.name} is missing)",
                       f"{sys.executable} -m pip install -e '.[hub]' "
                       "(scripts/setup-host.sh does it)") from exc
    if os.geteuid() != 0:
        raise LabError("lanalab serve needs root: it starts each participant's server "
                       "under their own uid", "run it with sudo")
    state = (args.state or Path(os.environ.get("LANALAB_HUB_DIR") or DEFAULT_STATE)).resolve()
    prepare_state(state)
    if args.pam and (args.roster is None or args.new_tokens):
        raise LabError("--pam goes with --roster (and PAM accounts have no tokens)",
                       "lanalab serve --roster class.csv --pam")
    bad_name = "/" in args.pam_service or args.pam_service.startswith(".")
    if bad_name or (args.pam and not (PAM_DIR / args.pam_service).is_file()):
        raise LabError(f"no PAM service {args.pam_service!r} (no {PAM_DIR}/"
                       f"{args.pam_service})", "use --pam-service login, or name a file of "
                       f"{PAM_DIR}")
    if args.roster is not None and args.pam:
        accounts = Accounts(state)
        accounts.sync_unix(read_roster(args.roster))
        print(f"[serve] {len(accounts.accounts)} unix accounts on the roster; they log in "
              "with their own passwords")
    elif args.roster is not None:
        tokens = Accounts(state).sync(read_roster(args.roster), new_tokens=args.new_tokens)
        if tokens:
            path = _write_tokens(state, tokens)
            width = max(len(pid) for pid in tokens)
            for pid, token in sorted(tokens.items()):
                print(f"  {pid:<{width}}  {token}")
            print(f"[serve] {len(tokens)} new tokens (also in {path}, root's only)")
        else:
            print("[serve] accounts up to date; no new tokens")
    elif args.new_tokens:
        raise LabError("--new-tokens needs --roster", "pass the class list")
    if args.accounts_only:
        return 0
    run_hub(HubSettings(state, args.ip, args.port, pam_service=args.pam_service))
    return 0  # not reached: JupyterHub replaced this process
