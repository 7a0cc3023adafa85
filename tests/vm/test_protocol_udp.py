"""fb_udp (UDP demultiplexing by destination port) serving a UDP echo through a PF_LANA
socket, and fb_ratelimit (a token bucket), in a guest.

One lab for the whole module (the `bench` topology: vm1 at 10.0.0.1, Mininet host h1 at
10.0.0.100). vm1's eth0 is hooked into LANA (mode steal: Linux sees none of its frames)
under the stack

    eth0 -> arp0 (arp) -> ping0 (icmp_echo) -> u7 (udp, port=7) -> echo7 (PF_LANA socket)

all for 10.0.0.50, an address on none of vm1's Linux interfaces. echo7 is the socket of
`udpecho` (kernel/apps/udpecho), which answers every datagram it reads. Linux's UDP
counters in vm1 (/proc/net/snmp) do not move. Malformed UDP and the rate limiter's exact
counts go through stacks on a veth pair inside vm1, fed by a raw socket on the peer (the
host's bridge may drop malformed IPv4 before the VM; a sender in the guest also sends
back to back, which the rate limiter's exact counts need).
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_stack import PROC, snmp, trouble, wait_count

from lab.labrun import LabRun
from lab.topology.loader import load_topology

pytestmark = pytest.mark.vm

LANA_IP = "10.0.0.50"  # answered by LANA only
H1_IP = "10.0.0.100"
ECHOES = 20

STACK = (f"modprobe -a lana fb_eth fb_arp fb_icmp_echo fb_udp fb_pflana && "
         f"vlink ethernet hook eth0 && "
         f"fbctl add arp0 arp && fbctl set arp0 ip={LANA_IP} && "
         f"fbctl add ping0 icmp_echo && fbctl set ping0 ip={LANA_IP} && "
         f"fbctl add u7 udp && fbctl set u7 port=7 && "
         f"fbctl bind arp0 eth0 && fbctl bind ping0 arp0 && fbctl bind u7 ping0")

# Runs in h1: `udp_client.py DST PORT N` sends N datagrams one after the other, each
# waiting for its echo; prints JSON with the echoes that came back right.
CLIENT_SOURCE = r'''
import json, socket, sys

dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(10.0)
good, bad, lost = 0, [], 0
for i in range(n):
    payload = b"LANA echo %03d " % i + bytes(range(i, i + 40))
    sock.sendto(payload, (dst, port))
    try:
        data, addr = sock.recvfrom(2048)
    except socket.timeout:
        lost += 1
        continue
    if data == payload and addr == (dst, port):
        good += 1
    else:
        bad.append([data.hex(), list(addr)])
print(json.dumps({"sent": n, "good": good, "bad": bad, "lost": lost}))
'''

# Runs in vm1 on the veth peer va: `frames.py IFACE DST_MAC cmd N` (cmd: udp, burst).
FRAMES_SOURCE = r'''
import json, socket, struct, sys, time

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

iface, cmd, n = sys.argv[1], sys.argv[3], int(sys.argv[4])
dst = bytes.fromhex(sys.argv[2].replace(":", ""))
src = bytes.fromhex(open("/sys/class/net/%s/address" % iface).read().strip().replace(":", ""))
src_ip, dst_ip = socket.inet_aton("10.0.0.100"), socket.inet_aton("10.0.0.50")
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
sock.bind((iface, 0))

def udp(dport, payload=b"x" * 32, ulen=None, good_csum=True):
    length = 8 + len(payload) if ulen is None else ulen
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, 8 + len(payload))
    hdr = struct.pack("!HHHH", 40000, dport, length, 0)
    csum = checksum(pseudo + hdr + payload) or 0xFFFF
    if not good_csum:
        csum ^= 0x5555
    return hdr[:6] + struct.pack("!H", csum) + payload

def ipv4(body, proto=17):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 7, 0, 64, proto, 0, src_ip, dst_ip)
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + body

def frame(payload, ethertype=0x0800):
    return dst + src + struct.pack("!H", ethertype) + payload

if cmd == "udp":
    kinds = {
        "matched": frame(ipv4(udp(7))),
        "matched_no_checksum": frame(ipv4(udp(7)[:6] + b"\0\0" + udp(7)[8:])),
        "other_port": frame(ipv4(udp(9))),
        "other_protocol": frame(ipv4(udp(7), proto=253)),
        "other_ethertype": frame(b"\0" * 46, ethertype=0x88B5),
        "malformed_udp_len_beyond_packet": frame(ipv4(udp(7, ulen=200))),
        "malformed_udp_len_below_header": frame(ipv4(udp(7, ulen=4))),
        "malformed_udp_truncated_header": frame(ipv4(udp(7)[:5])),
        "malformed_udp_bad_checksum": frame(ipv4(udp(7, good_csum=False))),
        "malformed_ipv4_truncated": frame(ipv4(udp(7))[:16]),
    }
    for _ in range(n):
        for data in kinds.values():
            sock.send(data)
    print(json.dumps({kind: n for kind in kinds}))
elif cmd == "burst":
    data = frame(b"\0" * 46, ethertype=0x88B5)
    start = time.monotonic()
    for _ in range(n):
        sock.send(data)
    print(json.dumps({"sent": n, "seconds": time.monotonic() - start}))
elif cmd == "trickle":
    # one frame every 50 ms until the limiter r0 passes one more, for at most n seconds
    def passed():
        for line in open("/proc/net/lana/fblock/r0"):
            if line.startswith("passed "):
                return int(line.split()[1])
    data = frame(b"\0" * 46, ethertype=0x88B5)
    first, start, sent = passed(), time.monotonic(), 0
    while passed() == first and time.monotonic() - start < n:
        sock.send(data)
        sent += 1
        time.sleep(0.05)
    print(json.dumps({"sent": sent, "passed": passed() - first,
                      "seconds": time.monotonic() - start}))
'''
GUEST_FRAMES = "/tmp/udp_frames.py"
VETH = ("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 && "
        "ip link add name va type veth peer name vb && "
        "ip link set dev va up && ip link set dev vb up && vlink ethernet hook vb")
UNVETH = "vlink ethernet unhook vb; ip link del va"


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
def client_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The UDP client, on the host's file system (Mininet hosts share it)."""
    path = tmp_path_factory.mktemp("protocol-udp") / "udp_client.py"
    path.write_text(CLIENT_SOURCE)
    path.chmod(0o644)
    path.parent.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def stack(lab: LabRun) -> LabRun:
    lab.sh("vm1", STACK)
    lab.vms["vm1"].put_file(GUEST_FRAMES, FRAMES_SOURCE.encode())
    return lab


