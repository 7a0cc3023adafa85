"""The service process: a threaded unix-socket server that admits each caller by
SO_PEERCRED and the per-uid limits, reads one bounded request, runs its operation with
the caller's rights over labs, and logs every refusal."""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import stat
import struct
import sys
import traceback
from pathlib import Path
from typing import Any

from lab.errors import LabError, TopologyError
from lab.service import protocol
from lab.service.audit import RefusalLog
from lab.service.config import ServiceConfig
from lab.service.core import BadArgs, Caller, Forbidden, ServiceState
from lab.service.ops_class import op_grade_class
from lab.service.ops_grade import op_grade
from lab.service.ops_labs import op_clean_own, op_down, op_hello, op_status, op_up
from lab.service.ops_nodes import op_capture, op_console, op_exec
from lab.service.ownership import NotYours
from lab.service.quota import QuotaExceeded
from lab.service.ratelimit import Admission
from lab.service.untar import SubmissionError

OPERATIONS = {"hello": op_hello, "status": op_status, "up": op_up, "down": op_down,
              "exec": op_exec, "console": op_console, "capture": op_capture,
              "grade": op_grade, "grade_class": op_grade_class, "clean_own": op_clean_own}
CODES: list[tuple[type[LabError], str]] = [
    (NotYours, "not_yours"), (QuotaExceeded, "quota"), (SubmissionError, "submission"),
    (BadArgs, "bad_args"), (TopologyError, "bad_args"), (Forbidden, "forbidden")]


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end, as the kernel saw it connect."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", creds)
    return pid, uid, gid


class _Handler(socketserver.BaseRequestHandler):
    server: LabServiceServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        pid, uid, gid = peer_credentials(sock)
        srv = self.server
        op: str | None = None
        frame: object = None
        reason = srv.admission.admit(uid)
        if reason is not None:
            self._refuse(sock, uid, pid, None, "rate_limited", reason,
                         "wait a moment and send fewer requests at once")
            return
        try:
            sock.settimeout(srv.state.config.limits.read_timeout_s)
            try:
                frame = protocol.read_frame(sock, srv.state.config.limits.max_request_bytes)
                op, args = protocol.check_request(frame)
            except protocol.ProtocolError as exc:
                named = frame.get("op") if isinstance(frame, dict) else None
                self._refuse(sock, uid, pid, str(named)[:64] if named is not None else None,
                             exc.code, exc.message, exc.hint)
                return
            except (TimeoutError, OSError) as exc:
                srv.log.refused(uid, pid, None, "truncated", f"no complete request: {exc}")
                return
            sock.settimeout(None)
            caller = Caller(uid, gid, pid, srv.state.config.is_instructor(uid, gid))
            self._run(sock, caller, op, args)
        finally:
            srv.admission.done(uid)

    def _run(self, sock: socket.socket, caller: Caller, op: str, args: dict[str, Any]) -> None:
        def notify(name: str, **fields: Any) -> None:
            _send(sock, protocol.event(name, **fields))

        try:
            result = OPERATIONS[op](self.server.state, caller, args, notify)
        except LabError as exc:
            code = next((c for kind, c in CODES if isinstance(exc, kind)), "failed")
            extra = {"run": args.get("run")} if isinstance(args.get("run"), str) else {}
            self._refuse(sock, caller.uid, caller.pid, op, code, exc.message, exc.hint,
                         **extra)
            return
        except Exception as exc:  # noqa: BLE001 - the service must answer and go on
            traceback.print_exc(file=sys.stderr)
            self._refuse(sock, caller.uid, caller.pid, op, "internal",
                         f"internal error: {type(exc).__name__}: {exc}", None)
            return
        _send(sock, protocol.ok(result))

    def _refuse(self, sock: socket.socket, uid: int, pid: int, op: str | None, code: str,
                message: str, hint: str | None, **extra: Any) -> None:
        self.server.log.refused(uid, pid, op, code, message, **extra)
        _send(sock, protocol.error(code, message, hint))


def _send(sock: socket.socket, obj: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the client went away; its request is done anyway
        sock.sendall(protocol.encode(obj))


class LabServiceServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 128  # a burst of clients waits in the backlog, not refused

    def __init__(self, config: ServiceConfig, workdir: Path) -> None:
        self.state = ServiceState(config, workdir)
        self.log = RefusalLog(config.log)
        lim = config.limits
        self.admission = Admission(lim.rate_per_second, lim.rate_burst,
                                   lim.max_inflight_per_uid)
        _prepare_socket(config.socket)
        super().__init__(str(config.socket), _Handler)
        os.chmod(config.socket, 0o666)  # anyone may connect; SO_PEERCRED says who


def _prepare_socket(path: Path) -> None:
    """The socket's folder traversable by all (0711: not listable, run folders stay 0700);
    a stale socket removed only if nothing answers on it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o711)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise LabError(f"{path} exists and is not a socket", "remove it or pick --socket")
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # left by a service that was killed
        else:
            raise LabError(f"a lab service already listens on {path}",
                           "stop it first, or give this one another --socket")
        finally:
            probe.close()
