"""The settings table of the bad-input campaign (lab/reliability/settings.py): what it
predicts for the protocol blocks' parsers (kernel/include/lana/inet_addrs.h, fb_udp.c,
fb_ratelimit.c), checked against the kernel in tests/reliability/test_bad_input_guest.py."""

from __future__ import annotations

import errno

import pytest

from lab.reliability.settings import ALL_CASES, BLOCKS, predict


@pytest.mark.parametrize(("type_", "opt", "code", "fields"), [
    ("arp", b"ip=010.000.000.050\0", 0, {"ip": "10.0.0.50"}),
    ("arp", b"ip=10.0.0.1,10.0.0.1,10.0.0.2\0", 0, {"ip": "10.0.0.1,10.0.0.2"}),
    ("arp", b"ip=\0", 0, {"ip": "none"}),
    ("icmp_echo", b"ip=127.0.0.1\0", errno.EINVAL, {}),
    ("icmp_echo", b"ip=10.0.0.1,\0", errno.EINVAL, {}),
    ("arp", b"port=7\0", errno.ENOENT, {}),
    ("arp", b"ip=10.0.0.1\0junk\0", 0, {"ip": "10.0.0.1"}),
    ("arp", b"ip=10.0.0.1", errno.EINVAL, {}),
    ("udp", b"port=+7\0", 0, {"port": "7"}),
    ("udp", b"port=7\n\0", 0, {"port": "7"}),
    ("udp", b"port=65536\0", errno.EINVAL, {}),
    ("udp", b"=7\0", errno.EINVAL, {}),
    ("ratelimit", b"rate=+5\0", errno.EINVAL, {}),
    ("ratelimit", b"rate=05\0", 0, {"rate": "5"}),
    ("ratelimit", b"burst=none\0", errno.EINVAL, {}),
    ("ratelimit", b"burst=" + b"1" * 249 + b"\0", errno.EINVAL, {}),
    ("ratelimit", b"burst=" + b"1" * 250 + b"\0", errno.EINVAL, {}),
    ("ratelimit", b"reset=yes\0", 0, {}),
    ("ipv4", b"proto=17:none\0", 0, {}),
    ("ipv4", b"proto=0017:none\0", errno.EINVAL, {}),
    ("ipv4", b"proto=17:u7\0", errno.EINVAL, {}),
    ("ipv4", b"default=none\0", 0, {"default": "none"}),
    ("ipv4", b"ip=10.0.0.050\0", 0, {"ip": "10.0.0.50"}),
    ("classify", b"port=7\0", errno.EINVAL, {}),
    ("classify", b"port3=nosuch\0", errno.EINVAL, {}),
    ("classify", b"Port3=nosuch\0", errno.ENOENT, {}),
])
def test_predictions(type_: str, opt: bytes, code: int, fields: dict[str, str]) -> None:
    outcome = predict(type_, opt)
    assert (outcome.errno, outcome.fields) == (code, fields)
    assert outcome.errno == 0 or outcome.message or b"\0" not in opt


def test_overlong_is_refused_by_the_core() -> None:
    assert predict("udp", b"port=" + b"1" * 251 + b"\0").message == "option too long"
    assert predict("udp", b"port=" + b"1" * 250 + b"\0").message == "bad port; use port=N"


def test_table_covers_every_block() -> None:
    assert set(BLOCKS) == {"arp", "icmp_echo", "udp", "ratelimit", "ipv4", "classify"}
    for block in BLOCKS.values():
        outcomes = [predict(block.type, c.encode() + b"\0") for c in ALL_CASES]
        assert any(o.errno == 0 for o in outcomes) and any(o.errno for o in outcomes)
