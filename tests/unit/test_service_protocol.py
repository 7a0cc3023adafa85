"""The service's wire protocol: framing, limits and request checks, over a real socketpair."""

from __future__ import annotations

import socket
import struct

import pytest

from lab.service import protocol
from lab.service.protocol import ProtocolError


def _pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def test_frame_round_trip() -> None:
    a, b = _pair()
    with a, b:
        a.sendall(protocol.encode({"v": 1, "op": "status", "args": {"run": "lab0001"}}))
        assert protocol.check_request(protocol.read_frame(b, 1024)) == (
            "status", {"run": "lab0001"})


def test_oversized_frame_is_refused_before_its_body_is_read() -> None:
    a, b = _pair()
    with a, b:
        a.sendall(struct.pack(">I", 10_000_000))  # no body follows: it must not wait for it
        with pytest.raises(ProtocolError) as exc:
            protocol.read_frame(b, 1 << 20)
        assert exc.value.code == "too_large" and "10000000 bytes" in exc.value.message


def test_truncated_frame() -> None:
    a, b = _pair()
    with b:
        a.sendall(struct.pack(">I", 100) + b'{"v":')
        a.close()
        with pytest.raises(ProtocolError) as exc:
            protocol.read_frame(b, 1024)
        assert exc.value.code == "truncated"


@pytest.mark.parametrize("body, code", [
    (b"{not json", "malformed"), (b"\xff\xfe", "malformed"), (b"[1, 2]", "malformed"),
])
def test_malformed_bodies(body: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as exc:
        protocol.decode(body)
    assert exc.value.code == code


@pytest.mark.parametrize("request_obj, code", [
    ({"op": "status"}, "version"),
    ({"v": 2, "op": "status"}, "version"),
    ({"v": 1, "op": "reboot"}, "unknown_op"),
    ({"v": 1, "op": ["status"]}, "unknown_op"),
    ({"v": 1, "op": "status", "args": [1]}, "malformed"),
])
def test_bad_requests(request_obj: dict, code: str) -> None:
    with pytest.raises(ProtocolError) as exc:
        protocol.check_request(request_obj)
    assert exc.value.code == code


def test_replies() -> None:
    assert protocol.ok({"a": 1}) == {"v": 1, "ok": True, "result": {"a": 1}}
    err = protocol.error("quota", "too many", "tear one down")
    assert err["ok"] is False and err["error"]["hint"] == "tear one down"
    assert protocol.event("listening", where="vm1") == {"v": 1, "event": "listening",
                                                        "where": "vm1"}


def test_every_operation_the_protocol_names_is_served() -> None:
    from lab.service.protocol import OPS
    from lab.service.server import OPERATIONS

    assert set(OPS) == set(OPERATIONS)
