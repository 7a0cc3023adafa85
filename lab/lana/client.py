"""A typed Python client of the LANA generic netlink family (the one fbctl talks to).

In a guest (root, lana.ko loaded; pyroute2 importable, see docs/lana-client.md)::

    from lab.lana.client import Lana, LanaError

    with Lana() as lana:
        lana.add("c1", "counter")
        lana.bind("c1", "eth0")
        for inst in lana.list():
            print(inst.name, inst.type, inst.idp)
        try:
            lana.add("x", "nosuchtype")
        except LanaError as err:
            print(err.errno, err.message)   # the kernel's extack text, as fbctl prints it

The commands mirror fbctl's exactly (kernel/tools/fbctl.c, kernel/include/uapi/linux/
lana.h): add rm set bind unbind replace insert cut subscribe unsubscribe list. Every
command is acknowledged by the kernel; a refusal raises LanaError carrying errno and the
kernel's extended-ack message (NLMSGERR_ATTR_MSG, requested with NETLINK_EXT_ACK).
`str(err)` is the text fbctl prints after its command line: "<errno text>: <message>".

Events blocks emit (a counter's rate crossing its threshold, a limiter starting to drop,
a hooked device going down) come from the family's multicast group "events":

    for event in lana.events(timeout=5.0):      # LanaEvent(block, type, kind, value)
        print(event.block, event.kind, event.value)

`subscribe`/`unsubscribe` are LANA's block-to-block notifier bindings (fbctl subscribe
A B): they say which block reacts to which inside the kernel, not what user space sees.

From the host, `lab.lana.remote.RemoteLana` offers the same API through the guest agent;
it runs this module in the guest (`python3 -m lab.lana.client --json`, one JSON request
on stdin, one JSON answer on stdout).
"""

from __future__ import annotations

import errno as errnos
import json
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

LANA_GENL_NAME = "LANA"
LANA_GENL_VERSION = 1
LANA_FBNAMSIZ = 32
LANA_TYPNAMSIZ = 32
LANA_OPTSIZ = 256

# enum lana_cmd
LANA_CMD_ADD = 1
LANA_CMD_RM = 2
LANA_CMD_SET = 3
LANA_CMD_BIND = 4
LANA_CMD_UNBIND = 5
LANA_CMD_REPLACE = 6
LANA_CMD_SUBSCRIBE = 7
LANA_CMD_UNSUBSCRIBE = 8
LANA_CMD_LIST = 9
LANA_CMD_INSERT = 10
LANA_CMD_CUT = 11
LANA_CMD_EVENT = 12  # notification on the "events" group

# enum lana_attr (index = attribute type)
LANA_ATTRS = ("LANA_ATTR_UNSPEC", "LANA_ATTR_NAME", "LANA_ATTR_NAME2", "LANA_ATTR_TYPE",
              "LANA_ATTR_OPT", "LANA_ATTR_FLAGS", "LANA_ATTR_IDP", "LANA_ATTR_REFCNT",
              "LANA_ATTR_EVENTS", "LANA_ATTR_PAD", "LANA_ATTR_EVENT", "LANA_ATTR_VALUE")
LANA_ATTR_NAME = 1
LANA_ATTR_TYPE = 3
LANA_ATTR_EVENT = 10
LANA_ATTR_VALUE = 11
LANA_F_DROP_PRIV = 1 << 0

LANA_MCGRP_EVENTS_NAME = "events"
# enum lana_event: code -> LanaEvent.kind (fbctl monitor prints the same names)
LANA_EVENTS = {1: "rate_high", 2: "rate_normal", 3: "limit_dropping", 4: "limit_idle",
               5: "link_down", 6: "link_up"}
NO_EVENTS_GROUP = ("this LANA core has no \"events\" multicast group (an older lana.ko?); "
                   "rebuild the guest image")
EVENTS_LOST = ("events were lost: the socket's receive buffer overran; "
               "read events faster (or call events() again to go on)")

NOT_LOADED = f"LANA core not loaded (no netlink family {LANA_GENL_NAME}); run 'modprobe lana'"
NEEDS_ROOT = "LANA control needs root (CAP_NET_ADMIN)"


