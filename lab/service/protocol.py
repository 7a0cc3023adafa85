"""The service's wire protocol, version 1 (docs/service.md).

A frame is a 4-byte big-endian length and that many bytes of one UTF-8 JSON object. A
client sends one request frame {"v": 1, "op": NAME, "args": {...}} and reads frames until
the final reply: zero or more events {"v": 1, "event": NAME, ...} (e.g. "listening" once a
capture runs), then {"v": 1, "ok": true, "result": {...}} or
{"v": 1, "ok": false, "error": {"code": CODE, "message": ..., "hint": ...}}.
Binary payloads (submission tars, pcaps) travel base64-encoded inside the JSON.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

from lab.errors import LabError

VERSION = 1
HEADER = struct.Struct(">I")
MAX_REPLY_BYTES = 64 << 20  # what a client accepts (a pcap, a grading report)
OPS = ("hello", "status", "up", "down", "exec", "console", "capture", "grade", "grade_class",
       "clean_own")


class ProtocolError(LabError):
    """A frame that breaks the protocol; `code` is what the service replies with."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


def encode(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ProtocolError("truncated", f"connection closed after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_length(sock: socket.socket, limit: int) -> int:
    """The next frame's length; refused before its body is read if over `limit`."""
    header = _recv_exact(sock, HEADER.size)
    (length,) = HEADER.unpack(header)
    if length > limit:
        raise ProtocolError("too_large", f"request of {length} bytes is over the limit of "
                            f"{limit} bytes",
                            "send a smaller submission (the limit is in the service config)")
    return length


def read_frame(sock: socket.socket, limit: int) -> dict[str, Any]:
    return decode(_recv_exact(sock, read_length(sock, limit)))


def decode(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("malformed", f"request is not UTF-8 JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("malformed", "request must be a JSON object")
    return obj


def check_request(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(op, args) of a well-formed request of this version, or ProtocolError."""
    if obj.get("v") != VERSION:
        raise ProtocolError("version", f"protocol version {obj.get('v')!r} is not supported "
                            f"(this service speaks {VERSION})", "update the lanalab client")
    op, args = obj.get("op"), obj.get("args", {})
    if not isinstance(op, str) or op not in OPS:
        raise ProtocolError("unknown_op", f"unknown operation {op!r}",
                            f"operations: {', '.join(OPS)}")
    if not isinstance(args, dict):
        raise ProtocolError("malformed", "args must be a JSON object")
    return op, args


def ok(result: dict[str, Any]) -> dict[str, Any]:
    return {"v": VERSION, "ok": True, "result": result}


def error(code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    return {"v": VERSION, "ok": False, "error": {"code": code, "message": message,
                                                  "hint": hint}}


def event(name: str, **fields: Any) -> dict[str, Any]:
    return {"v": VERSION, "event": name, **fields}
