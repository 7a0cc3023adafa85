"""fb_ipv4 (IPv4 input: header checks, destination, demultiplexing by protocol) and
fb_classify (a classic-BPF verdict picks the upper block), in a guest.

One lab for the whole module (the `bench` topology: vm1 at 10.0.0.1, Mininet host h1 at
10.0.0.100). vm1's eth0 is hooked into LANA (mode steal: Linux sees none of its frames)
under a stack that is a tree rather than a chain:

    eth0 -> arp0 (arp) -> ip0 (ipv4) -+-> ping0 (icmp_echo)       protocol 1
                                      +-> u7 (udp, port 7) -> echo7 (PF_LANA socket, udpecho)
                                                                  protocol 17

all for 10.0.0.50, an address on none of vm1's Linux interfaces. h1 pings it and gets UDP
echoes from it; ip0 counts each protocol exactly, and Linux's counters in vm1 do not move.
Every reason ip0 drops for is checked with exact counts on a veth pair inside vm1, fed by a
raw socket on the peer (the host's bridge may drop malformed IPv4 before the VM), and so
are fb_classify's ports.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_stack import PROC, block_counts, snmp, trouble, wait_count, wait_until

from lab.labrun import LabRun
from lab.topology.loader import load_topology

pytestmark = pytest.mark.vm

LANA_IP = "10.0.0.50"  # answered by LANA only
H1_IP = "10.0.0.100"
ECHOES = 20
COPIES = 3  # each kind of frame on the veth is sent this many times

STACK = (f"modprobe -a lana fb_eth fb_arp fb_ipv4 fb_icmp_echo fb_udp fb_pflana && "
         f"vlink ethernet hook eth0 && "
         f"fbctl add arp0 arp && fbctl set arp0 ip={LANA_IP} && "
         f"fbctl add ip0 ipv4 && fbctl set ip0 ip={LANA_IP} && "
         f"fbctl add ping0 icmp_echo && fbctl set ping0 ip={LANA_IP} && "
         f"fbctl add u7 udp && fbctl set u7 port=7 && "
         f"fbctl bind arp0 eth0 && fbctl bind ip0 arp0 && "
         f"fbctl bind ping0 ip0 && fbctl bind u7 ip0 && "
         f"fbctl set ip0 proto=1:ping0 && fbctl set ip0 proto=17:u7")
LINUX_COUNTERS = ("Ip.InReceives", "Icmp.InMsgs", "Icmp.OutMsgs", "Udp.InDatagrams",
                  "Udp.OutDatagrams", "Udp.NoPorts")

# Runs in h1: `udp_client.py DST PORT N` sends N datagrams one after the other, each
# waiting for its echo; prints JSON with the echoes that came back right.
CLIENT_SOURCE = r'''
import json, socket, sys

dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(10.0)
good, lost = 0, 0
for i in range(n):
    payload = b"ip0 echo %03d " % i + bytes(range(i, i + 40))
    sock.sendto(payload, (dst, port))
    try:
        data, addr = sock.recvfrom(2048)
    except socket.timeout:
        lost += 1
        continue
    good += data == payload and addr == (dst, port)
print(json.dumps({"sent": n, "good": good, "lost": lost}))
'''

# Runs in vm1 on the veth peer va: `frames.py IFACE DST_MAC KIND... N` sends N copies of
# each named kind of frame (KINDS below), one round after the other; prints JSON.
FRAMES_SOURCE = r'''
import json, socket, struct, sys

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

iface, dst = sys.argv[1], bytes(int(x, 16) for x in sys.argv[2].split(":"))
names, n = sys.argv[3:-1], int(sys.argv[-1])
src = bytes(int(x, 16) for x in open("/sys/class/net/%s/address" % iface).read().split(":"))
us, other = socket.inet_aton("10.0.0.50"), socket.inet_aton("10.0.0.99")
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
sock.bind((iface, 0))

def ipv4(proto=17, daddr=us, ttl=64, frag=0, ver_ihl=0x45, tot_len=None, good=True,
         options=b"", body=b"\0" * 28):
    hlen = 20 + len(options)
    length = hlen + len(body) if tot_len is None else tot_len
    hdr = struct.pack("!BBHHHBBH4s4s", ver_ihl, 0, length, 7, frag, ttl, proto, 0,
                      socket.inet_aton("10.0.0.7"), daddr) + options
    csum = checksum(hdr) if good else checksum(hdr) ^ 0x5555
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + body

def frame(payload, ethertype=0x0800):
    return dst + src + struct.pack("!H", ethertype) + payload

KINDS = {
    "udp": frame(ipv4()),
    "udp_ttl1_for_us": frame(ipv4(ttl=1)),
    "udp_with_options": frame(ipv4(ver_ihl=0x46, options=b"\x01\x01\x01\x00")),
    "icmp": frame(ipv4(proto=1)),
    "proto253": frame(ipv4(proto=253)),
    "not_ipv4": frame(b"\0" * 46, ethertype=0x88B5),
    "bad_length_truncated": frame(ipv4()[:16]),
    "bad_length_beyond_frame": frame(ipv4(tot_len=200)),
    "bad_length_below_header": frame(ipv4(tot_len=12)),
    "bad_version": frame(ipv4(ver_ihl=0x65)),
    "bad_ihl_below_5": frame(ipv4(ver_ihl=0x44)),
    "bad_ihl_beyond_frame": frame(ipv4(ver_ihl=0x4F, body=b"")),
    "bad_checksum": frame(ipv4(good=False)),
    "not_for_us": frame(ipv4(daddr=other)),
    "ttl_expired": frame(ipv4(daddr=other, ttl=1)),
    "fragment_more": frame(ipv4(frag=0x2000)),
    "fragment_offset": frame(ipv4(frag=0x0010)),
    "ethertype_88b5": frame(b"\0" * 46, ethertype=0x88B5),
    "ethertype_88b6": frame(b"\0" * 46, ethertype=0x88B6),
    "ethertype_88b7": frame(b"\0" * 46, ethertype=0x88B7),
    "ethertype_88b8": frame(b"\0" * 46, ethertype=0x88B8),
}
for _ in range(n):
    for name in names:
        sock.send(KINDS[name])
print(json.dumps({name: n for name in names}))
'''
GUEST_FRAMES = "/tmp/ipv4_frames.py"
VETH = ("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 && "
        "ip link add name va type veth peer name vb && "
        "ip link set dev va up && ip link set dev vb up && vlink ethernet hook vb")
UNVETH = "vlink ethernet unhook vb; ip link del va"

# What ip1 (on vb) must count for each kind of frame; the frames it delivers go to the
# counters k17 (protocol 17), k1 (protocol 1) or, once set, the default kd.
REASONS = {
    "not_ipv4": ["not_ipv4"],
    "bad_length": ["bad_length_truncated", "bad_length_beyond_frame",
                   "bad_length_below_header"],
    "bad_version": ["bad_version"],
    "bad_ihl": ["bad_ihl_below_5", "bad_ihl_beyond_frame"],
    "bad_checksum": ["bad_checksum"],
    "not_for_us": ["not_for_us"],
    "ttl_expired": ["ttl_expired"],
    "fragment": ["fragment_more", "fragment_offset"],
    "no_upper": ["proto253"],
}
DELIVERED_17 = ["udp", "udp_ttl1_for_us", "udp_with_options"]

# fb_classify's program: EtherType 88b5 -> port 1, 88b6 -> port 2, 88b7 -> port 7 (nothing
# bound there: no_port), 88b8 -> verdict 0 (dropped), anything else -> port 3.
CLASSIFY_BPF = """\
{ 0x28, 0, 0, 0x0000000c },
{ 0x15, 0, 1, 0x000088b5 },
{ 0x06, 0, 0, 0x00000001 },
{ 0x15, 0, 1, 0x000088b6 },
{ 0x06, 0, 0, 0x00000002 },
{ 0x15, 0, 1, 0x000088b7 },
{ 0x06, 0, 0, 0x00000007 },
{ 0x15, 0, 1, 0x000088b8 },
{ 0x06, 0, 0, 0x00000000 },
{ 0x06, 0, 0, 0x00000003 },
"""
CLASSIFY_KINDS = ["ethertype_88b5", "ethertype_88b6", "ethertype_88b7", "ethertype_88b8",
                  "udp"]


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
def stack(lab: LabRun) -> LabRun:
    lab.sh("vm1", STACK)
    lab.vms["vm1"].put_file(GUEST_FRAMES, FRAMES_SOURCE.encode())
    return lab


@pytest.fixture
def fresh(stack: LabRun) -> Iterator[LabRun]:
    """Zeroed counts, h1's neighbour cache flushed; afterwards a clean kernel log."""
    stack.sh("vm1", "fbctl set ip0 reset=1 && fbctl set u7 reset=1 && "
                    "fbctl set ping0 reset=1")
    stack.forget_neighbours()
    yield stack
    assert not trouble(stack), f"kernel trouble in vm1: {trouble(stack)}"


