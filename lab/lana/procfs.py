"""Parsers for the LANA core's /proc/net/lana files (format: docs/kernel/procfs.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass


class ProcfsFormatError(ValueError):
    """A line does not have the documented format (kernel and parser disagree)."""


@dataclass(frozen=True)
class Port:
    direction: str  # "in" (ingress port: that block sits on top) or "out" (egress)
    idp: int


@dataclass(frozen=True)
class FBlock:
    name: str
    type: str
    idp: int
    refcnt: int
    ports: tuple[Port, ...]
    subscriptions: tuple[int, ...]  # IDPs whose events this instance gets
    subscribers: tuple[int, ...]  # IDPs that get this instance's events
    events: int

    def bound_to(self) -> set[int]:
        return {port.idp for port in self.ports}


@dataclass(frozen=True)
class PpeCpu:
    cpu: int
    packets: int
    bytes: int
    calls: int
    drops: int
    backlog: int


_LIST = r"\[([^\]]*)\]"
_FBLOCK_LINE = re.compile(
    rf"^(\S+) (\S+) (\d+) (\d+) {_LIST} {_LIST} {_LIST} (\d+)$")
_PPE_LINE = re.compile(r"^CPU(\d+): (\d+) (\d+) (\d+) (\d+) (\d+)$")


def _idps(text: str, line: str) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(item) for item in text.split(","))
    except ValueError as err:
        raise ProcfsFormatError(f"bad IDP list in fblocks line: {line!r}") from err


def _ports(text: str, line: str) -> tuple[Port, ...]:
    ports = []
    for item in text.split(",") if text else []:
        direction, _, idp = item.partition(":")
        if direction not in ("in", "out") or not idp.isdigit():
            raise ProcfsFormatError(f"bad port {item!r} in fblocks line: {line!r}")
        ports.append(Port(direction, int(idp)))
    return tuple(ports)


def parse_fblocks(text: str) -> dict[str, FBlock]:
    """/proc/net/lana/fblocks -> instances by name, in the kernel's order."""
    blocks: dict[str, FBlock] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _FBLOCK_LINE.match(line)
        if not match:
            raise ProcfsFormatError(f"unexpected fblocks line: {line!r}")
        name, type_, idp, refcnt, ports, subs, subscribers, events = match.groups()
        blocks[name] = FBlock(
            name=name, type=type_, idp=int(idp), refcnt=int(refcnt),
            ports=_ports(ports, line), subscriptions=_idps(subs, line),
            subscribers=_idps(subscribers, line), events=int(events))
    return blocks


def parse_ppe(text: str) -> list[PpeCpu]:
    """/proc/net/lana/ppe -> one entry per CPU."""
    cpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _PPE_LINE.match(line)
        if not match:
            raise ProcfsFormatError(f"unexpected ppe line: {line!r}")
        cpus.append(PpeCpu(*(int(value) for value in match.groups())))
    return cpus


def ppe_total(cpus: list[PpeCpu]) -> PpeCpu:
    """Sum over CPUs (cpu = -1), handy for 'did packets go through LANA'."""
    return PpeCpu(-1, sum(c.packets for c in cpus), sum(c.bytes for c in cpus),
                  sum(c.calls for c in cpus), sum(c.drops for c in cpus),
                  sum(c.backlog for c in cpus))


def parse_types(text: str) -> dict[str, str]:
    """/proc/net/lana/types -> {type: module}."""
    types = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            if parts:
                raise ProcfsFormatError(f"unexpected types line: {line!r}")
            continue
        types[parts[0]] = parts[1]
    return types


RESPONDER_COUNTS = ("requests", "replies", "malformed", "passed", "dropped")


@dataclass(frozen=True)
class Responder:
    """/proc/net/lana/fblock/<name> of a protocol responder block (arp, icmp_echo)."""

    addresses: tuple[str, ...]  # the IPv4 addresses it answers for, in the order set
    counts: dict[str, int]  # RESPONDER_COUNTS -> count

    def __getitem__(self, key: str) -> int:
        return self.counts[key]


def parse_responder(text: str) -> Responder:
    """An `arp` or `icmp_echo` proc file: `ip A,B` (or `ip none`), then `KEY COUNT` lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not re.fullmatch(r"ip (none|[0-9.]+(,[0-9.]+)*)", lines[0]):
        raise ProcfsFormatError(f"responder file must start with 'ip A[,B...]' or 'ip none': "
                                f"{lines[0] if lines else ''!r}")
    value = lines[0].split()[1]
    addresses = () if value == "none" else tuple(value.split(","))
    counts: dict[str, int] = {}
    for line in lines[1:]:
        match = re.fullmatch(r"([a-z_]+) (\d+)", line)
        if not match:
            raise ProcfsFormatError(f"unexpected responder line: {line!r}")
        counts[match.group(1)] = int(match.group(2))
    missing = [key for key in RESPONDER_COUNTS if key not in counts]
    if missing:
        raise ProcfsFormatError(f"responder file lacks {', '.join(missing)}")
    return Responder(addresses, counts)
