"""What every operation of the service shares: the caller, the service's state, argument
checking, and running a root `lanalab` command on a user's behalf."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.grading.buildas import BUILD_AS_ENV, BuildUser
from lab.runstate import RUN_META_ENV
from lab.service.config import ServiceConfig
from lab.vm.qemu_argv import SHARE_READONLY_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
Notify = Callable[..., None]


class BadArgs(LabError):
    """An operation's arguments are missing, unknown or of the wrong type."""


class Forbidden(LabError):
    """An operation (or option) only an instructor may use."""


@dataclass(frozen=True)
class Caller:
    uid: int
    gid: int
    pid: int
    instructor: bool


@dataclass
class ServiceState:
    config: ServiceConfig
    workdir: Path  # root's private scratch: submissions, topologies, captures
    starting: set[int] = field(default_factory=set)  # uids with a lab coming up
    lock: threading.Lock = field(default_factory=threading.Lock)


def take(op: str, args: dict[str, Any], spec: dict[str, type | tuple[type, ...]],
         required: tuple[str, ...] = ()) -> dict[str, Any]:
    """`args` checked against `spec` (name -> type); unknown or missing names refused."""
    unknown = set(args) - set(spec)
    if unknown:
        raise BadArgs(f"{op}: unknown argument(s) {', '.join(sorted(unknown))}",
                      f"{op} takes: {', '.join(sorted(spec)) or 'nothing'}")
    for name in required:
        if args.get(name) is None:
            raise BadArgs(f"{op}: argument {name!r} is required")
    for name, value in args.items():
        kind = spec[name]
        if value is not None and (not isinstance(value, kind) or
                                  (isinstance(value, bool) and kind is not bool)):
            raise BadArgs(f"{op}: argument {name!r} has the wrong type "
                          f"({type(value).__name__})")
    return args


def _die_with_service() -> None:
    """For a lab command's process: the kernel ends it if the service dies mid-way (its
    run record is then cleaned when the service starts again). A lab that made it into
    the background forked off first, so it outlives the service and is adopted."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_lanalab(state: ServiceState, argv: list[str], meta: dict[str, Any],
                timeout: float, build_as: BuildUser | None = None
                ) -> subprocess.CompletedProcess[str]:
    """Root `lanalab ARGV` whose run records carry `meta`, with the share read-only, and
    any C a grader compiles built as `build_as` (lab/grading/buildas.py)."""
    env = {**os.environ, RUN_META_ENV: json.dumps(meta), SHARE_READONLY_ENV: "1",
           "PYTHONPATH": str(REPO_ROOT)}
    env.pop(BUILD_AS_ENV, None)
    if build_as is not None:
        env[BUILD_AS_ENV] = build_as.env_value()
    try:
        return subprocess.run([sys.executable, "-m", "lab.cli", *argv], cwd=state.workdir,
                              env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, preexec_fn=_die_with_service,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`lanalab {argv[0]}` took longer than {timeout:g} s") from exc


def clip(text: str, limit: int) -> str:
    data = text.encode(errors="replace")
    if len(data) <= limit:
        return text
    return data[-limit:].decode(errors="replace")