Attrs = list[tuple[str, str | int]]  # (LANA_ATTR_* name, value) of one request


class LanaError(OSError):
    """The kernel (or the socket) refused a LANA command.

    errno: the positive error number; message: the kernel's explanation (its extack
    message), "" when it gave none. str(): "<strerror>: <message>", as fbctl prints it."""

    def __init__(self, errno: int, message: str = "") -> None:
        super().__init__(errno, os.strerror(errno))
        self.message = message

    def __str__(self) -> str:
        text = os.strerror(self.errno or 0)
        return f"{text}: {self.message}" if self.message else text

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errno, self.message))


@dataclass(frozen=True)
class Instance:
    """One entry of `list()` (a LANA_CMD_LIST dump message)."""

    name: str
    type: str
    idp: int
    refcnt: int
    events: int


@dataclass(frozen=True)
class LanaEvent:
    """One event a block emitted (a LANA_CMD_EVENT notification).

    block: the publisher's instance name; type: its block type; kind: "rate_high",
    "rate_normal", "limit_dropping", "limit_idle", "link_down", "link_up" (an unknown
    code: "event_<N>", as fbctl monitor prints it); value: what it measured (rate in
    packets/s, drops so far, ifindex: kernel/include/uapi/linux/lana.h)."""

    block: str
    type: str
    kind: str
    value: int


def event_kind(code: int) -> str:
    return LANA_EVENTS.get(code, f"event_{code}")


NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
GENL_HDR = struct.Struct("=BBH")  # cmd, version, reserved
NLA_HDR = struct.Struct("=HH")  # len, type
NLMSG_ERROR = 2
NLA_TYPE_MASK = 0x3FFF


def _attrs(data: bytes) -> dict[int, bytes]:
    """Top-level netlink attributes {type: payload}; a truncated one ends the walk."""
    attrs: dict[int, bytes] = {}
    offset = 0
    while offset + NLA_HDR.size <= len(data):
        length, kind = NLA_HDR.unpack_from(data, offset)
        if length < NLA_HDR.size or offset + length > len(data):
            break
        attrs[kind & NLA_TYPE_MASK] = data[offset + NLA_HDR.size:offset + length]
        offset += (length + 3) & ~3
    return attrs


def _string(payload: bytes | None) -> str:
    if payload is None:
        return "?"
    return payload.split(b"\0", 1)[0].decode("utf-8", "replace")


def _uint(payload: bytes | None) -> int:
    if payload is None or len(payload) not in (1, 2, 4, 8):
        return 0
    return int.from_bytes(payload, sys.byteorder)


def parse_events(data: bytes, family_id: int) -> list[LanaEvent]:
    """The LANA_CMD_EVENT notifications in one netlink datagram, in order; messages of
    other families or commands are skipped, a truncated message ends the datagram.
    Missing attributes read as "?" and 0, as fbctl prints them."""
    events: list[LanaEvent] = []
    offset = 0
    while offset + NLMSG_HDR.size <= len(data):
        length, kind, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size or offset + length > len(data):
            break
        body = data[offset + NLMSG_HDR.size:offset + length]
        offset += (length + 3) & ~3
        if kind != family_id or len(body) < GENL_HDR.size:
            continue
        cmd, _version, _reserved = GENL_HDR.unpack_from(body)
        if cmd != LANA_CMD_EVENT:
            continue
        attrs = _attrs(body[GENL_HDR.size:])
        events.append(LanaEvent(block=_string(attrs.get(LANA_ATTR_NAME)),
                                type=_string(attrs.get(LANA_ATTR_TYPE)),
                                kind=event_kind(_uint(attrs.get(LANA_ATTR_EVENT))),
                                value=_uint(attrs.get(LANA_ATTR_VALUE))))
    return events


