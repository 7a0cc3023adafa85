"""The real service server in a thread (no VM, no root): SO_PEERCRED identifies us, bad
frames get clear errors, a flood is rate-limited, and every refusal is in the log."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from lab.service import protocol
from lab.service.client import ServiceClient, ServiceError
from lab.service.config import Limits, ServiceConfig
from lab.service.server import LabServiceServer


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceConfig]:
    monkeypatch.setenv("LANALAB_RUN_DIR", str(tmp_path / "run"))
    config = ServiceConfig(socket=tmp_path / "s" / "service.sock", log=tmp_path / "log.jsonl",
                           limits=replace(Limits(), max_request_bytes=4096, rate_burst=20,
                                          rate_per_second=1.0, read_timeout_s=0.5))
    (tmp_path / "work").mkdir()
    server = LabServiceServer(config, tmp_path / "work")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield config
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _log(config: ServiceConfig) -> list[dict]:
    return [json.loads(line) for line in config.log.read_text().splitlines()]


def test_hello_identifies_the_caller(service: ServiceConfig) -> None:
    hello = ServiceClient(service.socket).hello()
    assert hello["uid"] == os.getuid() and hello["gid"] == os.getgid()
    assert hello["usage"] == {"labs": 0, "vms": 0, "memory_mb": 0}
    assert (service.socket.stat().st_mode & 0o777) == 0o666
    assert (service.socket.parent.stat().st_mode & 0o777) == 0o711
    assert (service.log.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("frame, code", [
    (struct.pack(">I", 1 << 20) + b"x" * 10, "too_large"),
    (protocol.HEADER.pack(9) + b"{not json", "malformed"),
    (protocol.encode({"v": 1, "op": "format_disk"}), "unknown_op"),
    (protocol.encode({"v": 7, "op": "status"}), "version"),
    (protocol.encode({"v": 1, "op": "up", "args": {"share": "/"}}), "bad_args"),
    (protocol.encode({"v": 1, "op": "down", "args": {"run": "lab0bad"}}), "not_yours"),
])
def test_bad_requests_are_refused_and_logged(service: ServiceConfig, frame: bytes,
                                             code: str) -> None:
    with pytest.raises(ServiceError) as exc:
        ServiceClient(service.socket).send_raw(frame)
    assert exc.value.code == code and exc.value.message
    last = _log(service)[-1]
    assert last["code"] == code and last["uid"] == os.getuid() and last["reason"]


def test_a_flood_is_rate_limited(service: ServiceConfig) -> None:
    client = ServiceClient(service.socket)
    codes = []
    for _ in range(40):
        try:
            client.request("status")
            codes.append("ok")
        except ServiceError as exc:
            codes.append(exc.code)
    assert codes[:15] == ["ok"] * 15 and "rate_limited" in codes
    assert any(e["code"] == "rate_limited" for e in _log(service))


def test_a_truncated_request_gets_an_error(service: ServiceConfig) -> None:
    sock = socket.socket(socket.AF_UNIX)
    with sock:
        sock.connect(str(service.socket))
        sock.sendall(protocol.HEADER.pack(100) + b"{")  # and never the rest
        sock.shutdown(socket.SHUT_WR)
        reply = protocol.read_frame(sock, 1 << 16)
    assert reply["error"]["code"] == "truncated"
    assert _log(service)[-1]["code"] == "truncated"


def test_a_silent_client_is_dropped_after_the_read_timeout(service: ServiceConfig) -> None:
    sock = socket.socket(socket.AF_UNIX)
    with sock:
        sock.connect(str(service.socket))
        sock.settimeout(30)
        assert sock.recv(10) == b""  # it holds no thread of the service for long
    assert _log(service)[-1]["code"] == "truncated"


def test_a_real_oversized_body_gets_its_refusal(service: ServiceConfig) -> None:
    """The client's send breaks off when the service hangs up; the refusal still arrives."""
    frame = protocol.encode({"v": 1, "op": "grade", "args": {"submission": "A" * (4 << 20)}})
    with pytest.raises(ServiceError) as exc:
        ServiceClient(service.socket).send_raw(frame)
    assert exc.value.code == "too_large"
