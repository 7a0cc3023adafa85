"""qemu-guest-agent client over the unix socket qemu exposes for the virtio-serial port.

Division of labour: `GuestAgent` speaks the agent's line-delimited JSON protocol (one request,
one response, both newline-terminated) and nothing else. It resynchronises with
`guest-sync-delimited` (a 0xff byte each way flushes stale bytes, then a random id must come
back) whenever it (re)connects, so it copes with an agent that is not up yet, a guest that
rebooted, or a response left over from a timed-out request. Commands run with `guest-exec`
and captured output, polled through `guest-exec-status`; files move with guest-file-* in
chunks. One request at a time per agent (a lock), so threads may share one.
qemu serves one client per agent socket at a time, so unless `keep_open` the connection is
released once the agent has been idle for `idle_release` seconds (0: after each operation):
other processes (lanalab exec on a running lab) get their turn, and bursts of commands do
not pay a reconnect (~40 ms under TCG) each.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lab.errors import GuestAgentError, GuestCommandError, GuestTimeoutError

SYNC_ATTEMPT_S = 1.0  # per guest-sync try: the agent answers in ms once it is up
FILE_CHUNK = 48 * 1024  # raw bytes per guest-file-write/read (base64 adds a third)
POLL_MIN_S, POLL_MAX_S = 0.01, 0.2

_F = TypeVar("_F", bound=Callable[..., Any])


def _one_session(method: _F) -> _F:
    """Run an operation under the lock; release the socket afterwards unless keep_open."""

    @functools.wraps(method)
    def wrapper(self: GuestAgent, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._depth += 1
            try:
                return method(self, *args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0 and not self.keep_open:
                    self._release_when_idle()

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_code: int  # 128 + signal when the command was killed by a signal
    argv: tuple[str, ...] = ()
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""
    truncated: bool = False  # the agent dropped output beyond its capture limit (16 MiB)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self) -> ExecResult:
        """Return self when the command exited 0, else raise GuestCommandError."""
        if self.exit_code != 0:
            raise GuestCommandError(self.argv, self.exit_code, self.stderr)
        return self


class GuestAgent:
    """Client for one guest's agent socket. Connects lazily; reconnects after errors."""

    def __init__(self, socket_path: Path, name: str = "guest", keep_open: bool = False,
                 idle_release: float = 0.5) -> None:
        self.socket_path = Path(socket_path)
        self.name = name
        self.keep_open = keep_open
        self.idle_release = idle_release
        self._depth = 0
        self._idle_timer: threading.Timer | None = None
        self._sock: socket.socket | None = None
        self._buf = b""
        self._lock = threading.RLock()

    # ---- connection and framing -------------------------------------------------------

    def _release_when_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.idle_release <= 0:
            self.close()
            return
        self._idle_timer = threading.Timer(self.idle_release, self._release_if_idle)
        self._idle_timer.daemon = True
        self._idle_timer.start()

    def _release_if_idle(self) -> None:
        # non-blocking: if an operation holds the lock, it re-arms the timer when it ends
        if self._lock.acquire(blocking=False):
            try:
                if self._depth == 0 and not self.keep_open:
                    self.close()
            finally:
                self._lock.release()

    def close(self) -> None:
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            if self._sock is not None:
                self._sock.close()
            self._sock = None
            self._buf = b""

    def __enter__(self) -> GuestAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(self.socket_path))
            except OSError:
                sock.close()
                raise
            self._sock, self._buf = sock, b""
        return self._sock

    def _send(self, data: bytes) -> None:
        self._connect().sendall(data)

    def _read_until(self, marker: bytes, deadline: float) -> bytes:
        """Bytes up to and including `marker`; raises TimeoutError at the deadline."""
        sock = self._connect()
        while marker not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise TimeoutError from None
            if not chunk:
                raise ConnectionResetError("agent socket closed by qemu")
            self._buf += chunk
        head, _, self._buf = self._buf.partition(marker)
        return head + marker

    def _read_json(self, deadline: float) -> dict[str, Any]:
        while True:
            line = self._read_until(b"\n", deadline).strip(b"\xff \r\n")
            if not line:
                continue
            try:
                msg: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                continue  # noise left from a guest restart
            return msg

    def sync(self, timeout: float = SYNC_ATTEMPT_S) -> None:
        """One guest-sync-delimited round trip within `timeout`; raises GuestAgentError."""
        with self._lock:
            sync_id = random.randint(1, 2**31 - 1)
            deadline = time.monotonic() + timeout
            request = {"execute": "guest-sync-delimited", "arguments": {"id": sync_id}}
            try:
                self._send(b"\xff" + json.dumps(request).encode() + b"\n")
                while True:
                    self._read_until(b"\xff", deadline)  # drop everything before the marker
                    msg = self._read_json(deadline)
                    if msg.get("return") == sync_id:
                        return
            except (OSError, TimeoutError) as exc:
                self.close()
                raise GuestAgentError(
                    f"vm `{self.name}`: guest agent not answering on `{self.socket_path}` "
                    f"({type(exc).__name__}: {exc or 'no reply'})",
                    "wait until the VM is ready (QemuVM.wait_ready) or check the console log",
                ) from None

    def wait_until_up(self, timeout: float) -> float:
        """Sync repeatedly until the agent answers; returns seconds waited."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            try:
                self.sync(min(SYNC_ATTEMPT_S, max(0.05, deadline - time.monotonic())))
                return time.monotonic() - start
            except GuestAgentError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def request(self, command: str, arguments: dict[str, Any] | None = None,
                timeout: float = 30.0) -> Any:
        """Send one command; return its `return` value. Resyncs first if not connected."""
        with self._lock:
            if self._sock is None:
                self.sync(min(timeout, 5.0))
            payload: dict[str, Any] = {"execute": command}
            if arguments is not None:
                payload["arguments"] = arguments
            deadline = time.monotonic() + timeout
            try:
                self._send(json.dumps(payload).encode() + b"\n")
                msg = self._read_json(deadline)
            except (OSError, TimeoutError) as exc:
                self.close()  # the reply may still come: never reuse this stream
                raise GuestTimeoutError(
                    f"vm `{self.name}`: guest agent gave no reply to `{command}` within "
                    f"{timeout:.0f} s ({type(exc).__name__})",
                    "the guest may be hung or busy; look at its console log",
                ) from None
            if "error" in msg:
                err = msg["error"]
                raise GuestAgentError(
                    f"vm `{self.name}`: guest agent refused `{command}`: "
                    f"{err.get('desc', err)} ({err.get('class', '?')})")
            return msg.get("return")

    @_one_session
    def ping(self, timeout: float = 5.0) -> None:
        self.request("guest-ping", timeout=timeout)

    # ---- commands ---------------------------------------------------------------------

    @_one_session
    def exec(self, argv: Sequence[str], timeout: float = 60.0,
             input: bytes | None = None) -> ExecResult:
        """Run argv (no shell) in the guest and wait for it; raises GuestTimeoutError."""
        if not argv:
            raise ValueError("argv must not be empty")
        args: dict[str, Any] = {"path": argv[0], "arg": list(argv[1:]), "capture-output": True}
        if input is not None:
            args["input-data"] = base64.b64encode(input).decode()
        started = self.request("guest-exec", args, timeout=min(timeout, 30.0) + 5)
        pid = int(started["pid"])
        deadline = time.monotonic() + timeout
        delay = POLL_MIN_S
        while True:
            status = self.request("guest-exec-status", {"pid": pid}, timeout=30.0)
            if status.get("exited"):
                return _exec_result(argv, status)
            if time.monotonic() >= deadline:
                self._kill_quietly(pid)
                raise GuestTimeoutError(
                    f"vm `{self.name}`: guest command `{' '.join(argv)}` still running after "
                    f"{timeout:g} s (guest pid {pid}, now killed)",
                    "raise the timeout if the command is just slow, else look for a hang",
                )
            time.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX_S)

    def _kill_quietly(self, pid: int) -> None:
        with contextlib.suppress(GuestAgentError, GuestTimeoutError):
            self.request("guest-exec", {"path": "kill", "arg": ["-9", str(pid)]}, timeout=5)

    # ---- files ------------------------------------------------------------------------

    @_one_session
    def put_file(self, path: str, data: bytes, mode: str = "w") -> None:
        handle = self.request("guest-file-open", {"path": path, "mode": mode + "b"})
        try:
            for offset in range(0, len(data), FILE_CHUNK) or [0]:
                chunk = data[offset : offset + FILE_CHUNK]
                self.request("guest-file-write",
                             {"handle": handle, "buf-b64": base64.b64encode(chunk).decode()})
        finally:
            self.request("guest-file-close", {"handle": handle})

    @_one_session
    def get_file(self, path: str) -> bytes:
        handle = self.request("guest-file-open", {"path": path, "mode": "rb"})
        parts = []
        try:
            while True:
                got = self.request("guest-file-read", {"handle": handle, "count": FILE_CHUNK})
                parts.append(base64.b64decode(got.get("buf-b64", "")))
                if got.get("eof") or not got.get("count"):
                    break
        finally:
            self.request("guest-file-close", {"handle": handle})
        return b"".join(parts)

    # ---- power ------------------------------------------------------------------------

    def shutdown(self, mode: str = "powerdown") -> None:
        """Ask the guest to power off. The agent sends no reply on success."""
        with self._lock:
            if self._sock is None:
                self.sync(5.0)
            self._send(json.dumps({"execute": "guest-shutdown",
                                   "arguments": {"mode": mode}}).encode() + b"\n")
            self.close()


def _exec_result(argv: Sequence[str], status: dict[str, Any]) -> ExecResult:
    out = base64.b64decode(status.get("out-data", ""))
    err = base64.b64decode(status.get("err-data", ""))
    code = 128 + int(status["signal"]) if "signal" in status else int(status.get("exitcode", -1))
    return ExecResult(
        stdout=out.decode("utf-8", errors="replace"),
        stderr=err.decode("utf-8", errors="replace"),
        exit_code=code,
        argv=tuple(argv),
        stdout_bytes=out,
        stderr_bytes=err,
        truncated=bool(status.get("out-truncated") or status.get("err-truncated")),
    )