class EventSocket:
    """A netlink socket joined to the LANA family's "events" group (a plain socket: the
    stream is parsed by parse_events, no pyroute2 involved). Needs CAP_NET_ADMIN."""

    SOL_NETLINK = 270
    NETLINK_ADD_MEMBERSHIP = 1
    NETLINK_GENERIC = 16
    RCVBUF = 1 << 20

    def __init__(self, family_id: int, group_id: int) -> None:
        self.family_id = family_id
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, self.NETLINK_GENERIC)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RCVBUF)
            sock.bind((0, 0))
            sock.setsockopt(self.SOL_NETLINK, self.NETLINK_ADD_MEMBERSHIP, group_id)
        except OSError as err:
            sock.close()
            raise lana_error(err) from None
        sock.setblocking(False)
        self.sock = sock

    def close(self) -> None:
        self.sock.close()

    def wait(self, timeout: float | None) -> list[LanaEvent]:
        """The events of the next datagram; [] if none came within timeout (None: wait)."""
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return []
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return []
        except OSError as err:
            if err.errno == errnos.ENOBUFS:
                raise LanaError(errnos.ENOBUFS, EVENTS_LOST) from None
            raise lana_error(err) from None
        return parse_events(data, self.family_id)


def iterate_events(source: EventSocket, timeout: float | None) -> Iterator[LanaEvent]:
    """Yield events as they come; with a timeout, return after `timeout` s without one."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        events = source.wait(left)
        if events and timeout is not None:
            deadline = time.monotonic() + timeout
        yield from events


def _lanamsg_class() -> type:
    """The pyroute2 message class of the family (built lazily: pyroute2 is imported only
    where netlink is spoken, so the host side of RemoteLana does not need it)."""
    from pyroute2.netlink import genlmsg

    class lanamsg(genlmsg):  # type: ignore[misc]  # pyroute2 is untyped
        prefix = "LANA_ATTR_"
        nla_map = (
            ("LANA_ATTR_UNSPEC", "none"),
            ("LANA_ATTR_NAME", "asciiz"),
            ("LANA_ATTR_NAME2", "asciiz"),
            ("LANA_ATTR_TYPE", "asciiz"),
            ("LANA_ATTR_OPT", "asciiz"),
            ("LANA_ATTR_FLAGS", "uint32"),
            ("LANA_ATTR_IDP", "uint32"),
            ("LANA_ATTR_REFCNT", "uint32"),
            ("LANA_ATTR_EVENTS", "uint64"),
            ("LANA_ATTR_PAD", "none"),
            ("LANA_ATTR_EVENT", "uint32"),
            ("LANA_ATTR_VALUE", "uint64"),
        )

    return lanamsg


_LANAMSG: type | None = None


def lanamsg_class() -> type:
    """The family's pyroute2 message class (what the socket parses replies with)."""
    global _LANAMSG
    if _LANAMSG is None:
        _LANAMSG = _lanamsg_class()
    return _LANAMSG


def lanamsg() -> Any:
    """A fresh, empty message of the LANA family (pyroute2 genlmsg)."""
    return lanamsg_class()()


def request_msg(cmd: int, attrs: Attrs) -> Any:
    """The genlmsg of one command, as fbctl builds it (version LANA_GENL_VERSION).
    String values must be str without NUL bytes (TypeError, LanaError EINVAL)."""
    for attr, value in attrs:
        if attr == "LANA_ATTR_FLAGS":
            continue
        if not isinstance(value, str):
            raise TypeError(f"{attr[10:].lower()} must be a str, not {value!r}")
        if "\0" in value:
            # the kernel would read the string up to the NUL: refuse rather than truncate
            raise LanaError(errnos.EINVAL, f"NUL byte in {attr[10:].lower()} {value!r}")
    msg = lanamsg()
    msg["cmd"] = cmd
    msg["version"] = LANA_GENL_VERSION
    msg["attrs"] = list(attrs)
    return msg


def instance_from_msg(msg: Any) -> Instance:
    """A LANA_CMD_LIST dump message -> Instance (missing attributes: "?" and 0, as fbctl)."""
    return Instance(name=msg.get_attr("LANA_ATTR_NAME") or "?",
                    type=msg.get_attr("LANA_ATTR_TYPE") or "?",
                    idp=int(msg.get_attr("LANA_ATTR_IDP") or 0),
                    refcnt=int(msg.get_attr("LANA_ATTR_REFCNT") or 0),
                    events=int(msg.get_attr("LANA_ATTR_EVENTS") or 0))