@pytest.fixture
def fresh(stack: LabRun) -> Iterator[LabRun]:
    """Zeroed counts, h1's neighbour cache flushed; afterwards a clean kernel log."""
    stack.sh("vm1", "fbctl set u7 reset=1 && fbctl set ping0 reset=1")
    stack.forget_neighbours()
    yield stack
    assert not trouble(stack), f"kernel trouble in vm1: {trouble(stack)}"


def block_file(lab: LabRun, name: str) -> dict[str, str]:
    """A udp or ratelimit proc file: `key value` lines."""
    values: dict[str, str] = {}
    for line in lab.sh("vm1", f"cat {PROC}/{name}").splitlines():
        key, value = line.split()
        values[key] = value
    return values


def counts(lab: LabRun, name: str) -> dict[str, int]:
    return {key: int(value) for key, value in block_file(lab, name).items()
            if value.isdigit() and key not in ("port", "rate", "burst")}


LINUX_COUNTERS = ("Ip.InReceives", "Udp.InDatagrams", "Udp.NoPorts", "Udp.InErrors",
                  "Udp.OutDatagrams")


def linux_counters(lab: LabRun) -> dict[str, int]:
    values = snmp(lab)
    return {key: values[key] for key in LINUX_COUNTERS}


def wait_listed(lab: LabRun, name: str, timeout: float = 30.0) -> None:
    """Wait until `fbctl list` shows the instance (a socket bound to its name)."""
    deadline = time.monotonic() + timeout
    while not re.search(rf"^{name}\s", lab.sh("vm1", "fbctl list"), re.M):
        assert time.monotonic() < deadline, f"{name} never appeared in fbctl list"
        time.sleep(0.2)