@pytest.fixture
def veth(fresh: LabRun) -> Iterator[LabRun]:
    fresh.sh("vm1", VETH)
    try:
        yield fresh
    finally:
        fresh.sh("vm1", UNVETH)


def linux_counters(lab: LabRun) -> dict[str, int]:
    values = snmp(lab)
    return {key: values[key] for key in LINUX_COUNTERS}


def per_protocol(lab: LabRun, name: str) -> dict[int, tuple[str, int]]:
    """ip0's "proto N NAME DELIVERED" lines: {N: (NAME, DELIVERED)}."""
    text = lab.sh("vm1", f"cat {PROC}/{name}")
    return {int(n): (upper, int(count))
            for n, upper, count in re.findall(r"^proto (\d+) (\S+) (\d+)$", text, re.M)}


def outcomes(counts: dict[str, int]) -> int:
    """Every frame ip0 received ends in exactly one of these counts."""
    return sum(counts[key] for key in ("delivered", "not_ipv4", "bad_length", "bad_version",
                                       "bad_ihl", "bad_checksum", "not_for_us",
                                       "ttl_expired", "fragment", "no_upper"))


def guest_frames(lab: LabRun, kinds: list[str], n: int) -> dict[str, int]:
    vb_mac = lab.sh("vm1", "cat /sys/class/net/vb/address").strip()
    out = lab.sh("vm1", f"python3 {GUEST_FRAMES} va {vb_mac} {' '.join(kinds)} {n}")
    sent: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return sent


