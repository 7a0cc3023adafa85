"""Minimal QMP client: enough to ask qemu to quit or to query its status.

Division of labour: one short-lived connection per command (greeting, qmp_capabilities,
the command, its reply); events that arrive in between are skipped.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from lab.errors import BackendError


def qmp_command(path: Path, command: str, arguments: dict[str, Any] | None = None,
                timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            reader = sock.makefile("rb")
            _expect(reader, "QMP", deadline)
            sock.sendall(b'{"execute": "qmp_capabilities"}\n')
            _expect(reader, "return", deadline)
            payload: dict[str, Any] = {"execute": command}
            if arguments:
                payload["arguments"] = arguments
            sock.sendall(json.dumps(payload).encode() + b"\n")
            try:
                return _expect(reader, "return", deadline)
            except ConnectionError:
                if command == "quit":
                    return {}  # qemu may close the socket before its reply leaves
                raise
    except (OSError, ValueError) as exc:
        raise BackendError(f"QMP `{command}` on `{path}` failed ({exc})") from None


def _expect(reader: Any, key: str, deadline: float) -> Any:
    while time.monotonic() < deadline:
        line = reader.readline()
        if not line:
            raise ConnectionError("QMP socket closed")
        msg = json.loads(line)
        if "error" in msg:
            raise ValueError(msg["error"].get("desc", msg["error"]))
        if key in msg:
            return msg[key]
    raise TimeoutError("no QMP reply")