def lana_error(err: BaseException) -> LanaError:
    """A pyroute2 NetlinkError (or OSError) -> LanaError with the kernel's message.

    pyroute2 fills in strerror when the ack carried no NLMSGERR_ATTR_MSG; that is "no
    message" here. EPERM without one gets fbctl's hint."""
    code = int(getattr(err, "code", 0) or getattr(err, "errno", 0) or errnos.EIO)
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    message = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
    if message == os.strerror(code):
        message = ""
    if not message and code == errnos.EPERM:
        message = NEEDS_ROOT
    return LanaError(code, message)


class Lana:
    """A connection to the LANA family in this kernel (needs CAP_NET_ADMIN).

    Methods raise LanaError on refusal; the state is then unchanged (the kernel checks
    everything before it changes anything). Use as a context manager, or call close()."""

    def __init__(self) -> None:
        from pyroute2.netlink.exceptions import NetlinkError
        from pyroute2.netlink.generic import GenericNetlinkSocket

        self._netlink_error = NetlinkError
        sock = GenericNetlinkSocket(ext_ack=True)
        # our own message says what is missing (asyncore: pyroute2 0.9's layout)
        getattr(sock, "asyncore", sock).module_err_level = "debug"
        try:
            sock.bind(LANA_GENL_NAME, lanamsg_class())
        except (NetlinkError, OSError) as err:
            sock.close()
            failure = lana_error(err)
            if failure.errno == errnos.ENOENT:
                failure = LanaError(errnos.ENOENT, NOT_LOADED)
            raise failure from None
        self._sock = sock
        self._events: EventSocket | None = None

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None
        self._sock.close()

    def __enter__(self) -> Lana:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def family_id(self) -> int:
        """The generic netlink id the kernel gave the LANA family."""
        return int(self._sock.prid)

    def multicast_groups(self) -> dict[str, int]:
        """The family's multicast groups by name ({"events": id})."""
        return dict(self._sock.mcast_groups)

    def events(self, timeout: float | None = None) -> Iterator[LanaEvent]:
        """The events blocks emit, as they come (LanaEvent). The first call joins the
        "events" group (at the call, not at the first next(): nothing emitted after it
        is missed), later calls go on reading the same socket. With a timeout the
        iterator stops after `timeout` seconds without an event; without one it waits
        for ever. LanaError(ENOBUFS) if the kernel had to drop events for this reader
        (the next call goes on after the gap)."""
        if self._events is None:
            groups = self.multicast_groups()
            if LANA_MCGRP_EVENTS_NAME not in groups:
                raise LanaError(errnos.ENOENT, NO_EVENTS_GROUP)
            self._events = EventSocket(self.family_id, groups[LANA_MCGRP_EVENTS_NAME])
        return iterate_events(self._events, timeout)

    # --- the commands, one per fbctl command ------------------------------------

    def add(self, name: str, type: str, opt: str | None = None) -> None:
        """fbctl add NAME TYPE: a new instance (missing type modules are loaded).
        opt: the type's setup string (vlink's "carrier=eth0 id=10" for ethvlink)."""
        attrs: Attrs = [("LANA_ATTR_NAME", name),
                                              ("LANA_ATTR_TYPE", type)]
        if opt is not None:
            attrs.append(("LANA_ATTR_OPT", opt))
        self._do(LANA_CMD_ADD, attrs)

    def rm(self, name: str) -> None:
        """fbctl rm NAME (unbind and unsubscribe it first)."""
        self._do(LANA_CMD_RM, [("LANA_ATTR_NAME", name)])

    def set(self, name: str, option: str) -> None:
        """fbctl set NAME KEY=VALUE, e.g. set("c1", "reset=1")."""
        self._do(LANA_CMD_SET, [("LANA_ATTR_NAME", name), ("LANA_ATTR_OPT", option)])

    def bind(self, upper: str, lower: str) -> None:
        """fbctl bind A B: A on top of B."""
        self._two(LANA_CMD_BIND, upper, lower)

    def unbind(self, upper: str, lower: str) -> None:
        """fbctl unbind A B."""
        self._two(LANA_CMD_UNBIND, upper, lower)

    def replace(self, old: str, new: str, drop_priv: bool = False) -> None:
        """fbctl replace OLD NEW [--drop-priv]."""
        attrs: Attrs = [("LANA_ATTR_NAME", old),
                                              ("LANA_ATTR_NAME2", new)]
        if drop_priv:
            attrs.append(("LANA_ATTR_FLAGS", LANA_F_DROP_PRIV))
        self._do(LANA_CMD_REPLACE, attrs)

    def insert(self, fresh: str, upper: str) -> None:
        """fbctl insert X A: X between A and the one block below A."""
        self._two(LANA_CMD_INSERT, fresh, upper)

    def cut(self, name: str) -> None:
        """fbctl cut X: bind the blocks above and below X directly; X stays, unbound."""
        self._do(LANA_CMD_CUT, [("LANA_ATTR_NAME", name)])

    def subscribe(self, subscriber: str, publisher: str) -> None:
        """fbctl subscribe A B: A gets the events B emits (in the kernel)."""
        self._two(LANA_CMD_SUBSCRIBE, subscriber, publisher)

    def unsubscribe(self, subscriber: str, publisher: str) -> None:
        """fbctl unsubscribe A B."""
        self._two(LANA_CMD_UNSUBSCRIBE, subscriber, publisher)

    def list(self) -> list[Instance]:
        """fbctl list: every instance, in the kernel's order."""
        from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST

        msg = request_msg(LANA_CMD_LIST, [])
        try:
            replies = self._sock.nlm_request(msg, msg_type=self._sock.prid,
                                             msg_flags=NLM_F_REQUEST | NLM_F_DUMP)
            return [instance_from_msg(reply) for reply in replies
                    if reply.get("cmd") == LANA_CMD_LIST]
        except (self._netlink_error, OSError) as err:
            raise lana_error(err) from None

    # --- plumbing --------------------------------------------------------------

    def _two(self, cmd: int, a: str, b: str) -> None:
        self._do(cmd, [("LANA_ATTR_NAME", a), ("LANA_ATTR_NAME2", b)])

    def _do(self, cmd: int, attrs: Attrs) -> None:
        from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST

        msg = request_msg(cmd, attrs)
        try:
            # the ack (or the error with its extack message) ends the request
            tuple(self._sock.nlm_request(msg, msg_type=self._sock.prid,
                                         msg_flags=NLM_F_REQUEST | NLM_F_ACK))
        except (self._netlink_error, OSError) as err:
            raise lana_error(err) from None