def counter_packets(lab: LabRun, names: list[str]) -> dict[str, int]:
    """The packet counts of counter blocks (the first number of their proc files)."""
    out = lab.sh("vm1", " && ".join(f"head -n1 {PROC}/{name}" for name in names))
    return {name: int(line.split()[0]) for name, line in zip(names, out.splitlines(),
                                                            strict=True)}


def refused(lab: LabRun, block: str, settings: list[tuple[str, str]]) -> None:
    """Every setting fails with exit code 1 and fbctl prints the kernel's message."""
    script = "".join(f"fbctl set {block} {shlex.quote(opt)}; echo \"rc=$?\"\n"
                     for opt, _ in settings)
    out = lab.sh("vm1", f"{{\n{script}}} 2>&1")
    results = re.findall(r"(.*?)rc=(\d+)\n", out, re.S)
    assert len(results) == len(settings), out
    for (opt, message), (text, code) in zip(settings, results, strict=True):
        assert code == "1", f"{opt}: {text}"
        assert message in text, f"{opt}: {text}"


def test_ping_and_udp_echo_demultiplexed_by_protocol(fresh: LabRun, tmp_path: Path) -> None:
    lab = fresh
    client = tmp_path / "udp_client.py"
    client.write_text(CLIENT_SOURCE)
    client.chmod(0o644)
    tmp_path.chmod(0o755)
    before = linux_counters(lab)
    out = lab.sh("h1", f"ping -c {ECHOES} -i 0.2 -W 5 {LANA_IP}", timeout=120)
    assert f"{ECHOES} packets transmitted, {ECHOES} received" in out, out
    lab.sh("vm1", f"rm -f /tmp/echo7.json; setsid sh -c 'udpecho echo7 {ECHOES} "
                  "> /tmp/echo7.tmp 2>&1; mv /tmp/echo7.tmp /tmp/echo7.json' "
                  "< /dev/null > /dev/null 2>&1 &")
    listed = wait_until(lambda: int(bool(re.search(r"^echo7\s", lab.sh("vm1", "fbctl list"),
                                                  re.M))), 1)
    assert listed, "udpecho's echo7 never appeared in fbctl list"
    lab.sh("vm1", "fbctl bind echo7 u7")
    out = lab.sh("h1", f"python3 {shlex.quote(str(client))} {LANA_IP} 7 {ECHOES}",
                 timeout=300)
    assert json.loads(out.strip().splitlines()[-1]) == \
        {"sent": ECHOES, "good": ECHOES, "lost": 0}, out
    assert per_protocol(lab, "ip0") == {1: ("ping0", ECHOES), 17: ("u7", ECHOES)}
    ip0 = block_counts(lab, "ip0")
    assert (ip0["delivered"], ip0["sent"]) == (2 * ECHOES, 2 * ECHOES), ip0
    assert ip0["received"] == outcomes(ip0), ip0
    ping0, u7 = block_counts(lab, "ping0"), block_counts(lab, "u7")
    assert (ping0["requests"], ping0["replies"]) == (ECHOES, ECHOES), ping0
    assert (u7["matched"], u7["malformed"]) == (ECHOES, 0), u7
    # nothing but ICMP reached ping0, nothing but UDP reached u7: ip0 sorted them
    assert ping0["passed"] == 0 and u7["other"] == 0, (ping0, u7)
    assert linux_counters(lab) == before


