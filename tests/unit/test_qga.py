"""Guest-agent client framing against a small agent that speaks the protocol on a local
unix socket (the real agent is exercised in tests/vm)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.errors import GuestAgentError, GuestCommandError, GuestTimeoutError
from lab.vm.qga import GuestAgent


class FakeAgent:
    """Answers like qemu-ga: 0xff before a guest-sync-delimited reply, JSON lines otherwise.
    `garbage` is sent on connect to mimic a stale reply from an earlier session."""

    def __init__(self, path: Path, garbage: bytes = b"", mute_syncs: int = 0) -> None:
        self.path = path
        self.garbage = garbage
        self.mute_syncs = mute_syncs  # ignore the first N syncs (agent not started yet)
        self.files: dict[str, bytes] = {}
        self.handles: dict[int, list[Any]] = {}
        self.execs: dict[int, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        conn.sendall(self.garbage)
        buf = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    reply = self._handle(json.loads(line.strip(b"\xff")))
                    if reply is not None:
                        conn.sendall(reply)

    def _handle(self, req: dict[str, Any]) -> bytes | None:
        cmd, args = req["execute"], req.get("arguments", {})
        self.requests.append(cmd)
        if cmd == "guest-sync-delimited":
            if self.mute_syncs > 0:
                self.mute_syncs -= 1
                return None
            return b"\xff" + json.dumps({"return": args["id"]}).encode() + b"\n"
        if cmd == "guest-shutdown":
            return None
        try:
            result = getattr(self, "do_" + cmd.replace("-", "_"))(args)
        except KeyError as exc:
            return json.dumps({"error": {"class": "GenericError",
                                         "desc": f"no such thing: {exc}"}}).encode() + b"\n"
        return json.dumps({"return": result}).encode() + b"\n"

    def do_guest_ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {}

    def do_guest_exec(self, args: dict[str, Any]) -> dict[str, Any]:
        pid = 100 + len(self.execs)
        argv = [args["path"], *args.get("arg", [])]
        self.execs[pid] = {"argv": argv, "polls": 0}
        return {"pid": pid}

    def do_guest_exec_status(self, args: dict[str, Any]) -> dict[str, Any]:
        job = self.execs[args["pid"]]
        job["polls"] += 1
        argv = job["argv"]
        if argv[0] == "sleep" or job["polls"] < 3:
            return {"exited": False}
        if argv[0] == "killed":
            return {"exited": True, "signal": 9}
        out = " ".join(argv[1:]).encode()
        return {"exited": True, "exitcode": 3 if argv[0] == "false" else 0,
                "out-data": base64.b64encode(out).decode(),
                "err-data": base64.b64encode(b"err\xffbytes").decode()}

    def do_guest_file_open(self, args: dict[str, Any]) -> int:
        data = self.files[args["path"]] if "r" in args["mode"] else b""
        handle = 1000 + len(self.handles)
        self.handles[handle] = [args["path"], data, 0]
        return handle

    def do_guest_file_write(self, args: dict[str, Any]) -> dict[str, Any]:
        entry = self.handles[args["handle"]]
        chunk = base64.b64decode(args["buf-b64"])
        entry[1] += chunk
        return {"count": len(chunk), "eof": False}

    def do_guest_file_read(self, args: dict[str, Any]) -> dict[str, Any]:
        entry = self.handles[args["handle"]]
        chunk = entry[1][entry[2] : entry[2] + args["count"]]
        entry[2] += len(chunk)
        return {"count": len(chunk), "buf-b64": base64.b64encode(chunk).decode(),
                "eof": entry[2] >= len(entry[1])}

    def do_guest_file_close(self, args: dict[str, Any]) -> dict[str, Any]:
        path, data, _ = self.handles.pop(args["handle"])
        self.files[path] = data
        return {}

    def close(self) -> None:
        self.server.close()


@pytest.fixture()
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "qga.sock"


@pytest.fixture()
def agent(sock_path: Path) -> Iterator[FakeAgent]:
    fake = FakeAgent(sock_path, garbage=b'{"return": 77}\n\xff{"return": 78}\n')
    yield fake
    fake.close()


def test_sync_skips_stale_replies_and_pings(agent: FakeAgent, sock_path: Path) -> None:
    with GuestAgent(sock_path) as client:
        client.sync()
        client.ping()
    assert agent.requests == ["guest-sync-delimited", "guest-ping"]


def test_exec_polls_until_exit_and_decodes(agent: FakeAgent, sock_path: Path) -> None:
    client = GuestAgent(sock_path)
    result = client.exec(["echo", "hello", "world"])
    assert (result.stdout, result.exit_code) == ("hello world", 0)
    assert result.stderr_bytes == b"err\xffbytes" and result.stderr == "err\ufffdbytes"
    assert agent.requests.count("guest-exec-status") == 3
    failed = client.exec(["false", "x"])
    assert failed.exit_code == 3 and not failed.ok
    with pytest.raises(GuestCommandError, match="exited with 3"):
        failed.check()
    assert client.exec(["killed"]).exit_code == 128 + 9


def test_exec_timeout_raises_and_kills(agent: FakeAgent, sock_path: Path) -> None:
    client = GuestAgent(sock_path, name="vm1")
    start = time.monotonic()
    with pytest.raises(GuestTimeoutError, match="vm `vm1`: guest command `sleep 100`") as err:
        client.exec(["sleep", "100"], timeout=0.3)
    assert time.monotonic() - start < 2
    assert err.value.hint
    assert any(job["argv"] == ["kill", "-9", "100"] for job in agent.execs.values())


def test_files_round_trip_in_chunks(agent: FakeAgent, sock_path: Path) -> None:
    client = GuestAgent(sock_path)
    data = bytes(range(256)) * 1000  # 256 KB: several chunks
    client.put_file("/tmp/blob", data)
    assert agent.files["/tmp/blob"] == data
    assert agent.requests.count("guest-file-write") > 1
    assert client.get_file("/tmp/blob") == data
    client.put_file("/tmp/empty", b"")
    assert client.get_file("/tmp/empty") == b""


def test_agent_errors_are_reported(agent: FakeAgent, sock_path: Path) -> None:
    client = GuestAgent(sock_path, name="vm1")
    with pytest.raises(GuestAgentError, match="refused `guest-file-open`.*no such thing"):
        client.get_file("/nonexistent")
    client.ping()  # the stream is still usable afterwards


def test_waits_for_socket_and_agent_to_come_up(sock_path: Path) -> None:
    holder: list[FakeAgent] = []

    def late_start() -> None:
        time.sleep(0.3)
        holder.append(FakeAgent(sock_path, mute_syncs=2))

    threading.Thread(target=late_start).start()
    client = GuestAgent(sock_path)
    waited = client.wait_until_up(timeout=10)
    assert 0.3 <= waited < 5
    client.ping()
    holder[0].close()


def test_not_up_raises_with_hint(sock_path: Path) -> None:
    client = GuestAgent(sock_path, name="vm9")
    with pytest.raises(GuestAgentError, match="vm `vm9`: guest agent not answering") as err:
        client.wait_until_up(timeout=0.2)
    assert err.value.hint and "wait_ready" in err.value.hint


def test_shutdown_sends_without_waiting(agent: FakeAgent, sock_path: Path) -> None:
    client = GuestAgent(sock_path)
    client.shutdown()
    deadline = time.monotonic() + 2
    while "guest-shutdown" not in agent.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert agent.requests[-1] == "guest-shutdown"


def test_connection_is_released_when_idle(agent: FakeAgent, sock_path: Path) -> None:
    client = GuestAgent(sock_path, idle_release=0.2)
    client.exec(["echo", "x"])
    client.ping()
    assert client._sock is not None  # a burst shares one connection
    deadline = time.monotonic() + 2
    while client._sock is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client._sock is None  # qemu serves one client: idle agents let others in
    assert agent.requests.count("guest-sync-delimited") == 1
    eager = GuestAgent(sock_path, idle_release=0)
    eager.ping()
    assert eager._sock is None
    held = GuestAgent(sock_path, keep_open=True, idle_release=0)
    held.ping()
    assert held._sock is not None
    held.close()
