"""The protocol blocks fb_arp and fb_icmp_echo answer ARP and ping from a Mininet host,
with Linux's own IP stack in the guest left out.

One lab for the whole module (the `bench` topology: vm1 at 10.0.0.1, Mininet host h1 at
10.0.0.100). vm1's eth0 is hooked into LANA (mode steal: Linux sees none of its frames)
under the stack

    eth0 -> arp0 (arp, ip=10.0.0.50) -> ping0 (icmp_echo, ip=10.0.0.50)

10.0.0.50 is on none of vm1's Linux interfaces, so only LANA can answer for it. The counts
are exact: ARP requests come from a raw socket in h1, the pings from iputils ping, and
Linux's counters in vm1 (/proc/net/snmp) do not move. Malformed IPv4 and the byte-by-byte
check of echo replies go through a second stack on a veth pair inside vm1 (the host's
bridge drops malformed IPv4 when br_netfilter is on, so h1 cannot deliver it).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_stack import PROC, snmp, trouble, wait_count

from lab.labrun import LabRun
from lab.lana.procfs import Responder, parse_responder
from lab.topology.loader import load_topology

pytestmark = pytest.mark.vm

LANA_IP = "10.0.0.50"  # answered by LANA only: not on any of vm1's Linux interfaces
H1_IP = "10.0.0.100"
PINGS = 20
ARPS = 10
BAD_COPIES = 3  # each malformed frame is sent this many times

STACK = (f"modprobe -a lana fb_eth fb_arp fb_icmp_echo && vlink ethernet hook eth0 && "
         f"fbctl add arp0 arp && fbctl set arp0 ip={LANA_IP} && "
         f"fbctl add ping0 icmp_echo && fbctl set ping0 ip={LANA_IP} && "
         f"fbctl bind arp0 eth0 && fbctl bind ping0 arp0")
UNSTACK = ("fbctl unbind ping0 arp0 && fbctl rm ping0 && fbctl unbind arp0 eth0 && "
           "fbctl rm arp0 && rmmod fb_icmp_echo fb_arp")

# Runs in h1 (the host's python3): `frames.py IFACE DST_MAC TARGET_IP arp N` sends N ARP
# requests for TARGET_IP and counts the replies; `... bad N` sends N copies of each
# malformed frame (BAD_KINDS). Prints JSON.
FRAMES_SOURCE = r'''
import json, socket, struct, sys, time

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

def mac(text):
    return bytes(int(x, 16) for x in text.split(":"))

iface, dst, target, cmd = sys.argv[1], mac(sys.argv[2]), sys.argv[3], sys.argv[4]
n = int(sys.argv[5])
src = mac(open("/sys/class/net/%s/address" % iface).read().strip())
src_ip = socket.inet_aton(sys.argv[6])
dst_ip = socket.inet_aton(target)
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
sock.bind((iface, 0))

def arp(op=1, hln=6, tip=dst_ip):
    return struct.pack("!HHBBH", 1, 0x0800, hln, 4, op) + src + src_ip + bytes(6) + tip

def echo(seq=1, payload=bytes(range(48))):
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4C41, seq) + payload
    return icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]

def ipv4(body, ver_ihl=0x45, tot_len=None, good_csum=True, options=b""):
    length = 20 + len(options) + len(body) if tot_len is None else tot_len
    hdr = struct.pack("!BBHHHBBH4s4s", ver_ihl, 0, length, 7, 0, 64, 1, 0, src_ip, dst_ip) + options
    csum = checksum(hdr) if good_csum else checksum(hdr) ^ 0x5555
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + body

def frame(ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload

if cmd == "arp":
    # N requests, then one sentinel from another sender address: replies leave vm1 in order,
    # so once the sentinel's reply is here any duplicate of the N replies would be too.
    sentinel_ip = bytes(src_ip[:3]) + bytes([src_ip[3] ^ 0x80])
    for _ in range(n):
        sock.send(b"\xff" * 6 + src + b"\x08\x06" + arp())
    sock.send(b"\xff" * 6 + src + b"\x08\x06" + arp()[:14] + sentinel_ip + bytes(6) + dst_ip)
    replies, sentinel, macs = 0, 0, set()
    deadline = time.monotonic() + 20
    sock.settimeout(1.0)
    while sentinel == 0 and time.monotonic() < deadline:
        try:
            data, addr = sock.recvfrom(2048)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING or len(data) < 42 or data[12:14] != b"\x08\x06":
            continue
        hrd, pro, hln, pln, op = struct.unpack("!HHBBH", data[14:22])
        if op != 2 or data[28:32] != dst_ip or data[32:38] != src:
            continue
        if data[38:42] == sentinel_ip:
            sentinel += 1
        elif data[38:42] == src_ip:
            replies += 1
            macs.add(data[22:28].hex(":") + "/" + data[6:12].hex(":"))
    print(json.dumps({"sent": n, "replies": replies, "sentinel": sentinel,
                      "macs": sorted(macs)}))
elif cmd == "echo":
    # one echo request without and one with IP options (4 NOPs); check each reply's bytes
    payload = bytes(range(56))
    requests = {1: frame(0x0800, ipv4(echo(1, payload))),
                2: frame(0x0800, ipv4(echo(2, payload), ver_ihl=0x46, options=b"\x01" * 4))}
    for data in requests.values():
        sock.send(data)
    checks = {}
    deadline = time.monotonic() + 20
    sock.settimeout(1.0)
    while len(checks) < len(requests) and time.monotonic() < deadline:
        try:
            data, addr = sock.recvfrom(4096)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING or data[12:14] != b"\x08\x00":
            continue
        ip = data[14:]
        ihl = (ip[0] & 15) * 4
        icmp = ip[ihl:struct.unpack("!H", ip[2:4])[0]]
        if ip[9] != 1 or icmp[0] != 0:
            continue
        seq = struct.unpack("!H", icmp[6:8])[0]
        checks[seq] = {
            "eth": [data[0:6] == src, data[6:12] == dst],
            "ip": [ip[0] == 0x45, checksum(ip[:20]) == 0, ip[8] == 64, ip[12:16] == dst_ip,
                   ip[16:20] == src_ip, struct.unpack("!H", ip[2:4])[0] == 20 + 8 + 56],
            "icmp": [icmp[1] == 0, checksum(icmp) == 0, icmp[4:6] == b"\x4c\x41",
                     icmp[8:] == payload],
        }
    print(json.dumps(checks))
elif cmd == "bad":
    good = ipv4(echo())
    kinds = {
        "arp_truncated": frame(0x0806, arp()[:18]),
        "arp_bad_hln": frame(0x0806, arp(hln=8)),
        "ipv4_bad_checksum": frame(0x0800, ipv4(echo(), good_csum=False)),
        "ipv4_ihl_4": frame(0x0800, ipv4(echo(), ver_ihl=0x44)),
        "ipv4_ihl_beyond_frame": frame(0x0800, ipv4(b"", ver_ihl=0x4F)),
        "ipv4_version_6": frame(0x0800, ipv4(echo(), ver_ihl=0x65)),
        "ipv4_tot_len_beyond_frame": frame(0x0800, ipv4(echo(), tot_len=1400)),
        "ipv4_tot_len_below_header": frame(0x0800, ipv4(echo(), tot_len=12)),
        "ipv4_truncated": frame(0x0800, good[:12]),
        "icmp_bad_checksum": frame(0x0800, ipv4(echo()[:2] + b"\x12\x34" + echo()[4:])),
        "icmp_truncated": frame(0x0800, ipv4(echo()[:4])),
    }
    for _ in range(n):
        for data in kinds.values():
            sock.send(data)
    print(json.dumps({kind: n for kind in kinds}))
'''
ARP_BAD = ("arp_truncated", "arp_bad_hln")


@pytest.fixture(scope="module")
def lab(image) -> Iterator[LabRun]:
    run = LabRun(load_topology("bench"), image)
    run.up()
    try:
        yield run
        run.vms["vm1"].check_console()
    finally:
        run.down()


@pytest.fixture(scope="module")
def frames_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The raw-frame helper, on the host's file system (Mininet hosts share it)."""
    path = tmp_path_factory.mktemp("protocol-blocks") / "frames.py"
    path.write_text(FRAMES_SOURCE)
    path.chmod(0o644)
    path.parent.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def stack(lab: LabRun) -> LabRun:
    """vm1 with eth0 -> arp0 -> ping0 answering for LANA_IP."""
    lab.sh("vm1", STACK)
    return lab