def test_every_reason_counted_exactly(veth: LabRun) -> None:
    """vb -> ip1 -> {k17 (protocol 17), k1 (protocol 1), kd}: each malformed or foreign
    kind of frame ends in its own count, the good ones in the counters above."""
    lab = veth
    lab.sh("vm1", f"modprobe fb_counter && fbctl add ip1 ipv4 && fbctl set ip1 ip={LANA_IP} "
                  "&& fbctl bind ip1 vb && for k in k17 k1 kd; do fbctl add $k counter && "
                  "fbctl bind $k ip1; done && fbctl set ip1 proto=17:k17 && "
                  "fbctl set ip1 proto=1:k1")
    try:
        kinds = [kind for names in REASONS.values() for kind in names] + DELIVERED_17 + \
            ["icmp"]
        assert guest_frames(lab, kinds, COPIES) == dict.fromkeys(kinds, COPIES)
        total = len(kinds) * COPIES
        assert wait_count(lab, "ip1", "received", total) == total
        ip1 = block_counts(lab, "ip1")
        for reason, names in REASONS.items():
            assert ip1[reason] == len(names) * COPIES, (reason, ip1)
        delivered = (len(DELIVERED_17) + 1) * COPIES
        assert (ip1["delivered"], ip1["sent"]) == (delivered, 0), ip1
        assert counter_packets(lab, ["k17", "k1", "kd"]) == \
            {"k17": len(DELIVERED_17) * COPIES, "k1": COPIES, "kd": 0}
        assert per_protocol(lab, "ip1") == {1: ("k1", COPIES),
                                            17: ("k17", len(DELIVERED_17) * COPIES)}
        # a default catches the unmapped protocol; unbinding k1 removes its mapping
        lab.sh("vm1", "fbctl set ip1 default=kd && fbctl unbind k1 ip1")
        guest_frames(lab, ["proto253", "icmp"], COPIES)
        kd = wait_until(lambda: counter_packets(lab, ["kd"])["kd"], 2 * COPIES)
        assert kd == 2 * COPIES, kd
        ip1 = block_counts(lab, "ip1")
        assert (ip1["no_upper"], ip1["delivered"]) == (COPIES, delivered + 2 * COPIES), ip1
        # per protocol, deliveries to the default count too
        assert per_protocol(lab, "ip1") == {1: ("none", 2 * COPIES),
                                            17: ("k17", len(DELIVERED_17) * COPIES),
                                            253: ("none", COPIES)}
        assert counter_packets(lab, ["k1"]) == {"k1": COPIES}
    finally:
        lab.sh("vm1", "for k in k17 k1 kd; do fbctl unbind $k ip1; fbctl rm $k; done; "
                      "fbctl unbind ip1 vb; fbctl rm ip1; true")


def classify_ports(lab: LabRun, name: str) -> dict[int, tuple[str, int]]:
    """fb_classify's "portK NAME COUNT" lines: {K: (NAME, COUNT)}."""
    text = lab.sh("vm1", f"cat {PROC}/{name}")
    return {int(k): (upper, int(count))
            for k, upper, count in re.findall(r"^port(\d) (\S+) (\d+)$", text, re.M)}


