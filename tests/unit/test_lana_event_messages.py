"""lab.lana.client's event decoding against LANA_CMD_EVENT messages laid out as the kernel
builds them (kernel/core/netlink.c: lana_netlink_event), and the iterator's timeout."""

from __future__ import annotations

import struct
import sys
import time

import pytest

from lab.lana.client import (
    LANA_CMD_EVENT,
    LanaError,
    LanaEvent,
    event_kind,
    iterate_events,
    parse_events,
)

FAMILY = 0x1F


def attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def event_msg(name: str, type_: str, code: int, value: int, family: int = FAMILY,
              cmd: int = LANA_CMD_EVENT) -> bytes:
    body = struct.pack("=BBH", cmd, 1, 0)
    body += attr(1, name.encode() + b"\0") + attr(3, type_.encode() + b"\0")
    body += attr(10, code.to_bytes(4, sys.byteorder))
    body += attr(9, b"")  # LANA_ATTR_PAD, as nla_put_u64_64bit may add
    body += attr(11, value.to_bytes(8, sys.byteorder))
    return struct.pack("=IHHII", 16 + len(body), family, 0, 0, 0) + body


def test_one_datagram_several_events_in_order() -> None:
    data = (event_msg("c0", "counter", 1, 1520) + event_msg("r0", "ratelimit", 3, 7)
            + event_msg("vb", "eth", 6, 2**40))
    assert parse_events(data, FAMILY) == [
        LanaEvent("c0", "counter", "rate_high", 1520),
        LanaEvent("r0", "ratelimit", "limit_dropping", 7),
        LanaEvent("vb", "eth", "link_up", 2**40)]


def test_names_of_every_code_and_unknown_ones() -> None:
    assert [event_kind(c) for c in range(1, 7)] == [
        "rate_high", "rate_normal", "limit_dropping", "limit_idle", "link_down", "link_up"]
    assert event_kind(99) == "event_99"  # what fbctl monitor prints for it too


def test_other_families_commands_and_truncation_skipped() -> None:
    good = event_msg("c0", "counter", 2, 3)
    data = event_msg("x", "y", 1, 1, family=FAMILY + 1) + event_msg("x", "y", 1, 1, cmd=9)
    assert parse_events(data + good, FAMILY) == [LanaEvent("c0", "counter", "rate_normal", 3)]
    assert parse_events(good[:-3], FAMILY) == []  # a cut message is not half-read
    assert parse_events(b"", FAMILY) == []


def test_missing_attributes_read_as_fbctl_prints_them() -> None:
    body = struct.pack("=BBH", LANA_CMD_EVENT, 1, 0)
    data = struct.pack("=IHHII", 16 + len(body), FAMILY, 0, 0, 0) + body
    assert parse_events(data, FAMILY) == [LanaEvent("?", "?", "event_0", 0)]


class FakeSource:
    """Batches of events, then nothing (waits its timeout out, briefly)."""

    def __init__(self, batches: list[list[LanaEvent]]) -> None:
        self.batches = batches
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None) -> list[LanaEvent]:
        self.waits.append(timeout)
        if self.batches:
            return self.batches.pop(0)
        time.sleep(min(timeout or 0.0, 0.05))
        return []


def test_iterator_yields_all_then_stops_after_the_quiet_timeout() -> None:
    a, b, c = (LanaEvent("c0", "counter", k, 1) for k in ("rate_high", "rate_normal", "x"))
    source = FakeSource([[a, b], [], [c]])
    started = time.monotonic()
    got = list(iterate_events(source, timeout=0.2))  # type: ignore[arg-type]
    assert got == [a, b, c]
    assert time.monotonic() - started >= 0.2
    assert all(w is not None and 0 < w <= 0.2 for w in source.waits)


def test_iterator_without_timeout_waits_for_ever() -> None:
    a = LanaEvent("vb", "eth", "link_down", 3)
    source = FakeSource([[a]])
    events = iterate_events(source, timeout=None)  # type: ignore[arg-type]
    assert next(events) == a
    assert source.waits == [None]


def test_errors_are_lana_errors() -> None:
    class Overrun:
        def wait(self, timeout: float | None) -> list[LanaEvent]:
            raise LanaError(105, "events were lost")

    with pytest.raises(LanaError, match="events were lost"):
        list(iterate_events(Overrun(), timeout=1.0))  # type: ignore[arg-type]