@pytest.fixture
def fresh(stack: LabRun) -> Iterator[LabRun]:
    """The stack with zeroed counts and h1's neighbour cache flushed; after the test, the
    guest's kernel log holds no trouble."""
    stack.sh("vm1", "fbctl set arp0 reset=1 && fbctl set ping0 reset=1")
    stack.forget_neighbours()
    yield stack
    assert not trouble(stack), f"kernel trouble in vm1: {trouble(stack)}"


def block_stats(lab: LabRun, name: str) -> Responder:
    """The block's proc file: its addresses and counts."""
    return parse_responder(lab.sh("vm1", f"cat {PROC}/{name}"))


def addresses(lab: LabRun, name: str) -> str:
    """The addresses as the proc file's ip line shows them: 'A,B' or 'none'."""
    return ",".join(block_stats(lab, name).addresses) or "none"


def counts(lab: LabRun, name: str) -> dict[str, int]:
    return block_stats(lab, name).counts


LINUX_COUNTERS = ("Ip.InReceives", "Icmp.InMsgs", "Icmp.InEchos", "Icmp.OutEchoReps")


def linux_counters(lab: LabRun) -> dict[str, int]:
    values = snmp(lab)
    return {key: values[key] for key in LINUX_COUNTERS}


def eth0_mac(lab: LabRun) -> str:
    return lab.sh("vm1", "cat /sys/class/net/eth0/address").strip()


