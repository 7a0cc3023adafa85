"""The LANA functional blocks (kernel/blocks/) inside a real guest.

One guest for the whole module. Traffic needs no host networking: a veth pair a/b inside
the guest, `vlink ethernet hook b`, and exact frames sent on a from a raw AF_PACKET
socket, so every count below is exact. IPv6 is off on the pair so that the kernel sends
nothing of its own on it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from lab.grading.traffic import wait_settled
from lab.lana.procfs import parse_ppe, ppe_total

if TYPE_CHECKING:
    from conftest import Guest

pytestmark = pytest.mark.vm

PROC = "/proc/net/lana"
SENDER = "/tmp/lana_send.py"
BLOCK_MODULES = ["fb_eth", "fb_fwd", "fb_tee", "fb_counter", "fb_bpf", "fb_mirror"]

IPV4_FRAME_LEN = 100  # bytes on the wire (no FCS), as counted by fb_counter
ARP_FRAME_LEN = 42  # a bare ARP request: veth does not pad to 60

# Sends exact Ethernet frames from a raw socket: `lana_send.py IFACE N_IPV4 N_ARP IPV4_LEN`.
SENDER_SOURCE = r'''
import socket, struct, sys

def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

def ipv4_frame(seq, length):
    ip_len = length - 14
    udp = struct.pack("!HHHH", 4000, 4001, ip_len - 20, 0) + bytes(ip_len - 28)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, seq & 0xFFFF, 0, 64, 17, 0,
                      bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return b"\xff" * 6 + SRC + b"\x08\x00" + hdr + udp

def arp_frame():
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, SRC, bytes([10, 0, 0, 1]),
                      bytes(6), bytes([10, 0, 0, 2]))
    return b"\xff" * 6 + SRC + b"\x08\x06" + arp

SRC = bytes([0x02, 0, 0, 0, 0, 0x01])
iface, n_ipv4, n_arp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ipv4_len = int(sys.argv[4])
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
for i in range(max(n_ipv4, n_arp)):
    if i < n_ipv4:
        sock.send(ipv4_frame(i, ipv4_len))
    if i < n_arp:
        sock.send(arp_frame())
'''

IPV4_BPF = "ldh [12]\njeq #0x800, L1, L2\nL1: ret #0xffff\nL2: ret #0\n"
ARP_BPF = "ldh #proto\njeq #0x806, L1, L2\nL1: ret #0xffff\nL2: ret #0\n"


@pytest.fixture(scope="module")
def lana(guest: Guest) -> Guest:
    """The guest with lana.ko and the block modules loaded and a quiet veth pair a/b."""
    modules = " ".join(BLOCK_MODULES)
    guest.sh(f"modprobe lana && for m in {modules}; do modprobe $m || exit 1; done")
    guest.sh("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 "
             "&& ip link add name a type veth peer name b "
             "&& sysctl -qw net.ipv6.conf.a.disable_ipv6=1 net.ipv6.conf.b.disable_ipv6=1 "
             "&& ip link set dev a up && ip link set dev b up")
    guest.put(SENDER, SENDER_SOURCE)
    guest.put("/tmp/ipv4.bpf", IPV4_BPF)
    guest.put("/tmp/arp.bpf", ARP_BPF)
    return guest


class Stack:
    """Builds a LANA stack with fbctl/vlink and takes it down again in reverse order,
    also when the test failed halfway."""

    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self.undo: list[str] = []

    def hook(self, dev: str) -> None:
        self.guest.sh(f"vlink ethernet hook {dev}")
        self.undo.append(f"vlink ethernet unhook {dev}")

    def add(self, name: str, fb_type: str) -> None:
        self.guest.sh(f"fbctl add {name} {fb_type}")
        self.undo.append(f"fbctl rm {name}")

    def bind(self, upper: str, lower: str) -> None:
        self.guest.sh(f"fbctl bind {upper} {lower}")
        self.undo.append(f"fbctl unbind {upper} {lower}")

    def unbind(self, upper: str, lower: str) -> None:
        self.guest.sh(f"fbctl unbind {upper} {lower}")
        self.undo.remove(f"fbctl unbind {upper} {lower}")

    def teardown(self) -> list[str]:
        """Undo everything; return the commands that failed."""
        failed: list[str] = []
        for command in reversed(self.undo):
            if self.guest.run(command).exit_code != 0:
                failed.append(command)
        self.undo.clear()
        return failed


@pytest.fixture
def stack(lana: Guest) -> Iterator[Stack]:
    built = Stack(lana)
    yield built
    failed = built.teardown()
    lana.vm.check_console()
    assert not failed, f"teardown commands failed: {failed}"


def send(guest: Guest, ipv4: int = 0, arp: int = 0, ipv4_len: int = IPV4_FRAME_LEN) -> None:
    guest.sh(f"python3 {SENDER} a {ipv4} {arp} {ipv4_len}")


def read_counter(guest: Guest, name: str) -> tuple[int, int]:
    text = guest.sh(f"cat {PROC}/fblock/{name}")
    match = re.fullmatch(r"(\d+) (\d+)\n", text)
    assert match, f"counter {name} printed {text!r}, expected '<packets> <bytes>\\n'"
    return int(match.group(1)), int(match.group(2))


def wait_counter(guest: Guest, name: str, packets: int, timeout: float = 10.0) -> tuple[int, int]:
    """Wait until the counter shows `packets` (the softirq may lag the sender a bit),
    then read it once more so that late extra packets would show up too."""
    deadline = time.monotonic() + timeout
    value = read_counter(guest, name)
    while value[0] < packets and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read_counter(guest, name)
    time.sleep(0.3)
    return read_counter(guest, name)


def engine_drops(guest: Guest) -> int:
    """Frames that ended dropped in LANA so far, all CPUs (/proc/net/lana/ppe)."""
    return ppe_total(parse_ppe(guest.sh(f"cat {PROC}/ppe"))).drops


def ip_in_receives(guest: Guest) -> int:
    """IPv4 packets the Linux stack received (Ip: InReceives of /proc/net/snmp)."""
    lines = [line.split() for line in guest.sh("grep '^Ip:' /proc/net/snmp").splitlines()]
    return int(lines[1][lines[0].index("InReceives")])


def instance_lines(guest: Guest) -> list[str]:
    return [line for line in guest.sh(f"cat {PROC}/fblocks").splitlines() if line.strip()]


def test_eth_steals_traffic_into_the_stack(stack: Stack) -> None:
    guest = stack.guest
    stack.hook("b")
    stack.add("c1", "counter")
    stack.bind("c1", "b")
    before = ip_in_receives(guest)
    send(guest, ipv4=10, arp=3)
    assert wait_counter(guest, "c1", 13) == (13, 10 * IPV4_FRAME_LEN + 3 * ARP_FRAME_LEN)
    assert ip_in_receives(guest) == before, "stolen frames must not reach Linux's IPv4"


def test_eth_observe_mode_shares_traffic_with_linux(stack: Stack) -> None:
    guest = stack.guest
    stack.hook("b")
    stack.add("c1", "counter")
    stack.bind("c1", "b")
    guest.sh("fbctl set b mode=observe")
    before = ip_in_receives(guest)
    send(guest, ipv4=8)
    assert wait_counter(guest, "c1", 8) == (8, 8 * IPV4_FRAME_LEN)
    assert ip_in_receives(guest) - before == 8
    assert "mode observe" in guest.sh(f"cat {PROC}/fblock/b")
    result = guest.fails("fbctl set b mode=sometimes")
    assert "steal or mode=observe" in result.stdout + result.stderr
    guest.sh("fbctl set b mode=steal")


def test_eth_without_ingress_port_leaves_traffic_to_linux(stack: Stack) -> None:
    guest = stack.guest
    stack.hook("b")
    before = ip_in_receives(guest)
    send(guest, ipv4=5)
    assert wait_settled(lambda: ip_in_receives(guest) - before, expect=5) == 5


def test_eth_transmits_egress_frames(stack: Stack) -> None:
    """b -> mirror: frames come back out of b (eth's egress, dev_queue_xmit) to a, with
    the MAC addresses swapped by the mirror."""
    guest = stack.guest
    stack.hook("b")
    stack.add("m1", "mirror")
    stack.bind("m1", "b")
    rx_before = int(guest.sh("cat /sys/class/net/a/statistics/rx_packets"))
    guest.start("timeout 60 tcpdump -Q in -c 1 -nei a", "/tmp/mirror.txt", "listening on")
    send(guest, ipv4=10, arp=3)
    received = wait_settled(
        lambda: int(guest.sh("cat /sys/class/net/a/statistics/rx_packets")) - rx_before,
        expect=13)
    assert received == 13
    guest.wait_for("grep -q 'ff:ff:ff:ff:ff:ff > 02:00:00:00:00:01' /tmp/mirror.txt",
                   what="tcpdump on a to show a mirrored frame", log="/tmp/mirror.txt")


def test_eth_refuses_unknown_device_and_egress_binding(stack: Stack) -> None:
    guest = stack.guest
    result = guest.fails("vlink ethernet hook nosuchdev0")
    assert "no network device" in result.stdout + result.stderr
    stack.hook("b")
    stack.add("f1", "fwd")
    result = guest.fails("fbctl bind b f1")  # eth has no egress port
    assert "bottom of a stack" in result.stdout + result.stderr


def test_eth_refuses_a_bridge_port(stack: Stack) -> None:
    guest = stack.guest
    guest.sh("ip link add name br9 type bridge && ip link add name p9a type veth peer name p9b"
             " && ip link set dev p9a master br9")
    try:
        result = guest.fails("vlink ethernet hook p9a")
        assert "already has an rx handler" in result.stdout + result.stderr
    finally:
        guest.sh("ip link del dev p9a && ip link del dev br9")


def test_eth_survives_device_removal(stack: Stack) -> None:
    guest = stack.guest
    guest.sh("ip link add name gone0 type veth peer name gone1 && ip link set dev gone0 up")
    guest.sh("vlink ethernet hook gone0")
    guest.sh("ip link del dev gone0")
    assert "(gone)" in guest.sh(f"cat {PROC}/fblock/gone0")
    guest.sh("vlink ethernet unhook gone0")
    guest.vm.check_console()


def test_counter_counts_resets_and_rejects_bad_options(stack: Stack) -> None:
    guest = stack.guest
    stack.hook("b")
    stack.add("c1", "counter")
    stack.bind("c1", "b")
    send(guest, ipv4=6, ipv4_len=200)
    assert wait_counter(guest, "c1", 6) == (6, 1200)
    guest.sh("fbctl set c1 reset=1")
    assert read_counter(guest, "c1") == (0, 0)
    send(guest, arp=2)
    assert wait_counter(guest, "c1", 2) == (2, 2 * ARP_FRAME_LEN)
    assert guest.fails("fbctl set c1 colour=blue").exit_code != 0
    assert guest.fails("fbctl set c1 reset=maybe").exit_code != 0


def test_fwd_forwards_to_the_bound_port(stack: Stack) -> None:
    guest = stack.guest
    stack.hook("b")
    stack.add("f1", "fwd")
    stack.add("c1", "counter")
    stack.bind("f1", "b")
    stack.bind("c1", "f1")
    send(guest, ipv4=7, arp=4)
    assert wait_counter(guest, "c1", 11) == (11, 7 * IPV4_FRAME_LEN + 4 * ARP_FRAME_LEN)
    # A second block on the same ingress port: fwd has only one.
    stack.add("c2", "counter")
    result = guest.fails("fbctl bind c2 f1")
    assert result.exit_code != 0
    # Nothing bound above fwd: it drops, counter c1 sees nothing more.
    stack.unbind("c1", "f1")
    drops_before = engine_drops(guest)
    send(guest, ipv4=3)  # fwd drops them, with nothing above it
    assert wait_settled(lambda: engine_drops(guest) - drops_before, expect=3) == 3
    assert read_counter(guest, "c1") == (11, 7 * IPV4_FRAME_LEN + 4 * ARP_FRAME_LEN)


def test_tee_duplicates_to_both_ports(stack: Stack) -> None:
    guest = stack.guest
    stack.hook("b")
    stack.add("t1", "tee")
    stack.add("c1", "counter")
    stack.add("c2", "counter")
    stack.add("c3", "counter")
    stack.bind("t1", "b")
    stack.bind("c1", "t1")
    stack.bind("c2", "t1")
    assert guest.fails("fbctl bind c3 t1").exit_code != 0  # two ports only
    send(guest, ipv4=12, arp=5)
    expected = (17, 12 * IPV4_FRAME_LEN + 5 * ARP_FRAME_LEN)
    assert wait_counter(guest, "c1", 17) == expected
    assert wait_counter(guest, "c2", 17) == expected
    # One port left: the tee just forwards.
    stack.unbind("c1", "t1")
    send(guest, ipv4=4)
    assert wait_counter(guest, "c2", 21) == (21, expected[1] + 4 * IPV4_FRAME_LEN)
    assert read_counter(guest, "c1") == expected


def bpf_stack(stack: Stack) -> None:
    """b -> bpf f1 -> counter c1."""
    stack.hook("b")
    stack.add("f1", "bpf")
    stack.add("c1", "counter")
    stack.bind("f1", "b")
    stack.bind("c1", "f1")


def test_bpf_filters_ipv4_and_arp(stack: Stack) -> None:
    guest = stack.guest
    bpf_stack(stack)
    # No program: everything passes.
    send(guest, ipv4=2, arp=2)
    assert wait_counter(guest, "c1", 4)[0] == 4
    guest.sh("fbctl set c1 reset=1")
    guest.sh(f"bpfc /tmp/ipv4.bpf > {PROC}/fblock/f1")  # ldh [12]
    send(guest, ipv4=20, arp=7)
    assert wait_counter(guest, "c1", 20) == (20, 20 * IPV4_FRAME_LEN)
    guest.sh("fbctl set c1 reset=1")
    guest.sh(f"bpfc /tmp/arp.bpf > {PROC}/fblock/f1")  # ldh #proto (skb->protocol)
    send(guest, ipv4=20, arp=7)
    assert wait_counter(guest, "c1", 7) == (7, 7 * ARP_FRAME_LEN)
    # Read-back is bpfc's own form.
    assert guest.sh(f"cat {PROC}/fblock/f1") == guest.sh("bpfc /tmp/arp.bpf")


def test_bpf_accepts_tcpdump_ddd_form(stack: Stack) -> None:
    guest = stack.guest
    bpf_stack(stack)
    guest.sh(f"tcpdump -ddd ip 2>/dev/null > {PROC}/fblock/f1")
    send(guest, ipv4=9, arp=9)
    assert wait_counter(guest, "c1", 9) == (9, 9 * IPV4_FRAME_LEN)
    program = guest.sh(f"cat {PROC}/fblock/f1")
    assert program.startswith("{ 0x28, 0, 0, 0x0000000c },\n")


def test_bpf_refuses_malformed_program_and_keeps_the_old_one(stack: Stack) -> None:
    guest = stack.guest
    bpf_stack(stack)
    guest.sh(f"bpfc /tmp/ipv4.bpf > {PROC}/fblock/f1")
    loaded = guest.sh(f"cat {PROC}/fblock/f1")
    bad_texts = {
        "line 2": "{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 1 },\n{ 0x6, 0, 0, 0 },\n",
        "not a number": "{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, zero, 1, 0x800 },\n",
        "checker rejected": "{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 9, 0x800 },\n",
        "count line says": "3\n40 0 0 12\n6 0 0 0\n",
    }
    for expected_log, text in bad_texts.items():
        guest.put("/tmp/bad.txt", text)
        result = guest.fails(f"cat /tmp/bad.txt > {PROC}/fblock/f1")
        assert "Invalid argument" in result.stderr, result.stderr
        log = guest.sh("dmesg | grep 'bpf f1' | tail -n 1")
        assert expected_log in log and "old program kept" in log, log
        assert guest.sh(f"cat {PROC}/fblock/f1") == loaded
    # ... and the old program still filters.
    send(guest, ipv4=5, arp=5)
    assert wait_counter(guest, "c1", 5) == (5, 5 * IPV4_FRAME_LEN)


def test_replace_hands_counter_state_to_the_new_instance(stack: Stack) -> None:
    guest = stack.guest
    stack.hook("b")
    stack.add("c1", "counter")
    stack.bind("c1", "b")
    send(guest, ipv4=5)
    assert wait_counter(guest, "c1", 5) == (5, 5 * IPV4_FRAME_LEN)
    # c2 takes over c1's IDP, binding and counts; c1 is gone.
    guest.sh("fbctl add c2 counter && fbctl replace c1 c2")
    stack.undo = ["vlink ethernet unhook b", "fbctl rm c2", "fbctl unbind c2 b"]
    assert read_counter(guest, "c2") == (5, 5 * IPV4_FRAME_LEN)
    send(guest, ipv4=3)
    assert wait_counter(guest, "c2", 8) == (8, 8 * IPV4_FRAME_LEN)
    # --drop-priv: c3 keeps its own (zero) counts but gets c2's port.
    guest.sh("fbctl add c3 counter && fbctl replace c2 c3 --drop-priv")
    stack.undo = ["vlink ethernet unhook b", "fbctl rm c3", "fbctl unbind c3 b"]
    assert read_counter(guest, "c3") == (0, 0)
    send(guest, arp=4)
    assert wait_counter(guest, "c3", 4) == (4, 4 * ARP_FRAME_LEN)


def test_stack_changes_under_load_keep_the_kernel_sound(stack: Stack) -> None:
    """Thesis 6.1: bind/unbind, program swaps and mode switches while frames flow, with a
    tap (tcpdump) holding references to the frames eth steals."""
    guest = stack.guest
    stack.hook("b")
    for name, fb_type in [("t1", "tee"), ("f1", "bpf"), ("c1", "counter"), ("c2", "counter")]:
        stack.add(name, fb_type)
    stack.bind("t1", "b")
    stack.bind("f1", "t1")
    stack.bind("c2", "t1")
    stack.bind("c1", "f1")
    churn = (
        f"tcpdump -i b -w /dev/null 2>/dev/null & tcpdump_pid=$!; "
        f"python3 {SENDER} a 3000 3000 {IPV4_FRAME_LEN} & sender=$!; "
        "for i in 1 2 3 4 5 6 7 8; do "
        "  fbctl unbind c2 t1 && fbctl bind c2 t1 || exit 1; "
        f"  bpfc /tmp/arp.bpf > {PROC}/fblock/f1 && bpfc /tmp/ipv4.bpf > {PROC}/fblock/f1 "
        "  || exit 1; "
        "  fbctl set b mode=observe && fbctl set b mode=steal || exit 1; "
        "  fbctl set c1 reset=1 || exit 1; "
        "done; wait $sender; kill $tcpdump_pid; wait"
    )
    guest.sh(churn, timeout=300)
    guest.vm.check_console()
    # The stack still counts exactly after all that.
    guest.sh("fbctl set c1 reset=1 && fbctl set c2 reset=1")
    send(guest, ipv4=10, arp=10)
    assert wait_counter(guest, "c1", 10) == (10, 10 * IPV4_FRAME_LEN)
    assert wait_counter(guest, "c2", 20) == (20, 10 * IPV4_FRAME_LEN + 10 * ARP_FRAME_LEN)


def test_block_module_loads_on_demand(stack: Stack) -> None:
    """MODULE_ALIAS("lana-fb-fwd") lets `fbctl add` load fb_fwd.ko by itself."""
    guest = stack.guest
    guest.sh("rmmod fb_fwd")
    stack.add("f9", "fwd")
    assert "fb_fwd" in guest.sh("cut -d' ' -f1 /proc/modules").split()


def test_thesis_appendix_c3_configuration(lana: Guest) -> None:
    """eth0 -> tee fb2 -> bpf fb3 (IPv4) -> counter fb4, and -> bpf fb5 (ARP) -> counter fb6,
    built, measured and torn down in the thesis' order, then every module unloaded."""
    guest = lana
    setup = [
        "vlink ethernet hook b",
        "fbctl add fb2 tee", "fbctl add fb3 bpf", "fbctl add fb4 counter",
        "fbctl add fb5 bpf", "fbctl add fb6 counter",
        f"bpfc /tmp/ipv4.bpf > {PROC}/fblock/fb3",
        f"bpfc /tmp/arp.bpf > {PROC}/fblock/fb5",
        "fbctl bind fb2 b", "fbctl bind fb3 fb2", "fbctl bind fb5 fb2",
        "fbctl bind fb4 fb3", "fbctl bind fb6 fb5",
    ]
    for command in setup:
        guest.sh(command)
    assert len(instance_lines(guest)) == 6

    send(guest, ipv4=100, arp=37)
    assert wait_counter(guest, "fb4", 100) == (100, 100 * IPV4_FRAME_LEN)
    assert wait_counter(guest, "fb6", 37) == (37, 37 * ARP_FRAME_LEN)

    teardown = [
        "fbctl unbind fb6 fb5", "fbctl unbind fb4 fb3", "fbctl unbind fb5 fb2",
        "fbctl unbind fb3 fb2", "fbctl unbind fb2 b", "vlink ethernet unhook b",
        "fbctl rm fb2", "fbctl rm fb3", "fbctl rm fb4", "fbctl rm fb5", "fbctl rm fb6",
    ]
    for command in teardown:
        guest.sh(command)
    assert instance_lines(guest) == []
    for module in [*BLOCK_MODULES, "lana"]:
        guest.sh(f"rmmod {module}")
    assert "lana" not in guest.sh("cut -d' ' -f1 /proc/modules").split()
    guest.vm.check_console()
