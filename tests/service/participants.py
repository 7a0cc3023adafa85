"""A lab service under test (a real root process on a private socket and run folder),
and participants: `lanalab` or Python run under arbitrary uids with setpriv."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.polling import poll

REPO_ROOT = Path(__file__).resolve().parents[2]
ALICE, BOB, TEACHER = 42001, 42002, 42003  # no accounts needed: SO_PEERCRED gives the uid
CONFIG = """\
[service]
log = "{log}"
[instructors]
uids = [{teacher}]
[quota]
max_labs = 2
max_vms = 2
max_memory_mb = 2048
[limits]
rate_per_second = 5
rate_burst = 20
"""


@dataclass
class Service:
    folder: Path
    socket: Path
    log: Path
    config: Path
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> str:
        """Start the service; return its start-up output once it listens."""
        out = self.folder / f"service-{time.monotonic_ns()}.log"
        with open(out, "w") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lab.cli", "service", "--socket", str(self.socket),
                 "--config", str(self.config)], env=self.env, cwd=REPO_ROOT,
                stdout=log, stderr=subprocess.STDOUT, text=True)
        proc = self.proc
        poll(lambda: "listening on" in out.read_text() or proc.poll() is not None,
             timeout, interval=0.05)
        if "listening on" not in out.read_text():
            pytest.fail(f"the service did not start:\n{out.read_text()}")
        return out.read_text()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def refusals(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def lanalab(self, uid: int, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """`lanalab ARGV` as `uid` (its own gid, no groups): the client side, unprivileged."""
        return subprocess.run(
            [*as_uid(uid), sys.executable, "-m", "lab.cli", "--socket", str(self.socket),
             *argv], capture_output=True, text=True, timeout=timeout, env=user_env(),
            cwd=self.folder)

    def python(self, uid: int, code: str, timeout: float = 300) -> Any:
        """Run Python `code` as `uid` with `client` (a ServiceClient) and `sock` defined;
        it prints one JSON value, returned here."""
        prelude = ("import json, sys\nfrom lab.service.client import ServiceClient, "
                   f"ServiceError\nsock = {str(self.socket)!r}\nclient = ServiceClient(sock)\n")
        proc = subprocess.run([*as_uid(uid), sys.executable, "-c", prelude + code],
                              capture_output=True, text=True, timeout=timeout,
                              env=user_env(), cwd=self.folder)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])


def as_uid(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def user_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONPATH": str(REPO_ROOT),
            "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8"}