def send_frames(lab: LabRun, script: Path, command: str, n: int) -> dict:
    out = lab.sh("h1", f"python3 {shlex.quote(str(script))} h1-eth0 {eth0_mac(lab)} "
                       f"{LANA_IP} {command} {n} {H1_IP}", timeout=120)
    return json.loads(out.strip().splitlines()[-1])


def test_lana_address_is_not_linuxs(stack: LabRun) -> None:
    linux_addresses = stack.sh("vm1", "ip -4 -o addr show")
    assert LANA_IP not in linux_addresses and "10.0.0.1/" in linux_addresses
    assert addresses(stack, "arp0") == LANA_IP
    assert addresses(stack, "ping0") == LANA_IP
    listed = stack.sh("vm1", "fbctl list")
    assert re.search(r"^arp0\s+arp\b", listed, re.M), listed
    assert re.search(r"^ping0\s+icmp_echo\b", listed, re.M), listed


def test_arp_requests_answered_with_eth0_mac(fresh: LabRun, frames_script: Path) -> None:
    lab = fresh
    before = linux_counters(lab)
    mac = eth0_mac(lab)
    result = send_frames(lab, frames_script, "arp", ARPS)
    assert (result["replies"], result["sentinel"]) == (ARPS, 1), result
    # sender hardware address and Ethernet source are both vm1's eth0
    assert result["macs"] == [f"{mac}/{mac}"], result
    stats = counts(lab, "arp0")
    # the N requests and the sentinel
    assert (stats["requests"], stats["replies"], stats["malformed"]) == (ARPS + 1, ARPS + 1, 0)
    assert counts(lab, "ping0")["requests"] == 0
    assert linux_counters(lab) == before


def test_ping_answered_by_lana_not_linux(fresh: LabRun) -> None:
    lab = fresh
    before = linux_counters(lab)
    out = lab.sh("h1", f"ping -c {PINGS} -i 0.2 -W 5 {LANA_IP}", timeout=120)
    assert f"{PINGS} packets transmitted, {PINGS} received" in out, out
    assert "BAD CHECKSUM" not in out and "DUP" not in out and "truncated" not in out, out
    assert len(re.findall(r"icmp_seq=\d+ ttl=64 ", out)) == PINGS, out
    # h1 resolved the LANA address through arp0, to vm1's eth0 MAC
    neigh = lab.sh("h1", f"ip neigh show {LANA_IP}")
    assert eth0_mac(lab) in neigh, neigh
    ping0 = counts(lab, "ping0")
    assert (ping0["requests"], ping0["replies"], ping0["malformed"]) == (PINGS, PINGS, 0)
    arp0 = counts(lab, "arp0")
    assert arp0["requests"] >= 1 and arp0["replies"] == arp0["requests"], arp0
    assert arp0["passed"] >= PINGS, arp0  # the echo requests went up through arp0
    # Linux in vm1 received and answered nothing
    assert linux_counters(lab) == before