def guest_frames(lab: LabRun, command: str, n: int) -> dict:
    vb_mac = lab.sh("vm1", "cat /sys/class/net/vb/address").strip()
    out = lab.sh("vm1", f"python3 {GUEST_FRAMES} va {vb_mac} {command} {n}")
    return json.loads(out.strip().splitlines()[-1])


def refused(lab: LabRun, block: str, settings: list[tuple[str, str]]) -> None:
    """Every setting fails with exit code 1 and fbctl prints the kernel's message."""
    script = "".join(f"fbctl set {block} {shlex.quote(opt)}; echo \"rc=$?\"\n"
                     for opt, _ in settings)
    out = lab.sh("vm1", f"{{\n{script}}} 2>&1")
    results = re.findall(r"(.*?)rc=(\d+)\n", out, re.S)
    assert len(results) == len(settings), out
    for (opt, message), (text, code) in zip(settings, results, strict=True):
        assert code == "1", f"{opt}: {text}"
        assert message in text and "fbctl: set" in text, f"{opt}: {text}"


def test_udp_echo_through_pflana(fresh: LabRun, client_script: Path) -> None:
    lab = fresh
    before = linux_counters(lab)
    start_udpecho(lab, "echo7", ECHOES)
    lab.sh("vm1", "fbctl bind echo7 u7")
    out = lab.sh("h1", f"python3 {shlex.quote(str(client_script))} {LANA_IP} 7 {ECHOES}",
                 timeout=300)
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"sent": ECHOES, "good": ECHOES, "bad": [], "lost": 0}, result
    assert udpecho_result(lab, "echo7") == {"echoed": ECHOES, "ignored": 0}
    u7 = counts(lab, "u7")
    assert (u7["matched"], u7["malformed"]) == (ECHOES, 0), u7
    assert counts(lab, "ping0")["passed"] >= ECHOES
    # udpecho exited: its instance is gone, unbound from u7
    assert not re.search(r"^echo7\s", lab.sh("vm1", "fbctl list"), re.M)
    assert linux_counters(lab) == before


def start_udpecho(lab: LabRun, name: str, count: int) -> None:
    """udpecho NAME COUNT in vm1, in the background; /tmp/NAME.json when it is done."""
    lab.sh("vm1", f"rm -f /tmp/{name}.json; setsid sh -c 'udpecho {name} {count} "
                  f"> /tmp/{name}.tmp 2>&1; mv /tmp/{name}.tmp /tmp/{name}.json' "
                  "< /dev/null > /dev/null 2>&1 &")
    wait_listed(lab, name)


def udpecho_result(lab: LabRun, name: str) -> dict:
    deadline = time.monotonic() + 30
    while "echoed" not in lab.sh("vm1", f"cat /tmp/{name}.json 2>/dev/null || true"):
        assert time.monotonic() < deadline, f"udpecho {name} did not finish"
        time.sleep(0.2)
    result: dict = json.loads(lab.sh("vm1", f"cat /tmp/{name}.json"))
    return result


def test_two_ports_through_a_chain(fresh: LabRun, client_script: Path) -> None:
    """u9 (port 9) on top of u7 as the next link, a udpecho on each: both ports echo, the
    replies of port 9 go down through u7; a datagram for port 1234 is dropped by u9."""
    lab = fresh
    n = 5
    start_udpecho(lab, "echo7", n)
    start_udpecho(lab, "echo9", n)
    lab.sh("vm1", "fbctl add u9 udp && fbctl set u9 port=9 && fbctl bind u9 u7 && "
                  "fbctl bind echo7 u7 && fbctl bind echo9 u9")
    try:
        for port in (7, 9):
            out = lab.sh("h1", f"python3 {shlex.quote(str(client_script))} {LANA_IP} "
                               f"{port} {n}", timeout=300)
            result = json.loads(out.strip().splitlines()[-1])
            assert result == {"sent": n, "good": n, "bad": [], "lost": 0}, (port, result)
        assert udpecho_result(lab, "echo7") == {"echoed": n, "ignored": 0}
        assert udpecho_result(lab, "echo9") == {"echoed": n, "ignored": 0}
        lab.sh("h1", "python3 -c \"import socket; s = socket.socket(socket.AF_INET, "
                     f"socket.SOCK_DGRAM); [s.sendto(b'x', ('{LANA_IP}', 1234)) "
                     "for _ in range(3)]\"")
        assert wait_count(lab, "u9", "dropped", 3) >= 3
        u7, u9 = counts(lab, "u7"), counts(lab, "u9")
        assert (u7["matched"], u9["matched"], u7["malformed"], u9["malformed"]) == \
            (n, n, 0, 0), (u7, u9)
        assert u7["other"] >= n + 3 and u9["other"] >= 3, (u7, u9)
    finally:
        lab.sh("vm1", "fbctl unbind u9 u7; fbctl rm u9")


