"""A minimal generic netlink client for the LANA family, Python 3 stdlib only.

Runs inside the guest (the storm and the fuzzer use it): no libnl, no pyroute2 there.
`LanaNetlink.request()` sends one well-formed command and returns the kernel's answer;
`send_raw()` sends arbitrary bytes (the fuzzer) and reports what came back.
Constants mirror kernel/include/uapi/linux/lana.h and linux/netlink.h.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSGERR_ATTR_MSG = 1
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2

# LANA uapi
CMD = {"add": 1, "rm": 2, "set": 3, "bind": 4, "unbind": 5, "replace": 6,
       "subscribe": 7, "unsubscribe": 8, "list": 9}
ATTR_NAME, ATTR_NAME2, ATTR_TYPE, ATTR_OPT, ATTR_FLAGS = 1, 2, 3, 4, 5
ATTR_IDP, ATTR_REFCNT, ATTR_EVENTS = 6, 7, 8
F_DROP_PRIV = 1


def attr(kind: int, payload: bytes) -> bytes:
    """One nlattr, padded to 4 bytes."""
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + bytes(-len(raw) % 4)


def string_attr(kind: int, text: str) -> bytes:
    return attr(kind, text.encode() + b"\0")


def genl_message(family: int, cmd: int, payload: bytes, flags: int, seq: int,
                 version: int = 1) -> bytes:
    body = struct.pack("=BBH", cmd, version, 0) + payload
    return struct.pack("=IHHII", 16 + len(body), family, flags, seq, 0) + body


def parse_attrs(data: bytes) -> dict[int, bytes]:
    attrs: dict[int, bytes] = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        attrs[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return attrs


@dataclass
class Answer:
    """What the kernel said: errno 0 = success; `message` = extack text; `replies` = the
    dump messages (LIST); `answered` False when nothing came back within the timeout."""

    errno: int
    message: str
    replies: list[dict[int, bytes]]
    answered: bool = True

    @property
    def ok(self) -> bool:
        return self.answered and self.errno == 0

    def describe(self) -> str:
        if not self.answered:
            return "no answer"
        name = errno.errorcode.get(self.errno, str(self.errno)) if self.errno else "OK"
        return f"{name}: {self.message}" if self.message else name


class NetlinkError(RuntimeError):
    pass


class LanaNetlink:
    """One generic netlink socket talking to the LANA family."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, 0))
        self.sock.settimeout(timeout)
        self.seq = int.from_bytes(os.urandom(2), "little") << 8
        self.family = self.resolve_family("LANA")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LanaNetlink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        return self.seq

    def resolve_family(self, name: str) -> int:
        payload = string_attr(CTRL_ATTR_FAMILY_NAME, name)
        answer = self._exchange(genl_message(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, payload,
                                             NLM_F_REQUEST | NLM_F_ACK, self.next_seq()),
                                self.seq)
        for reply in answer.replies:
            if CTRL_ATTR_FAMILY_ID in reply:
                return int(struct.unpack("=H", reply[CTRL_ATTR_FAMILY_ID][:2])[0])
        raise NetlinkError(f"generic netlink family {name!r} not found "
                           f"({answer.describe()}); is lana.ko loaded?")

    def request(self, cmd: str, name: str | None = None, name2: str | None = None,
                type_: str | None = None, opt: str | None = None,
                flags: int | None = None) -> Answer:
        payload = b""
        for kind, value in ((ATTR_NAME, name), (ATTR_NAME2, name2), (ATTR_TYPE, type_),
                            (ATTR_OPT, opt)):
            if value is not None:
                payload += string_attr(kind, value)
        if flags is not None:
            payload += attr(ATTR_FLAGS, struct.pack("=I", flags))
        nl_flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_DUMP if cmd == "list" else 0)
        seq = self.next_seq()
        return self._exchange(genl_message(self.family, CMD[cmd], payload, nl_flags, seq), seq)

    def send_raw(self, data: bytes, seq: int | None) -> Answer:
        """Send `data` as is; wait for an answer carrying `seq` (None: do not match)."""
        try:
            self.sock.send(data)
        except OSError as exc:  # the socket layer itself refused (e.g. EINVAL, EMSGSIZE)
            return Answer(exc.errno or 0, f"send: {exc.strerror}", [], True)
        return self._receive(seq)

    def _exchange(self, data: bytes, seq: int) -> Answer:
        self.sock.send(data)
        return self._receive(seq)

    def _receive(self, seq: int | None) -> Answer:
        replies: list[dict[int, bytes]] = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                return Answer(0, "", replies, answered=False)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, flags, msg_seq, _pid = struct.unpack_from("=IHHII", data, offset)
                if length < 16:
                    break
                body = data[offset + 16:offset + length]
                offset += (length + 3) & ~3
                if seq is not None and msg_seq != seq:
                    continue  # a late answer to an earlier (timed-out) request
                if kind == NLMSG_ERROR:
                    return self._error(body, flags, replies)
                if kind == NLMSG_DONE:
                    # a dump ends with DONE; with NLM_F_ACK an ACK may follow, or not
                    return Answer(0, "", replies)
                replies.append(parse_attrs(body[4:]))
                if not flags & NLM_F_MULTI and seq is None:
                    return Answer(0, "", replies)

    @staticmethod
    def _error(body: bytes, flags: int, replies: list[dict[int, bytes]]) -> Answer:
        code = -struct.unpack_from("=i", body, 0)[0]
        message = ""
        if flags & NLM_F_ACK_TLVS:
            inner_len = struct.unpack_from("=I", body, 4)[0] if len(body) >= 8 else 16
            skip = 4 + (16 if flags & NLM_F_CAPPED else (inner_len + 3) & ~3)
            text = parse_attrs(body[skip:]).get(NLMSGERR_ATTR_MSG, b"")
            message = text.rstrip(b"\0").decode(errors="replace")
        return Answer(code, message, replies)


def list_instances(nl: LanaNetlink) -> list[dict[str, object]]:
    """LANA_CMD_LIST as dicts (name, type, idp, refcnt, events)."""
    answer = nl.request("list")
    if not answer.ok:
        raise NetlinkError(f"LIST failed: {answer.describe()}")
    out = []
    for reply in answer.replies:
        out.append({
            "name": reply.get(ATTR_NAME, b"").rstrip(b"\0").decode(),
            "type": reply.get(ATTR_TYPE, b"").rstrip(b"\0").decode(),
            "idp": struct.unpack("=I", reply[ATTR_IDP])[0] if ATTR_IDP in reply else None,
            "refcnt": struct.unpack("=I", reply[ATTR_REFCNT])[0] if ATTR_REFCNT in reply
            else None,
        })
    return out