def test_ping_with_a_large_payload(fresh: LabRun) -> None:
    """1400 bytes of data: the reply carries the whole payload back (checked by ping)."""
    out = fresh.sh("h1", f"ping -c 3 -i 0.2 -W 5 -s 1400 -p 4c414e41 {LANA_IP}")
    assert "3 packets transmitted, 3 received" in out and "1408 bytes from" in out, out
    assert "wrong data" not in out and "BAD CHECKSUM" not in out, out
    assert counts(fresh, "ping0")["replies"] == 3


BAD_SETTINGS = [
    ("ip=10.0.0", "bad address"),
    ("ip=10.0.0.256", "bad address"),
    ("ip=10.0.0.1.2", "bad address"),
    ("ip=10.0.0.1,", "bad address"),
    ("ip=,10.0.0.1", "bad address"),
    ("ip=ten.0.0.1", "bad address"),
    ("ip= 10.0.0.1", "bad address"),
    ("ip=10.0.0.1/24", "bad address"),
    ("ip=224.0.0.1", "not a unicast address"),
    ("ip=255.255.255.255", "not a unicast address"),
    ("ip=0.0.0.0", "not a unicast address"),
    ("ip=127.0.0.1", "not a unicast address"),
    ("ip=" + ",".join(f"10.0.1.{i}" for i in range(1, 10)), "too many addresses"),
    ("address=10.0.0.1", "unknown option"),
    ("reset=0", "bad value"),
    ("reset=maybe", "bad value"),
    ("ip", "key=value"),
]


@pytest.mark.parametrize("block", ["arp0", "ping0"])
def test_bad_settings_refused_old_addresses_kept(fresh: LabRun, block: str) -> None:
    lab = fresh
    script = "".join(f"fbctl set {block} {shlex.quote(opt)}; echo \"rc=$?\"\n"
                     for opt, _ in BAD_SETTINGS)
    out = lab.sh("vm1", f"{{\n{script}}} 2>&1")
    results = re.findall(r"(.*?)rc=(\d+)\n", out, re.S)
    assert len(results) == len(BAD_SETTINGS), out
    for (opt, message), (text, code) in zip(BAD_SETTINGS, results, strict=True):
        assert code == "1", f"{opt}: {text}"
        assert message in text and "fbctl: set" in text, f"{opt}: {text}"
    assert addresses(lab, block) == LANA_IP
    # good settings: several addresses, shown in order, duplicates once; then back
    lab.sh("vm1", f"fbctl set {block} ip=10.0.0.51,{LANA_IP},10.0.0.51")
    assert addresses(lab, block) == f"10.0.0.51,{LANA_IP}"
    lab.sh("vm1", f"fbctl set {block} ip=none")
    assert addresses(lab, block) == "none"
    lab.sh("vm1", f"fbctl set {block} ip={LANA_IP}")
    assert addresses(lab, block) == LANA_IP


VETH_STACK = (f"sysctl -qw net.ipv6.conf.default.disable_ipv6=1 && "
              f"ip link add name va type veth peer name vb && "
              f"ip link set dev va up && ip link set dev vb up && vlink ethernet hook vb && "
              f"fbctl add arpv arp && fbctl set arpv ip={LANA_IP} && "
              f"fbctl add pingv icmp_echo && fbctl set pingv ip={LANA_IP} && "
              f"fbctl bind arpv vb && fbctl bind pingv arpv")
VETH_UNSTACK = ("fbctl unbind pingv arpv; fbctl rm pingv; fbctl unbind arpv vb; fbctl rm arpv; "
                "vlink ethernet unhook vb; ip link del va")
GUEST_FRAMES = "/tmp/frames.py"


@pytest.fixture
def veth(fresh: LabRun) -> Iterator[LabRun]:
    """A second stack in vm1, vb -> arpv -> pingv, fed from the raw socket on a veth peer
    va in the guest. Malformed IPv4 cannot come from h1: the host's bridge drops it before
    the VM when br_netfilter is on (bridge-nf-call-iptables validates IPv4 headers)."""
    fresh.vms["vm1"].put_file(GUEST_FRAMES, FRAMES_SOURCE.encode())
    fresh.sh("vm1", VETH_STACK)
    try:
        yield fresh
    finally:
        fresh.sh("vm1", VETH_UNSTACK)


