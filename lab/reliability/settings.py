"""What each block's settings parser accepts, as a table (Python 3 stdlib only: runs in
the guest). `fbctl set NAME key=value` reaches the core (lana_set: at most 255 bytes,
a '=' not first), then the block's parser. `predict(type, opt)` says what the kernel must
answer: an errno and a piece of its extack message, or success and the fields the proc
file must then show. A block is one `BLOCKS` entry: its module, its keys (each a function
value -> Outcome; classify's portK keys by prefix) and its hand-picked edge cases. Names
in the cases ("nosuch") are never bound on top of anything, in the campaign or the storm.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from dataclasses import dataclass, field

OPTSIZ = 256  # LANA_OPTSIZ, the NUL included


@dataclass(frozen=True)
class Outcome:
    """errno 0: accepted, `fields` must read back; else refused with `message` in the
    extack text. `fields` holds only what the setting changes (counts are not compared)."""

    errno: int = 0
    message: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def refused(code: int, message: str) -> Outcome:
    return Outcome(code, message)


def kstrtobool(text: str) -> bool | None:
    """lib/kstrtox.c: the first character decides (on/off: the second)."""
    if text[:1] in ("y", "Y", "t", "T", "1"):
        return True
    if text[:1] in ("n", "N", "f", "F", "0"):
        return False
    if text[:1] in ("o", "O") and text[1:2] in ("n", "N"):
        return True
    if text[:1] in ("o", "O") and text[1:2] in ("f", "F"):
        return False
    return None


def kstrtouint(text: str) -> int | None:
    """kstrtouint(s, 10): optional '+', decimal digits, one optional trailing newline,
    at most 2^32 - 1."""
    match = re.fullmatch(r"\+?([0-9]+)\n?", text)
    if not match:
        return None
    value = int(match.group(1))
    return value if value < 1 << 32 else None


def reset(value: str) -> Outcome:
    return Outcome() if kstrtobool(value) else refused(errno.EINVAL, "use reset=1")


# ---- arp, icmp_echo: include/lana/inet_addrs.h -----------------------------------------
BAD_ADDRESS = "bad address; use ip=A.B.C.D"
NOT_UNICAST = "not a unicast address"


def parse_ip(value: str) -> Outcome:
    if value in ("", "none"):
        return Outcome(fields={"ip": "none"})
    addrs: list[str] = []
    for token in value.split(","):
        octets = token.split(".")
        if not 1 <= len(token) <= 15 or len(octets) != 4 or \
                not all(re.fullmatch(r"[0-9]+", o) and int(o) <= 255 for o in octets):
            return refused(errno.EINVAL, BAD_ADDRESS)
        first, normal = int(octets[0]), ".".join(str(int(o)) for o in octets)
        if first in (0, 127) or 224 <= first <= 239 or normal == "255.255.255.255":
            return refused(errno.EINVAL, NOT_UNICAST)
        if normal not in addrs:
            if len(addrs) == 8:
                return refused(errno.EINVAL, "too many addresses: at most 8")
            addrs.append(normal)
    return Outcome(fields={"ip": ",".join(addrs)})


# ---- udp ----------------------------------------------------------------------------------
def parse_port(value: str) -> Outcome:
    if value == "none":
        return Outcome(fields={"port": "none"})
    port = kstrtouint(value)
    if port is None or not 1 <= port <= 65535:
        return refused(errno.EINVAL, "bad port; use port=N")
    return Outcome(fields={"port": str(port)})


# ---- ipv4 and classify: names of blocks bound on top (none in these cases) ---------------
NOT_BOUND = "no block of that name is bound on top of this one"


def parse_proto(value: str) -> Outcome:
    """fb_ipv4: "N:NAME", N 1-3 decimal digits below 256, NAME a bound block or none."""
    number, colon, name = value.partition(":")
    if not colon or not re.fullmatch(r"[0-9]{1,3}", number) or int(number) > 255 or not name:
        return refused(errno.EINVAL, "bad protocol mapping")
    return Outcome() if name == "none" else refused(errno.EINVAL, NOT_BOUND)


def parse_default(value: str) -> Outcome:
    if not value:
        return refused(errno.EINVAL, "bad default")
    return Outcome(fields={"default": "none"}) if value == "none" else \
        refused(errno.EINVAL, NOT_BOUND)


def classify_port(key: str, value: str) -> Outcome:
    """fb_classify: "portK=NAME", K one digit 1..8, NAME a bound block."""
    if not re.fullmatch(r"port[1-8]", key):
        return refused(errno.EINVAL, "bad port number")
    return refused(errno.EINVAL, NOT_BOUND)


# ---- ratelimit: digits first (no '+'), then kstrtouint ------------------------------------
def bounded(key: str, top: int, none_ok: bool) -> Callable[[str], Outcome]:
    def parse(value: str) -> Outcome:
        if none_ok and value == "none":
            return Outcome(fields={key: "none"})
        number = kstrtouint(value) if value[:1] in tuple("0123456789") else None
        if number is None or not 1 <= number <= top:
            return refused(errno.EINVAL, f"bad {key}; use {key}=N")
        return Outcome(fields={key: str(number)})
    return parse


@dataclass(frozen=True)
class Block:
    type: str
    module: str
    keys: dict[str, Callable[[str], Outcome]]
    unknown: str  # a piece of the unknown-option message
    cases: tuple[str, ...]  # hand-picked values, "key=value"
    fresh: dict[str, str]  # what a new instance shows
    # keys starting with this prefix go to the function (key, value) -> Outcome
    prefix: tuple[str, Callable[[str, str], Outcome]] | None = None


ADDRESS_CASES = (
    "ip=10.0.0.50", "ip=10.0.0.50,10.0.0.51", "ip=none", "ip=", "ip=NONE", "ip=10.0.0",
    "ip=10.0.0.50.1", "ip=10.0.0.256", "ip=010.000.000.050", "ip=0000010.0.0.1",
    "ip=10..0.1", "ip=.10.0.0.1", "ip=10.0.0.1.", "ip=10.0.0.1,", "ip=,10.0.0.1",
    "ip=10.0.0.1,,10.0.0.2", "ip=10.0.0.1 ", "ip= 10.0.0.1", "ip=10.0.0.1\n",
    "ip=0x0a.0.0.1", "ip=a.b.c.d", "ip=10.0.0.1:80", "ip=::1", "ip=-1.0.0.1",
    "ip=0.0.0.0", "ip=0.1.2.3", "ip=127.0.0.1", "ip=224.0.0.1", "ip=239.255.255.255",
    "ip=255.255.255.255", "ip=240.0.0.1", "ip=10.255.255.255", "ip=1.1.1.1",
    "ip=" + ",".join(f"10.0.0.{i}" for i in range(1, 9)),
    "ip=" + ",".join(f"10.0.0.{i}" for i in range(1, 10)),
    "ip=" + ",".join(["10.0.0.1"] * 9 + ["10.0.0.2"]),
    "ip=10.0.0.1,127.0.0.1", "ip=10.0.0.1,bad", "ip=" + "1" * 16, "ip==10.0.0.1",
    "ip=10.0.0.1=", "IP=10.0.0.1", "ip4=10.0.0.1", "i=10.0.0.1", "ipx=1",
    "reset=1", "reset=0", "reset=y", "reset=yes", "reset=on", "reset=off", "reset=",
    "reset=2", "reset=1junk", "reset=true", "reset=false", "resetx=1", "port=7", "rate=1",
)
UDP_CASES = (
    "port=7", "port=1", "port=65535", "port=65536", "port=0", "port=-1", "port=+7",
    "port=007", "port=7\n", "port=7\n\n", "port= 7", "port=7 ", "port=0x10", "port=1e3",
    "port=", "port=none", "port=None", "port=4294967296", "port=4294967295",
    "port=99999999999999999999", "port=7,9", "port=7=9", "ports=7", "Port=7", "reset=1",
    "reset=0", "reset=", "ip=10.0.0.1", "rate=1",
)
RATE_CASES = (
    "rate=1", "rate=1000000000", "rate=1000000001", "rate=0", "rate=-1", "rate=+5",
    "rate=05", "rate=5\n", "rate= 5", "rate=5 ", "rate=", "rate=none", "rate=None",
    "rate=0x10", "rate=4294967296", "rate=1.5", "burst=1", "burst=1000000",
    "burst=1000001", "burst=0", "burst=none", "burst=+1", "burst=", "burst=7\n",
    "bursts=1", "Rate=1", "reset=1", "reset=n", "port=7", "ip=10.0.0.1",
)
IPV4_CASES = (
    "proto=1:none", "proto=17:none", "proto=255:none", "proto=256:none", "proto=0:none",
    "proto=001:none", "proto=0001:none", "proto=1:nosuch", "proto=1:", "proto=:none",
    "proto=1", "proto=-1:none", "proto=+1:none", "proto=0x11:none", "proto=1 :none",
    "proto=1:none\n", "proto=1:none:none", "proto=1::none", "proto=", "protocol=1:none",
    "default=none", "default=", "default=nosuch", "default=None", "default=none ",
    "ip=10.0.0.50", "reset=1", "reset=0", "port=7",
)
CLASSIFY_CASES = (
    "port1=nosuch", "port8=nosuch", "port0=nosuch", "port9=nosuch", "port10=nosuch",
    "port=nosuch", "portx=nosuch", "port1=", "port1=none", "Port1=nosuch", "reset=1",
    "reset=2", "proto=1:none", "rate=1",
)

RESPONDER_KEYS: dict[str, Callable[[str], Outcome]] = {"ip": parse_ip, "reset": reset}
BLOCKS: dict[str, Block] = {b.type: b for b in (
    Block("arp", "fb_arp", RESPONDER_KEYS, "unknown option; this block knows ip=",
          ADDRESS_CASES, {"ip": "none"}),
    Block("icmp_echo", "fb_icmp_echo", RESPONDER_KEYS, "unknown option; this block knows",
          ADDRESS_CASES, {"ip": "none"}),
    Block("udp", "fb_udp", {"port": parse_port, "reset": reset},
          "unknown option; udp knows port=", UDP_CASES, {"port": "none"}),
    Block("ratelimit", "fb_ratelimit",
          {"rate": bounded("rate", 1_000_000_000, True),
           "burst": bounded("burst", 1_000_000, False), "reset": reset},
          "unknown option; ratelimit knows", RATE_CASES, {"rate": "none", "burst": "1"}),
    Block("ipv4", "fb_ipv4",
          {"ip": parse_ip, "proto": parse_proto, "default": parse_default,
           "reset": reset},
          "unknown option; ipv4 knows", IPV4_CASES,
          {"ip": "none", "uppers": "none", "default": "none"}),
    Block("classify", "fb_classify", {"reset": reset}, "unknown option; classify knows",
          CLASSIFY_CASES, {"port1": "none 0"}, prefix=("port", classify_port)),
)}
# Every block's values: each block is also tried with the others' keys.
ALL_CASES = tuple(dict.fromkeys(c for b in BLOCKS.values() for c in b.cases))


def predict(type_: str, opt: bytes) -> Outcome:
    """What `set` with the OPT attribute `opt` (raw bytes, as sent) must answer."""
    if b"\0" not in opt:
        return refused(errno.EINVAL, "")  # NLA_NUL_STRING policy: no NUL, no string
    text = opt[:opt.index(b"\0")].decode("utf-8", errors="surrogateescape")
    if len(opt[:opt.index(b"\0")]) >= OPTSIZ:
        return refused(errno.EINVAL, "option too long")
    key, eq, value = text.partition("=")
    if not eq or not key:
        return refused(errno.EINVAL, "option must look like key=value")
    block = BLOCKS[type_]
    parse = block.keys.get(key)
    if parse is not None:
        return parse(value)
    if block.prefix and key.startswith(block.prefix[0]):
        return block.prefix[1](key, value)
    return refused(errno.ENOENT, block.unknown)


def readback(text: str) -> dict[str, str]:
    """The proc file's "key value" lines."""
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