def test_ping_still_answered_below_udp(fresh: LabRun) -> None:
    out = fresh.sh("h1", f"ping -c 3 -i 0.2 -W 5 {LANA_IP}")
    assert "3 packets transmitted, 3 received" in out, out
    assert counts(fresh, "ping0")["replies"] == 3


@pytest.fixture
def veth(fresh: LabRun) -> Iterator[LabRun]:
    fresh.sh("vm1", VETH)
    try:
        yield fresh
    finally:
        fresh.sh("vm1", UNVETH)


def test_udp_demux_and_malformed_counted(veth: LabRun) -> None:
    """vb -> uv (port 7) -> uw (port 9, the next link): exact counts per kind; nothing is
    bound on top of either, so what they match they count and drop."""
    lab = veth
    copies = 3
    lab.sh("vm1", "modprobe fb_udp && fbctl add uv udp && fbctl set uv port=7 && "
                  "fbctl add uw udp && fbctl set uw port=9 && "
                  "fbctl bind uv vb && fbctl bind uw uv")
    try:
        sent = guest_frames(lab, "udp", copies)
        malformed = sum(n for kind, n in sent.items() if kind.startswith("malformed"))
        assert malformed == 5 * copies
        assert wait_count(lab, "uv", "malformed", malformed) == malformed
        other = 3 * copies  # port 9, protocol 253, EtherType 0x88B5
        assert wait_count(lab, "uw", "other", 2 * copies) == 2 * copies
        uv, uw = counts(lab, "uv"), counts(lab, "uw")
        assert uv == {"matched": 2 * copies, "other": other, "malformed": malformed,
                      "dropped": 2 * copies}, uv
        assert uw == {"matched": copies, "other": 2 * copies, "malformed": 0,
                      "dropped": 3 * copies}, uw
        # a second udp block on top of the chain's end is refused; so is a second app
        out = lab.sh("vm1", "fbctl add ux udp; fbctl bind ux uv 2>&1; echo rc=$?; "
                            "fbctl rm ux")
        assert "rc=1" in out and "(the next link of the chain) is already bound" in out, out
    finally:
        lab.sh("vm1", "fbctl unbind uw uv; fbctl unbind uv vb; fbctl rm uw; fbctl rm uv")


UDP_BAD_SETTINGS = [
    ("port=0", "bad port"),
    ("port=65536", "bad port"),
    ("port=-1", "bad port"),
    ("port=seven", "bad port"),
    ("port=", "bad port"),
    ("port=7x", "bad port"),
    ("port=99999999999999999999", "bad port"),
    ("proto=udp", "unknown option"),
    ("port", "key=value"),
    ("reset=0", "bad value"),
]


def test_udp_bad_settings_refused_old_port_kept(fresh: LabRun) -> None:
    refused(fresh, "u7", UDP_BAD_SETTINGS)
    assert block_file(fresh, "u7")["port"] == "7"
    fresh.sh("vm1", "fbctl set u7 port=none")
    assert block_file(fresh, "u7")["port"] == "none"
    fresh.sh("vm1", "fbctl set u7 port=7")
    assert block_file(fresh, "u7")["port"] == "7"


RL_STACK = ("modprobe -a fb_ratelimit fb_counter && fbctl add r0 ratelimit && "
            "fbctl add c0 counter && fbctl bind r0 vb && fbctl bind c0 r0")
RL_UNSTACK = "fbctl unbind c0 r0; fbctl unbind r0 vb; fbctl rm c0; fbctl rm r0"
BURST_FRAMES = 50