def guest_frames(lab: LabRun, command: str, n: int) -> dict:
    vb_mac = lab.sh("vm1", "cat /sys/class/net/vb/address").strip()
    out = lab.sh("vm1", f"python3 {GUEST_FRAMES} va {vb_mac} {LANA_IP} {command} {n} {H1_IP}")
    return json.loads(out.strip().splitlines()[-1])


def test_echo_reply_bytes(veth: LabRun) -> None:
    """Addresses swapped, TTL 64, IP options dropped, both checksums right, identifier,
    sequence and data unchanged: checked byte by byte on the veth peer."""
    checks = guest_frames(veth, "echo", 1)
    assert sorted(checks) == ["1", "2"], checks
    for seq, check in checks.items():
        assert all(ok for part in check.values() for ok in part), (seq, check)
    assert counts(veth, "pingv")["replies"] == 2


def test_malformed_frames_counted_and_dropped(veth: LabRun) -> None:
    lab = veth
    before = linux_counters(lab)
    sent = guest_frames(lab, "bad", BAD_COPIES)
    arp_bad = sum(n for kind, n in sent.items() if kind in ARP_BAD)
    ip_bad = sum(n for kind, n in sent.items() if kind not in ARP_BAD)
    assert (arp_bad, ip_bad) == (2 * BAD_COPIES, 9 * BAD_COPIES)
    assert wait_count(lab, "pingv", "malformed", ip_bad) == ip_bad
    assert wait_count(lab, "arpv", "malformed", arp_bad) == arp_bad
    arpv, pingv = counts(lab, "arpv"), counts(lab, "pingv")
    assert (arpv["requests"], arpv["replies"], arpv["passed"]) == (0, 0, ip_bad), arpv
    assert (pingv["requests"], pingv["replies"], pingv["passed"]) == (0, 0, 0), pingv
    assert linux_counters(lab) == before
    # the stacks still answer
    assert guest_frames(lab, "arp", 2)["replies"] == 2
    out = lab.sh("h1", f"ping -c 3 -i 0.2 -W 5 {LANA_IP}")
    assert "3 packets transmitted, 3 received" in out, out
    assert counts(lab, "ping0")["replies"] == 3


def test_unload_and_reload_while_pinged(fresh: LabRun, tmp_path: Path) -> None:
    """While h1 pings: change the address lists, then take the whole stack down (blocks
    removed, modules unloaded) and up again, twice, the second time with the modules
    loaded on demand by `fbctl add` (their lana-fb-<type> aliases). No oops, and the
    rebuilt stack answers."""
    lab = fresh
    log = tmp_path / "ping.log"
    pid = tmp_path / "ping.pid"
    tmp_path.chmod(0o755)
    lab.sh("h1", f"ping -c 600 -i 0.1 -W 1 {LANA_IP} > {log} 2>&1 & echo $! > {pid}")
    try:
        assert wait_count(lab, "ping0", "replies", 2) >= 2
        for value in ("10.0.0.51", f"10.0.0.51,{LANA_IP}", "none", LANA_IP):
            lab.sh("vm1", f"fbctl set arp0 ip={value} && fbctl set ping0 ip={value}")
        replies = counts(lab, "ping0")["replies"]
        assert wait_count(lab, "ping0", "replies", replies + 2) >= replies + 2
        for stack in (STACK, STACK.replace(" fb_arp fb_icmp_echo", "")):
            lab.sh("vm1", f"{UNSTACK} && vlink ethernet unhook eth0 && {stack}")
            assert wait_count(lab, "ping0", "replies", 2) >= 2  # counts start at 0 again
        assert lab.sh("vm1", "lsmod | grep -cE '^fb_(arp|icmp_echo) '").strip() == "2"
    finally:
        # ends the ping started above (SIGINT: it prints its summary)
        out = lab.sh("h1", f"kill -INT $(cat {pid}); "
                           f"while kill -0 $(cat {pid}) 2>/dev/null; do sleep 0.2; done; "
                           f"cat {log}", timeout=60)
    received = re.search(r"(\d+) received", out)
    assert received and int(received.group(1)) > 0, out
    assert addresses(lab, "ping0") == LANA_IP
    final = lab.sh("h1", f"ping -c 2 -i 0.2 -W 5 {LANA_IP}")
    assert "2 packets transmitted, 2 received" in final, final
