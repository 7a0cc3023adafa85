"""Talking to the lab service: `ServiceClient` (one request per connection) and
`ServiceLab`, a handle on one of your labs for notebooks: `with client.up() as lab:
lab.sh("vm1", "fbctl list")` tears the lab down at the end."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.service import protocol
from lab.service.config import DEFAULT_SOCKET

SOCKET_ENV = "LANALAB_SERVICE_SOCKET"
Events = Callable[[dict[str, Any]], None]


class ServiceError(LabError):
    """The service refused a request or it failed; `code` says which kind (docs/service.md)."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


def default_socket() -> Path:
    return Path(os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET)


class ServiceClient:
    def __init__(self, socket_path: Path | str | None = None, timeout: float | None = None):
        self.socket_path = Path(socket_path) if socket_path else default_socket()
        self.timeout = timeout

    def request(self, op: str, args: dict[str, Any] | None = None,
                on_event: Events | None = None) -> dict[str, Any]:
        return self.send_raw(protocol.encode({"v": protocol.VERSION, "op": op,
                                              "args": args or {}}), on_event)

    def send_raw(self, frame: bytes, on_event: Events | None = None) -> dict[str, Any]:
        """Send bytes as they are (tests send malformed ones) and read up to the reply."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(str(self.socket_path))
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise ServiceError("unreachable", f"no lab service at {self.socket_path} "
                                   f"({exc.strerror})", "ask the machine's administrator to "
                                   "start it: `lanalab service` as root") from exc
            # refused early (too large, rate limit): the service hung up; its reply says why
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(frame)
            while True:
                reply = protocol.read_frame(sock, protocol.MAX_REPLY_BYTES)
                if "event" in reply:
                    if on_event:
                        on_event(reply)
                    continue
                if reply.get("ok"):
                    result: dict[str, Any] = reply.get("result", {})
                    return result
                err = reply.get("error") or {}
                raise ServiceError(str(err.get("code")), str(err.get("message")),
                                   err.get("hint"))
        finally:
            sock.close()

    # ---- operations ------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        return self.request("hello")

    def labs(self) -> list[dict[str, Any]]:
        return list(self.request("status")["labs"])

    def up(self, topology: str | None = None, *, toml: str | None = None,
           clock: str = "real", on_event: Events | None = None, **params: str) -> ServiceLab:
        args: dict[str, Any] = {"clock": clock, "params": {k: str(v) for k, v in params.items()}}
        if toml is not None:
            args["topology_toml"] = toml
        else:
            args["topology"] = topology or "default"
        return ServiceLab(self, self.request("up", args, on_event)["id"])

    def exec(self, run: str | None, node: str, argv: list[str], timeout: float = 120.0,
             input: bytes | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"run": run, "node": node, "argv": argv, "timeout": timeout}
        if input is not None:
            args["input"] = base64.b64encode(input).decode()
        return self.request("exec", args)

    def console(self, run: str | None, vm: str, offset: int = 0) -> dict[str, Any]:
        return self.request("console", {"run": run, "vm": vm, "offset": offset})

    def capture(self, run: str | None, where: str, out: Path, count: int = 1000,
                seconds: float = 10.0, bpf_filter: str = "",
                on_event: Events | None = None) -> dict[str, Any]:
        """Capture at `where`; the pcap is written to `out` by this process (your rights)."""
        result = self.request("capture", {"run": run, "where": where, "count": count,
                                          "seconds": seconds, "filter": bpf_filter}, on_event)
        out.write_bytes(base64.b64decode(result.pop("pcap")))
        return result

    def grade(self, exercise: str, submission: Path | bytes, *, run: str | None = None,
              student: str | None = None, hidden: bool = False,
              on_event: Events | None = None) -> dict[str, Any]:
        """Grade the folder `submission` (packed here as a tar; or tar bytes as they are)."""
        from lab.service.untar import pack

        data = submission if isinstance(submission, bytes) else pack(submission, 4 << 20)
        return self.request("grade", {"exercise": exercise, "run": run, "student": student,
                                      "hidden": hidden,
                                      "submission": base64.b64encode(data).decode()}, on_event)

    def grade_class(self, exercise: str, jobs: int = 1,
                    on_event: Events | None = None) -> dict[str, Any]:
        """Instructors: grade every participant's work folder for `exercise`."""
        return self.request("grade_class", {"exercise": exercise, "jobs": jobs}, on_event)

    def down(self, run: str | None = None) -> None:
        self.request("down", {"run": run})

    def clean_own(self) -> list[str]:
        return list(self.request("clean_own")["down"])


class ServiceLab:
    """One of your labs, reached through the service."""

    def __init__(self, client: ServiceClient, run_id: str) -> None:
        self.client, self.id = client, run_id

    def exec(self, node: str, argv: list[str], timeout: float = 120.0,
             input: bytes | None = None) -> dict[str, Any]:
        return self.client.exec(self.id, node, argv, timeout, input)

    def sh(self, node: str, command: str, timeout: float = 120.0) -> str:
        """Run a shell command on a node; LabError unless it exits 0 (like LabRun.sh)."""
        result = self.exec(node, ["sh", "-c", command], timeout)
        if result["exit_code"] != 0:
            raise LabError(f"{node}: `{command}` failed with exit code {result['exit_code']}: "
                           f"{result['stderr'].strip() or result['stdout'].strip()}")
        return str(result["stdout"])

    def console(self, vm: str) -> str:
        return str(self.client.console(self.id, vm)["text"])

    def status(self) -> dict[str, Any]:
        return dict(self.client.request("status", {"run": self.id})["labs"][0])

    def down(self) -> None:
        self.client.down(self.id)

    def __enter__(self) -> ServiceLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