@pytest.fixture
def limiter(veth: LabRun) -> Iterator[LabRun]:
    """vb -> r0 (ratelimit) -> c0 (counter, a sink)."""
    veth.sh("vm1", RL_STACK)
    try:
        yield veth
    finally:
        veth.sh("vm1", RL_UNSTACK)


def test_ratelimit_burst_exact(limiter: LabRun) -> None:
    """rate=1, burst=10: of 50 frames back to back, the bucket's 10 tokens pass, plus one
    per whole second the frames took to arrive (none when they took under a second)."""
    lab = limiter
    assert block_file(lab, "r0")["rate"] == "none"  # a new limiter passes everything
    lab.sh("vm1", "fbctl set r0 rate=1 && fbctl set r0 burst=10 && fbctl set c0 reset=1")
    assert block_file(lab, "r0") == {"rate": "1", "burst": "10", "passed": "0",
                                     "dropped": "0"}
    sent = guest_frames(lab, "burst", BURST_FRAMES)
    deadline = time.monotonic() + 30
    r0 = counts(lab, "r0")
    while r0["passed"] + r0["dropped"] < BURST_FRAMES and time.monotonic() < deadline:
        time.sleep(0.2)
        r0 = counts(lab, "r0")
    assert r0["passed"] + r0["dropped"] == BURST_FRAMES, (r0, sent)
    print(f"ratelimit rate=1 burst=10: {r0} in {sent['seconds']:.3f} s")
    if sent["seconds"] < 0.5:
        assert r0 == {"passed": 10, "dropped": BURST_FRAMES - 10}, (r0, sent)
    else:  # a slow sender: the tokens its time allowed, and no more
        assert 10 <= r0["passed"] <= 10 + int(sent["seconds"] + 1), (r0, sent)
    packets = int(lab.sh("vm1", f"cat {PROC}/c0").split()[0])
    assert packets == r0["passed"]
    # the bucket refills at 1 token/s: within about a second one more frame passes
    trickle = guest_frames(lab, "trickle", 5)
    assert trickle["passed"] == 1 and trickle["seconds"] < 3, trickle
    after = counts(lab, "r0")
    assert after == {"passed": r0["passed"] + 1,
                     "dropped": r0["dropped"] + trickle["sent"] - 1}, (after, trickle)
    print(f"ratelimit refill: {trickle}")


def test_ratelimit_high_rate_and_none_pass_all(limiter: LabRun) -> None:
    lab = limiter
    lab.sh("vm1", f"fbctl set r0 rate=1000000 && fbctl set r0 burst={BURST_FRAMES} && "
                  "fbctl set r0 reset=1")
    guest_frames(lab, "burst", BURST_FRAMES)
    assert wait_count(lab, "r0", "passed", BURST_FRAMES) == BURST_FRAMES
    assert counts(lab, "r0")["dropped"] == 0
    lab.sh("vm1", "fbctl set r0 rate=none && fbctl set r0 reset=1")
    guest_frames(lab, "burst", 2 * BURST_FRAMES)
    assert wait_count(lab, "r0", "passed", 2 * BURST_FRAMES) == 2 * BURST_FRAMES
    assert counts(lab, "r0")["dropped"] == 0


RL_BAD_SETTINGS = [
    ("rate=0", "bad rate"),
    ("rate=-1", "bad rate"),
    ("rate=+5", "bad rate"),
    ("rate=fast", "bad rate"),
    ("rate=", "bad rate"),
    ("rate=10pps", "bad rate"),
    ("rate=1000000001", "bad rate"),
    ("rate=99999999999999999999999", "bad rate"),
    ("burst=0", "bad burst"),
    ("burst=-5", "bad burst"),
    ("burst=1000001", "bad burst"),
    ("burst=4294967296", "bad burst"),
    ("burst=none", "bad burst"),
    ("speed=10", "unknown option"),
    ("rate", "key=value"),
    ("reset=0", "bad value"),
]


def test_ratelimit_bad_settings_refused_old_kept(limiter: LabRun) -> None:
    lab = limiter
    lab.sh("vm1", "fbctl set r0 rate=5 && fbctl set r0 burst=3")
    refused(lab, "r0", RL_BAD_SETTINGS)
    r0 = block_file(lab, "r0")
    assert (r0["rate"], r0["burst"]) == ("5", "3"), r0
