"""ethvlink (kernel/blocks/fb_ethvlink.c) and `vlink ethernet add/rm` in a real guest.

One guest for the module. The carrier is vb of a quiet veth pair va/vb (IPv6 off); exact
frames are sent on va from a raw AF_PACKET socket, so every count in `ip -s link` of the
virtual device is exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from lab.grading.traffic import wait_settled

if TYPE_CHECKING:
    from conftest import Guest

pytestmark = pytest.mark.vm

HELPER = "/tmp/evl.py"
# `evl.py send IFACE N ETHERTYPE LEN` sends N frames; `evl.py sniff IFACE N SECONDS`
# prints the EtherTypes of what arrives; `evl.py pflana NAME N` binds a PF_LANA socket,
# waits for fbctl, receives N frames and sends N back (EtherType 0x0800 on purpose: the
# vlink must rewrite it to 0xAC00|ID).
HELPER_SOURCE = r'''
import ctypes, json, select, socket, struct, sys, time
SRC = bytes([2, 0, 0, 0, 0, 1])
def frame(etype, length):
    return b"\xff" * 6 + SRC + struct.pack("!H", etype) + bytes(length - 14)
cmd = sys.argv[1]
if cmd == "send":
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((sys.argv[2], 0))
    for _ in range(int(sys.argv[3])):
        s.send(frame(int(sys.argv[4], 0), int(sys.argv[5])))
elif cmd == "sniff":
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((sys.argv[2], 0))
    print("ready", flush=True)
    got, end = [], time.monotonic() + float(sys.argv[4])
    while len(got) < int(sys.argv[3]) and time.monotonic() < end:
        if select.select([s], [], [], 0.1)[0]:
            data, addr = s.recvfrom(2000)
            if addr[2] != socket.PACKET_OUTGOING:
                got.append(hex(struct.unpack("!H", data[12:14])[0]))
    print(json.dumps(got))
elif cmd == "pflana":
    s = socket.socket(19, socket.SOCK_RAW, 0)
    a = struct.pack("H32s", 19, sys.argv[2].encode())
    assert ctypes.CDLL(None).bind(s.fileno(), ctypes.c_char_p(a), len(a)) == 0
    while "egress 0\n" in open(f"/proc/net/lana/fblock/{sys.argv[2]}").read():
        time.sleep(0.01)
    print("bound", flush=True)
    got = []
    while len(got) < int(sys.argv[3]) and select.select([s], [], [], 10)[0]:
        got.append(hex(struct.unpack("!H", s.recv(2000)[12:14])[0]))
    for _ in got:
        s.send(frame(0x0800, 100))
    print(json.dumps(got))
'''


@pytest.fixture(scope="module")
def evl(guest: Guest) -> Iterator[Guest]:
    guest.sh("modprobe -a lana fb_eth fb_ethvlink fb_pflana "
             "&& sysctl -qw net.ipv6.conf.default.disable_ipv6=1 "
             "&& ip link add name va type veth peer name vb "
             "&& ip link set dev va up && ip link set dev vb up")
    guest.put(HELPER, HELPER_SOURCE)
    yield guest


def _stats(guest: Guest, dev: str) -> dict:
    info = json.loads(guest.sh(f"ip -s -j link show dev {dev}"))[0]
    return {"rx": info["stats64"]["rx"]["packets"], "tx": info["stats64"]["tx"]["packets"],
            "rx_bytes": info["stats64"]["rx"]["bytes"]}


def _received(guest: Guest, dev: str, before: dict) -> tuple[int, int]:
    """(frames, bytes) `dev` received since `before` (a _stats reading)."""
    now = _stats(guest, dev)
    return now["rx"] - before["rx"], now["rx_bytes"] - before["rx_bytes"]


@pytest.fixture
def vl5(evl: Guest) -> Iterator[Guest]:
    evl.sh("vlink ethernet add vl5 vb 5 && ip link set vl5 up")
    yield evl
    evl.run("vlink ethernet rm vl5")
    evl.vm.check_console()


def test_add_makes_a_device_ip_and_ethtool_see(vl5: Guest) -> None:
    assert "vl5" in vl5.sh("ip -o link show vl5")
    drv = vl5.sh("ethtool -i vl5")
    assert "driver: lana-ethvlink" in drv and "bus-info: vb:0xac05" in drv
    proc = vl5.sh("cat /proc/net/lana/fblock/vl5")
    assert "carrier vb" in proc and "ethertype 0xac05" in proc
    assert "vl5 " in vl5.sh("fbctl list")


def test_tagged_frames_show_in_ip_s_link(vl5: Guest) -> None:
    before = _stats(vl5, "vl5")
    vl5.sh(f"python3 {HELPER} send va 25 0xac05 100 && python3 {HELPER} send va 7 0xac06 100 "
           f"&& python3 {HELPER} send va 9 0x0800 100")
    got = wait_settled(lambda: _received(vl5, "vl5", before), expect=(25, 25 * 100))
    assert got == (25, 25 * 100), "only EtherType 0xAC05 belongs to vl5 (frames, bytes)"


def test_without_a_block_on_top_linux_gets_frames_on_the_device(vl5: Guest) -> None:
    vl5.start(f"python3 {HELPER} sniff vl5 5 30", "/tmp/evl_sniff.out", "ready")
    vl5.sh(f"python3 {HELPER} send va 5 0xac05 80")
    vl5.wait_for("grep -q '\\[' /tmp/evl_sniff.out", what="the sniffer's result",
                 log="/tmp/evl_sniff.out")
    out = vl5.sh("cat /tmp/evl_sniff.out")
    assert json.loads(out.splitlines()[-1]) == ["0xac05"] * 5


def test_pflana_on_top_of_a_vlink_both_ways(vl5: Guest) -> None:
    """socket <-> vl5 <-> vb ~ va: ingress to the socket, egress tagged 0xAC05 on va."""
    vl5.sh(f"(python3 {HELPER} pflana s5 10 > /tmp/evl_pf.out 2>&1 &); "
           "for i in $(seq 100); do test -e /proc/net/lana/fblock/s5 && break; sleep 0.1; done; "
           "fbctl bind s5 vl5")
    before = _stats(vl5, "vl5")
    vl5.start(f"python3 {HELPER} sniff va 10 30", "/tmp/evl_va.out", "ready")
    vl5.sh(f"python3 {HELPER} send va 10 0xac05 120")
    vl5.wait_for("grep -q '\\[' /tmp/evl_va.out && grep -q '\\[' /tmp/evl_pf.out",
                 what="the socket's and the sniffer's results", log="/tmp/evl_pf.out")
    out = vl5.sh("cat /tmp/evl_pf.out /tmp/evl_va.out")
    lines = [ln for ln in out.splitlines() if ln.startswith("[")]
    assert json.loads(lines[0]) == ["0xac05"] * 10, "the socket got the 10 frames"
    assert json.loads(lines[1]) == ["0xac05"] * 10, "its 10 replies left tagged 0xAC05"
    after = _stats(vl5, "vl5")
    assert after["rx"] - before["rx"] == 10 and after["tx"] - before["tx"] == 10


def test_linux_sending_on_the_device_is_tagged(vl5: Guest) -> None:
    vl5.start(f"python3 {HELPER} sniff va 3 30", "/tmp/evl_va2.out", "ready")
    vl5.sh(f"python3 {HELPER} send vl5 3 0x0800 60")
    vl5.wait_for("grep -q '\\[' /tmp/evl_va2.out", what="the sniffer's result",
                 log="/tmp/evl_va2.out")
    out = vl5.sh("cat /tmp/evl_va2.out")
    assert json.loads(out.splitlines()[-1]) == ["0xac05"] * 3


def test_two_vlinks_share_a_carrier(vl5: Guest) -> None:
    vl5.sh("vlink ethernet add vl6 vb 6 && ip link set vl6 up")
    try:
        b5, b6 = _stats(vl5, "vl5"), _stats(vl5, "vl6")
        vl5.sh(f"python3 {HELPER} send va 4 0xac05 100 && "
               f"python3 {HELPER} send va 6 0xac06 100")
        assert wait_settled(lambda: _received(vl5, "vl5", b5)[0], expect=4) == 4
        assert wait_settled(lambda: _received(vl5, "vl6", b6)[0], expect=6) == 6
    finally:
        vl5.sh("vlink ethernet rm vl6")


def test_bad_requests_fail_with_a_reason(vl5: Guest) -> None:
    cases = {
        "vlink ethernet add vlx nosuch 1": "no carrier device",
        "vlink ethernet add vlx vb 256": "ID must be a number 0..255",
        "vlink ethernet add vlx vb five": "ID must be a number 0..255",
        "vlink ethernet add vly vb 5": "already has a vlink device with this ID",
        "vlink ethernet add vl5 vb 7": "exists already",
        "vlink ethernet add averyveryverylongname vb 7": "at most 15 characters",
        "vlink ethernet add vlz vl5 7": "not a vlink device",
        "vlink ethernet add vlz va": "Usage",
        "fbctl add vlq ethvlink": "needs a carrier and an ID",
        "vlink ethernet hook vb": "already has an rx handler",
    }
    for command, reason in cases.items():
        result = vl5.fails(command)
        assert reason in result.stderr, (command, result.stderr)
    assert vl5.fails("ip link del vl5").exit_code != 0, "the device belongs to the instance"
    vl5.sh("ip netns add evl_ns")
    try:
        assert vl5.fails("ip link set vl5 netns evl_ns").exit_code != 0, "stays in init_net"
    finally:
        vl5.sh("ip netns del evl_ns")
    listing = vl5.sh("fbctl list")
    assert "vlx" not in listing and "vly" not in listing and "vlq" not in listing


def test_rm_removes_the_device_and_unhooks_the_carrier(evl: Guest) -> None:
    evl.sh("vlink ethernet add vl7 vb 7")
    evl.sh("vlink ethernet rm vl7")
    assert evl.fails("ip link show vl7").exit_code != 0
    # the carrier's rx handler went with the last vlink: eth can hook it now
    evl.sh("vlink ethernet hook vb && vlink ethernet unhook vb")
    evl.vm.check_console()


def test_carrier_going_away_leaves_an_idle_instance(evl: Guest) -> None:
    evl.sh("ip link add name vc type veth peer name vd && vlink ethernet add vl8 vd 8")
    evl.sh("ip link del vc")  # takes vd with it
    assert "carrier vd (gone)" in evl.sh("cat /proc/net/lana/fblock/vl8")
    evl.sh("vlink ethernet rm vl8")
    assert evl.fails("ip link show vl8").exit_code != 0
    evl.vm.check_console()


SPLICE_SOURCE = r'''
import ctypes, json, select, socket, struct, subprocess, sys, threading, time
N = int(sys.argv[1])
SO_RCVBUFFORCE = 33  # not in Python's socket module
s = socket.socket(19, socket.SOCK_RAW, 0)
# read only at the end: the queues must hold everything (FORCE: beyond rmem_max)
s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
a = struct.pack("H32s", 19, b"sp")
assert ctypes.CDLL(None).bind(s.fileno(), ctypes.c_char_p(a), len(a)) == 0
subprocess.run(["fbctl", "bind", "sp", "vl5"], check=True)
va = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0xAC05))
va.bind(("va", 0))
va.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
head_in = b"\xff" * 6 + bytes([2, 0, 0, 0, 0, 9]) + b"\xac\x05"
head_out = b"\xff" * 6 + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00"
changes = []
def change():
    for cmd in ("fbctl add f1 fwd", "fbctl insert f1 sp", "fbctl add f2 fwd",
                "fbctl replace f1 f2", "fbctl cut f2", "fbctl rm f2"):
        subprocess.run(cmd.split(), check=True)
        changes.append(cmd)
        time.sleep(0.05)
sent = [0]
def send_both():
    for i in range(N):          # one frame each way per step
        va.send(head_in + struct.pack("!I", i) + bytes(60))
        s.send(head_out + struct.pack("!I", i) + bytes(60))
        sent[0] = i + 1
        # paced: unpaced, veth's netif_rx backlog (1000 frames) overflows before
        # LANA ever sees the frames (softnet_stat drops, not LANA's)
        time.sleep(0.001)
t = threading.Thread(target=send_both)
t.start()
while sent[0] < 50 and t.is_alive():   # frames flow before the first change
    time.sleep(0.001)
change()
during = t.is_alive()       # the changes ended before the last frame was sent
t.join()
up, down = set(), set()
# the last frames may still be in flight: read until all are in or 5 s pass without one
while len(up) < N and select.select([s], [], [], 5)[0]:
    f = s.recv(2000)
    up.add(struct.unpack("!I", f[14:18])[0])
while len(down) < N and select.select([va], [], [], 5)[0]:
    f, addr = va.recvfrom(2000)
    if addr[2] != socket.PACKET_OUTGOING:
        down.add(struct.unpack("!I", f[14:18])[0])
print(json.dumps({"up": len(up), "down": len(down), "changes": changes,
                  "during": during}))
'''


def test_insert_replace_cut_lose_no_frame_either_way(vl5: Guest) -> None:
    """fbctl insert/replace/cut between a PF_LANA socket and vl5 while frames flow both
    ways at full speed: every frame arrives (the splice moves each port with two
    consecutive stores, so no frame meets an empty port)."""
    vl5.put("/tmp/evl_splice.py", SPLICE_SOURCE)
    out = vl5.sh("python3 /tmp/evl_splice.py 2000; cat /proc/net/lana/ppe", timeout=300)
    result = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    print(f"\nsplice under load: {result}")
    assert len(result["changes"]) == 6 and result["during"], \
        "all changes ran while the frames flowed"
    print(out)
    assert result["up"] == 2000, "frames up to the socket"
    assert result["down"] == 2000, "frames down from the socket"
    assert "f1" not in vl5.sh("fbctl list") and "f2" not in vl5.sh("fbctl list")
