"""lab.lana.client's messages and errors without a kernel: the bytes it sends are the
ones fbctl's lnl.c builds, the replies it parses are laid out as kernel/core/netlink.c
sends them; lab.lana.remote against a fake guest."""

from __future__ import annotations

import errno
import json
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.lana import client as client_mod
from lab.lana.client import (
    LANA_CMD_ADD,
    LANA_CMD_BIND,
    LANA_CMD_LIST,
    LANA_CMD_REPLACE,
    LANA_F_DROP_PRIV,
    NEEDS_ROOT,
    Instance,
    LanaError,
    instance_from_msg,
    lana_error,
    lanamsg_class,
    request_msg,
)
from lab.lana.remote import RemoteLana, RemoteLanaSetupError, guest_pythonpath

pytest.importorskip("pyroute2")

FAMILY = 0x1F
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 1, 2, 4
NLM_F_ACK_TLVS = 0x200


def nla(type_: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("HH", length, type_) + payload + b"\0" * (-length % 4)


def nlmsg(type_: int, flags: int, seq: int, body: bytes) -> bytes:
    return struct.pack("IHHII", 16 + len(body), type_, flags, seq, 0) + body


def genl(cmd: int, attrs: bytes) -> bytes:
    return struct.pack("BBH", cmd, 1, 0) + attrs


def encoded(cmd: int, attrs: list[tuple[str, str | int]], seq: int = 7) -> bytes:
    msg = request_msg(cmd, attrs)
    msg["header"]["type"] = FAMILY
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    msg["header"]["sequence_number"] = seq
    msg.encode()
    data: bytes = bytes(msg.data)
    return data


def parse(data: bytes) -> list[Any]:
    from pyroute2.netlink.marshal import Marshal

    marshal = Marshal()
    marshal.msg_map[FAMILY] = lanamsg_class()
    return list(marshal.parse(data))


def test_bind_is_encoded_as_lnl_builds_it() -> None:
    want = nlmsg(FAMILY, NLM_F_REQUEST | NLM_F_ACK, 7,
                 genl(LANA_CMD_BIND, nla(1, b"c1\0") + nla(2, b"f1\0")))
    assert encoded(LANA_CMD_BIND, [("LANA_ATTR_NAME", "c1"), ("LANA_ATTR_NAME2", "f1")]) == want


def test_add_with_setup_string_and_replace_with_flags() -> None:
    want = nlmsg(FAMILY, NLM_F_REQUEST | NLM_F_ACK, 7, genl(LANA_CMD_ADD, (
        nla(1, b"v10\0") + nla(3, b"ethvlink\0") + nla(4, b"carrier=eth0 id=10\0"))))
    assert encoded(LANA_CMD_ADD, [("LANA_ATTR_NAME", "v10"), ("LANA_ATTR_TYPE", "ethvlink"),
                                  ("LANA_ATTR_OPT", "carrier=eth0 id=10")]) == want
    want = nlmsg(FAMILY, NLM_F_REQUEST | NLM_F_ACK, 7, genl(LANA_CMD_REPLACE, (
        nla(1, b"old\0") + nla(2, b"new\0") + nla(5, struct.pack("I", LANA_F_DROP_PRIV)))))
    assert encoded(LANA_CMD_REPLACE, [("LANA_ATTR_NAME", "old"), ("LANA_ATTR_NAME2", "new"),
                                      ("LANA_ATTR_FLAGS", LANA_F_DROP_PRIV)]) == want


def test_nul_bytes_and_non_strings_are_refused_before_sending() -> None:
    with pytest.raises(LanaError) as caught:
        request_msg(LANA_CMD_ADD, [("LANA_ATTR_NAME", "c1\0x"), ("LANA_ATTR_TYPE", "counter")])
    assert (caught.value.errno, caught.value.message) == (
        errno.EINVAL, "NUL byte in name 'c1\\x00x'")
    with pytest.raises(TypeError, match="name2 must be a str"):
        request_msg(LANA_CMD_BIND, [("LANA_ATTR_NAME", "c1"), ("LANA_ATTR_NAME2", 3)])


def test_list_dump_messages_are_decoded() -> None:
    def entry(name: bytes, type_: bytes, idp: int, refcnt: int, events: int) -> bytes:
        attrs = (nla(1, name + b"\0") + nla(3, type_ + b"\0") + nla(6, struct.pack("I", idp))
                 + nla(7, struct.pack("I", refcnt)) + nla(9, b"")  # LANA_ATTR_PAD
                 + nla(8, struct.pack("Q", events)))
        return nlmsg(FAMILY, NLM_F_MULTI, 3, genl(LANA_CMD_LIST, attrs))

    data = entry(b"eth0", b"eth", 1, 2, 0) + entry(b"c1", b"counter", 2, 1, 2**40 + 5)
    assert [instance_from_msg(m) for m in parse(data)] == [
        Instance("eth0", "eth", 1, 2, 0), Instance("c1", "counter", 2, 1, 2**40 + 5)]


def test_missing_list_attributes_read_as_fbctl_shows_them() -> None:
    (msg,) = parse(nlmsg(FAMILY, NLM_F_MULTI, 3, genl(LANA_CMD_LIST, nla(1, b"x\0"))))
    assert instance_from_msg(msg) == Instance("x", "?", 0, 0, 0)


def error_reply(code: int, message: bytes | None) -> bytes:
    """NLMSG_ERROR as the kernel sends it to a socket with NETLINK_EXT_ACK and without
    NETLINK_CAP_ACK (pyroute2 sets the one, not the other): the whole request echoed."""
    request = encoded(LANA_CMD_BIND, [("LANA_ATTR_NAME", "c1"), ("LANA_ATTR_NAME2", "f1")], 9)
    tlvs = nla(1, message + b"\0") if message is not None else b""
    return nlmsg(NLMSG_ERROR, NLM_F_ACK_TLVS if tlvs else 0, 9,
                 struct.pack("i", -code) + request + tlvs)


def test_extack_message_becomes_the_lana_error() -> None:
    (msg,) = parse(error_reply(errno.EEXIST, b"'c1' is already bound on top of 'f1'"))
    err = lana_error(msg["header"]["error"])
    assert (err.errno, err.message) == (errno.EEXIST, "'c1' is already bound on top of 'f1'")
    assert str(err) == "File exists: 'c1' is already bound on top of 'f1'"
    assert isinstance(err, OSError)


def test_error_without_message_and_eperm_hint() -> None:
    (msg,) = parse(error_reply(errno.ENOENT, None))
    err = lana_error(msg["header"]["error"])
    assert (err.errno, err.message, str(err)) == (errno.ENOENT, "", "No such file or directory")
    (msg,) = parse(error_reply(errno.EPERM, None))
    assert str(lana_error(msg["header"]["error"])) == f"Operation not permitted: {NEEDS_ROOT}"
    assert lana_error(PermissionError(errno.EPERM, "Operation not permitted")).message == (
        NEEDS_ROOT)


def test_lana_error_pickles_with_its_message() -> None:
    err = pickle.loads(pickle.dumps(LanaError(errno.EBUSY, "'f1' is bound to 'vb'")))
    assert (err.errno, err.message, err.strerror) == (
        errno.EBUSY, "'f1' is bound to 'vb'", "Device or resource busy")


class FakeLana:
    """Stands in for Lana in serve(): records calls, refuses type 'nope'."""

    calls: list[tuple[Any, ...]] = []

    def __enter__(self) -> FakeLana:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def add(self, name: str, type_: str, opt: str | None = None) -> None:
        if type_ == "nope":
            raise LanaError(errno.ENOENT, "unknown block type 'nope'")
        self.calls.append(("add", name, type_, opt))

    def list(self) -> list[Instance]:
        return [Instance("vb", "eth", 1, 1, 0)]


def test_serve_stops_at_the_first_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_mod, "Lana", FakeLana)
    FakeLana.calls = []
    answer = client_mod.serve({"calls": [["list", [], {}], ["add", ["a", "fwd"], {}],
                                         ["add", ["x", "nope"], {}], ["add", ["b", "fwd"], {}]]})
    assert answer == {"results": [[{"name": "vb", "type": "eth", "idp": 1, "refcnt": 1,
                                    "events": 0}], None],
                      "error": [errno.ENOENT, "unknown block type 'nope'"]}
    assert FakeLana.calls == [("add", "a", "fwd", None)]
    answer = client_mod.serve({"calls": [["rmmod", [], {}]]})
    assert answer["error"][0] == errno.EINVAL


