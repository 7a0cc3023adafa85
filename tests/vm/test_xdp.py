"""eBPF programs of kernel/xdp/ (compiled on the host by lab.ebpf.compile) in a real guest.

One guest for the module: a quiet veth pair va/vb (IPv6 off), the programs attached to vb
with iproute2, exact frames sent on va from a raw AF_PACKET socket. Every count is exact:
the program's drop counter (its map, pinned by iproute2 and read from bpffs), tc's qdisc
drop counter, and a PF_PACKET sniffer on vb, which sees only what the program passed
(generic XDP runs before the packet taps).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Guest

pytestmark = pytest.mark.vm

PIN = "/sys/fs/bpf/tc/globals"
HELPER = "/tmp/xdpt.py"
# `xdpt.py MAP N_UDP N_OTHER`: open a sniffer on vb, send N_UDP IPv4/UDP frames and
# N_OTHER ARP-typed frames on va, wait until MAP's counter has seen every UDP frame it
# drops (the program runs in vb's receive softirq), then print what was counted
HELPER_SOURCE = r'''
import json, socket, struct, sys, time
def counter(path):
    for line in open(path):
        if line.startswith("0:"):
            return int(line.split()[1])
    return 0
def rx(dev):
    return int(open(f"/sys/class/net/{dev}/statistics/rx_packets").read())
ETH = b"\x02\x00\x00\x00\xbe\xef" + b"\x02\x00\x00\x00\x00\x01"
def udp(length=100):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length - 14, 0, 0, 64, 17, 0,
                     bytes([10, 254, 254, 1]), bytes([10, 254, 254, 254]))
    return ETH + b"\x08\x00" + ip + struct.pack("!HHHH", 9, 9, length - 34, 0) + bytes(length - 42)
def other(length=60):
    return ETH + b"\x08\x06" + bytes(length - 14)
path, n_udp, n_other = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
sniff.bind(("vb", 0))
sniff.setblocking(False)
send = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
send.bind(("va", 0))
c0, r0 = counter(path), rx("vb")
for _ in range(n_udp):
    send.send(udp())
for _ in range(n_other):
    send.send(other())
end = time.monotonic() + 60  # the counter shows when the softirq has run: poll it
while rx("vb") - r0 < n_udp + n_other and time.monotonic() < end:
    time.sleep(0.01)
while counter(path) - c0 < n_udp and time.monotonic() < end:
    time.sleep(0.01)
got = 0
while True:
    try:
        data, addr = sniff.recvfrom(2000)
    except BlockingIOError:
        break
    got += addr[2] != socket.PACKET_OUTGOING
print(json.dumps({"counted": counter(path) - c0, "vb_rx": rx("vb") - r0, "sniffed": got}))
'''


@pytest.fixture(scope="module")
def xdp(guest: Guest) -> Iterator[Guest]:
    from lab.ebpf.compile import compile_all

    for name, obj in compile_all().items():  # on the host, before the programs load
        guest.put(f"/tmp/{name}.bpf.o", obj.path.read_bytes())
    guest.put(HELPER, HELPER_SOURCE)
    guest.sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
             " && ip link add name va type veth peer name vb "
             "&& ip link set dev va up && ip link set dev vb up")
    yield guest


def _send(guest: Guest, counter: str, n_udp: int, n_other: int = 0) -> dict:
    return json.loads(guest.sh(f"python3 {HELPER} {PIN}/{counter} {n_udp} {n_other}"))


def _xdp_attached(guest: Guest) -> bool:
    return "prog/xdp" in guest.sh("ip -d link show dev vb")


def test_xdp_drop_drops_and_counts_every_frame(xdp: Guest) -> None:
    xdp.sh("ip link set dev vb xdpgeneric obj /tmp/xdp_drop.bpf.o sec xdp")
    try:
        assert "xdpgeneric" in xdp.sh("ip link show dev vb")
        got = _send(xdp, "xdp_drop_cnt", 300, 20)
        # veth counts each frame before XDP; the program dropped all, the tap saw none
        assert got == {"counted": 320, "vb_rx": 320, "sniffed": 0}, got
    finally:
        xdp.sh(f"ip link set dev vb xdpgeneric off; rm -f {PIN}/xdp_drop_cnt")
    assert not _xdp_attached(xdp)
    xdp.vm.check_console()


def test_xdp_parse_drop_drops_udp_and_passes_the_rest(xdp: Guest) -> None:
    xdp.sh("ip link set dev vb xdpgeneric obj /tmp/xdp_parse_drop.bpf.o sec xdp")
    try:
        got = _send(xdp, "xdp_parse_cnt", 200, 30)
        assert got == {"counted": 200, "vb_rx": 230, "sniffed": 30}, got
    finally:
        xdp.sh(f"ip link set dev vb xdpgeneric off; rm -f {PIN}/xdp_parse_cnt")
    assert not _xdp_attached(xdp)


def test_tc_drop_counted_by_the_program_and_the_qdisc(xdp: Guest) -> None:
    xdp.sh("tc qdisc add dev vb clsact && tc filter add dev vb ingress bpf direct-action "
           "obj /tmp/tc_drop.bpf.o sec tc")
    try:
        assert "direct-action" in xdp.sh("tc filter show dev vb ingress")
        got = _send(xdp, "tc_drop_cnt", 250)
        assert got == {"counted": 250, "vb_rx": 250, "sniffed": 250}, got  # taps run first
        stats = json.loads(xdp.sh("tc -s -j qdisc show dev vb"))
        clsact = next(q for q in stats if q["kind"] == "clsact")
        assert clsact["drops"] == 250 and clsact["packets"] == 250, clsact
    finally:
        xdp.sh(f"tc qdisc del dev vb clsact; rm -f {PIN}/tc_drop_cnt")
    assert not xdp.sh("tc filter show dev vb ingress").strip()


def test_a_malformed_object_is_refused_and_nothing_attached(xdp: Guest) -> None:
    xdp.put("/tmp/junk.bpf.o", b"\x7fELF but not really" * 10)
    junk = xdp.fails("ip link set dev vb xdpgeneric obj /tmp/junk.bpf.o sec xdp")
    assert "ELF" in junk.stderr, junk.stderr
    wrong = xdp.fails("ip link set dev vb xdpgeneric obj /tmp/tc_drop.bpf.o sec xdp")
    assert "doesn't contain sec xdp" in wrong.stderr, wrong.stderr
    assert not _xdp_attached(xdp)
    xdp.vm.check_console()