# --- the guest side of RemoteLana: one JSON request in, one JSON answer out ----------

COMMANDS = ("add", "rm", "set", "bind", "unbind", "replace", "insert", "cut", "subscribe",
            "unsubscribe", "list", "multicast_groups")


def serve(request: dict[str, Any]) -> dict[str, Any]:
    """Run a batch {"calls": [[command, args, kwargs], ...]} on one connection; stop at the
    first error. Answer {"results": [...], "error": null | [errno, message]}."""
    results: list[Any] = []
    try:
        with Lana() as lana:
            for command, args, kwargs in request["calls"]:
                if command not in COMMANDS:
                    raise LanaError(errnos.EINVAL, f"unknown command {command!r}")
                result = getattr(lana, command)(*args, **kwargs)
                if command == "list":
                    result = [asdict(inst) for inst in result]
                results.append(result)
    except LanaError as err:
        return {"results": results, "error": [err.errno, err.message]}
    return {"results": results, "error": None}


def lean_pyroute2() -> None:
    """Make `import pyroute2.netlink...` skip pyroute2/__init__.py, which imports all of
    pyroute2 (IPRoute, NDB, IPDB...): 2.5 times the import time, seconds in a TCG guest.
    Only for this module's own process (main), where nothing else wants those names."""
    import importlib.util
    import types

    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed: Lana() says so with the ImportError
    package = types.ModuleType("pyroute2")
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    sys.modules["pyroute2"] = package


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    lean_pyroute2()
    if argv != ["--json"]:
        print("usage: python3 -m lab.lana.client --json < request.json\n"
              "(the guest side of lab.lana.remote.RemoteLana; use fbctl from the shell)",
              file=sys.stderr)
        return 2
    json.dump(serve(json.load(sys.stdin)), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
