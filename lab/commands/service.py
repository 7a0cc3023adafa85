"""`lanalab service`: the privileged lab service (docs/service.md); `lanalab clean-own`."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import threading
import time
from pathlib import Path

from lab.errors import PrivilegeError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("service", help="run the lab service (root) for unprivileged users",
                       description="Run the lab service as root: it alone owns VMs, taps, "
                       "bridges and namespaces, and serves unprivileged `lanalab` clients "
                       "and notebooks over a unix socket, each user acting on their own "
                       "labs only, within quotas. At start it adopts the labs it made that "
                       "still run and cleans the others. See docs/service.md.")
    p.add_argument("--socket", type=Path, help="unix socket (default "
                   "/run/lanalab/service.sock, or [service] socket in --config)")
    p.add_argument("--config", type=Path, help="TOML file: instructors, quotas, limits")
    p.add_argument("--systemd-unit", action="store_true",
                   help="print a systemd unit that runs the service with these options, "
                   "and exit (redirect it into /etc/systemd/system/lanalab-service.service)")
    p.set_defaults(func=cmd_service)

    p = sub.add_parser("clean-own", help="tear down every lab of yours (through the service)")
    p.set_defaults(func=cmd_clean_own)


def _say(msg: str) -> None:
    print(f"[lanalab service {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cmd_service(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from lab.service.config import load_config
    from lab.service.recovery import recover
    from lab.service.server import LabServiceServer

    if args.systemd_unit:
        from lab.service.systemd import unit_text

        print(unit_text(args.socket and args.socket.resolve(),
                        args.config and args.config.resolve()), end="")
        return 0
    if os.geteuid() != 0:
        raise PrivilegeError("the lab service runs as root", "start it with sudo or systemd")
    config = load_config(args.config)
    if args.socket is not None:
        config = replace(config, socket=args.socket)
    workdir = config.socket.parent / "service.work"
    server = LabServiceServer(config, workdir)  # refuses if another service listens
    # root's scratch for submissions, topologies and captures; emptied at every start
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, mode=0o700)
    os.chdir(workdir)  # a topology name is never looked up relative to anybody's folder
    found = recover()
    for run_id, uid in found.adopted:
        _say(f"adopted lab {run_id} of uid {uid}")
    for run_id in found.cleaned:
        _say(f"cleaned lab {run_id} (its process had died)")
    for error in found.errors:
        _say(f"could not clean: {error}")

    def stop(_sig: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _say(f"listening on {config.socket} (refusals logged in {config.log})")
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        config.socket.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
        _say("stopped; labs keep running and are adopted at the next start")
    return 0


def cmd_clean_own(args: argparse.Namespace) -> int:
    from lab.service.cli_client import svc_clean_own

    return svc_clean_own(args)