@dataclass
class Result:
    stdout: str
    stderr: str = ""
    exit_code: int = 0


class FakeGuest:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.seen: list[tuple[list[str], Any]] = []

    def exec(self, argv: list[str], timeout: float = 60.0, input: bytes | None = None) -> Result:
        self.seen.append((list(argv), json.loads(input or b"null")))
        return Result(self.answer)


def test_remote_sends_one_batch_and_raises_the_guests_error() -> None:
    guest = FakeGuest(json.dumps({"results": [None], "error": None}))
    remote = RemoteLana(guest)
    remote.replace("c1", "c2", drop_priv=True)
    argv, request = guest.seen[0]
    assert argv[-3:] == ["-m", "lab.lana.client", "--json"]
    assert "PYTHONDONTWRITEBYTECODE=1" in argv
    assert request == {"calls": [["replace", ["c1", "c2", True], {}]]}

    guest.answer = json.dumps({"results": [], "error": [errno.ELOOP, "would close a loop"]})
    with pytest.raises(LanaError) as caught:
        remote.bind("vb", "c1")
    assert str(caught.value) == "Too many levels of symbolic links: would close a loop"

    guest.answer = json.dumps({"results": [[{"name": "vb", "type": "eth", "idp": 1,
                                             "refcnt": 1, "events": 3}]], "error": None})
    assert remote.list() == [Instance("vb", "eth", 1, 1, 3)]

    guest.answer = "Traceback (most recent call last): ..."
    with pytest.raises(RemoteLanaSetupError, match="guest client failed"):
        remote.list()


def test_guest_pythonpath_maps_pyroute2_into_the_share(tmp_path: Path) -> None:
    import pyroute2

    site = Path(pyroute2.__file__).resolve().parents[1]
    share = site.parents[2]  # a folder that holds pyroute2's site-packages
    path = guest_pythonpath(share, "/lab")
    assert path == f"/lab:/lab/{site.relative_to(share)}"
    with pytest.raises(RemoteLanaSetupError, match="outside the folder shared"):
        guest_pythonpath(tmp_path, "/lab")


def test_guest_side_entry_point_on_a_kernel_without_lana() -> None:
    """The whole guest-side path (lean pyroute2 import, socket, family lookup, JSON) runs
    here too: the host kernel has no LANA family, which must read as fbctl says it."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-m", "lab.lana.client", "--json"], cwd=root,
                         input=json.dumps({"calls": [["list", [], {}]]}), text=True,
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    if answer["error"] is None:  # a host that runs LANA itself
        assert isinstance(answer["results"][0], list)
    else:
        assert answer == {"results": [], "error": [errno.ENOENT, client_mod.NOT_LOADED]}
    assert run.stderr == ""  # nothing logged: the answer says it all
    usage = subprocess.run([sys.executable, "-m", "lab.lana.client"], cwd=root, text=True,
                           capture_output=True, timeout=60)
    assert usage.returncode == 2 and "RemoteLana" in usage.stderr