def test_classify_sends_each_verdict_to_its_port(veth: LabRun) -> None:
    """vb -> cl -> {c1, c2, c3} (ports 1-3 in bind order). Without a program every frame
    takes port 1; with CLASSIFY_BPF each EtherType goes to its port, verdict 7 (a port with
    nothing bound) is no_port, verdict 0 dropped; port3=c1 then swaps c1 and c3."""
    lab = veth
    lab.sh("vm1", "modprobe -a fb_counter fb_classify && fbctl add cl classify && "
                  "fbctl bind cl vb && for c in c1 c2 c3; do fbctl add $c counter && "
                  "fbctl bind $c cl; done")
    try:
        assert classify_ports(lab, "cl") == {1: ("c1", 0), 2: ("c2", 0), 3: ("c3", 0),
                                             **{k: ("none", 0) for k in range(4, 9)}}
        sent = guest_frames(lab, CLASSIFY_KINDS, COPIES)
        total = len(sent) * COPIES
        assert wait_count(lab, "cl", "received", total) == total
        assert counter_packets(lab, ["c1", "c2", "c3"]) == {"c1": total, "c2": 0, "c3": 0}

        lab.vms["vm1"].put_file("/tmp/classify.bpf", CLASSIFY_BPF.encode())
        lab.sh("vm1", f"cat /tmp/classify.bpf > {PROC}/cl && fbctl set cl reset=1")
        shown = [line for line in lab.sh("vm1", f"cat {PROC}/cl").splitlines()
                 if line.startswith("{")]
        assert len(shown) == len(CLASSIFY_BPF.splitlines()), shown
        guest_frames(lab, CLASSIFY_KINDS, COPIES)
        assert wait_count(lab, "cl", "received", total) == total
        cl = block_counts(lab, "cl")
        assert (cl["dropped"], cl["no_port"], cl["sent"]) == (COPIES, COPIES, 0), cl
        ports = classify_ports(lab, "cl")
        assert (ports[1], ports[2], ports[3]) == \
            (("c1", COPIES), ("c2", COPIES), ("c3", COPIES)), ports

        lab.sh("vm1", "fbctl set cl port3=c1 && fbctl set cl reset=1")
        before = counter_packets(lab, ["c1", "c2", "c3"])
        guest_frames(lab, ["ethertype_88b5", "udp", "udp"], COPIES)
        assert wait_count(lab, "cl", "received", 3 * COPIES) == 3 * COPIES
        after = counter_packets(lab, ["c1", "c2", "c3"])
        # port 1 (verdict 88b5) is now c3's, port 3 (the rest) c1's
        assert {c: after[c] - before[c] for c in after} == \
            {"c1": 2 * COPIES, "c2": 0, "c3": COPIES}, (before, after)
        # a bad program is refused and the old one kept
        out = lab.sh("vm1", f"echo '{{ 0x06, 0, 0' > {PROC}/cl 2>&1; echo rc=$?")
        assert "rc=1" in out, out
        kept = [line for line in lab.sh("vm1", f"cat {PROC}/cl").splitlines()
                if line.startswith("{")]
        assert kept == shown
    finally:
        lab.sh("vm1", "for c in c1 c2 c3; do fbctl unbind $c cl; fbctl rm $c; done; "
                      "fbctl unbind cl vb; fbctl rm cl; true")


def test_bad_settings_refused_old_state_kept(fresh: LabRun) -> None:
    lab = fresh
    before = lab.sh("vm1", f"cat {PROC}/ip0")
    refused(lab, "ip0", [
        ("proto=1:nosuch", "no block of that name is bound on top of this one"),
        ("proto=256:ping0", "bad protocol mapping"),
        ("proto=:ping0", "bad protocol mapping"),
        ("proto=1", "bad protocol mapping"),
        ("proto=1:", "bad protocol mapping"),
        ("proto=-1:ping0", "bad protocol mapping"),
        ("proto=0x11:u7", "bad protocol mapping"),
        ("proto=0017:u7", "bad protocol mapping"),
        ("default=", "bad default"),
        ("default=arp0", "no block of that name is bound on top of this one"),
        ("reset=0", "bad value; use reset=1"),
        ("ip=10.0.0.256", "ip"),
        ("port=7", "unknown option; ipv4 knows"),
        ("noequals", "option must look like key=value"),
    ])
    assert lab.sh("vm1", f"cat {PROC}/ip0") == before
    lab.sh("vm1", "modprobe fb_classify && fbctl add cl0 classify")
    try:
        refused(lab, "cl0", [
            ("port1=nosuch", "no block of that name is bound on top of this one"),
            ("port0=x", "bad port number"),
            ("port9=x", "bad port number"),
            ("port10=x", "bad port number"),
            ("reset=2", "reset=1"),
            ("proto=1:x", "unknown option; classify knows"),
        ])
        # nine blocks cannot take eight ports
        lab.sh("vm1", "modprobe fb_counter && for i in 1 2 3 4 5 6 7 8 9; do "
                      "fbctl add p$i counter; done && for i in 1 2 3 4 5 6 7 8; do "
                      "fbctl bind p$i cl0; done")
        out = lab.sh("vm1", "fbctl bind p9 cl0 2>&1; echo rc=$?")
        assert "rc=1" in out and "all 8 ports" in out, out
    finally:
        lab.sh("vm1", "for i in 1 2 3 4 5 6 7 8 9; do fbctl unbind p$i cl0; fbctl rm p$i; "
                      "done; fbctl rm cl0; true")
