"""Exercise 7 grader fixtures: one specification ("pass ARP and IPv4 UDP to port P, drop
the rest"), two filters. The classic BPF filter (filter.bpf) runs in a LANA bpf block in
vm1 (eth0 -> f -> c); the XDP program (filter.bpf.c, compiled by clang on the host) is
attached to eth0 of vm2 in generic mode, under a LANA counter bound straight on eth0 (XDP
runs before LANA's hook: the counter sees exactly the frames the program passed). h1
sends each kind of frame of the corpus to the broadcast address, so both guests get the
same frames at the same time; both are read once every frame of the kind has arrived."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet, Raw

from lab.errors import LabError
from lab.grading.bpf import Compiled, compile_filter
from lab.grading.nodes import GuestNode, LabNodes
from lab.grading.traffic import send_frames

CBPF_FILE = "filter.bpf"
XDP_FILE = "filter.bpf.c"
GUEST_OBJECT = "/tmp/lanalab-ex7-filter.bpf.o"
PINNED = "/sys/fs/bpf/tc/globals"  # where iproute2 pins maps by name (/sys/fs/bpf/xdp -> ..)

# Every frame goes to the broadcast address, so the bridge hands it to both guests; the
# addresses are nobody's, so no guest (or h1) ever answers and adds a frame of its own.
DST_MAC = "ff:ff:ff:ff:ff:ff"
SRC_MAC = "02:1a:4a:00:00:64"
SRC_IP, DST_IP = "10.0.0.100", "10.0.0.250"


# ---------------------------------------------------------------- frames of the corpus

def _sized(frame: Packet, size: int) -> bytes:
    head = len(bytes(frame))
    if size > head:
        frame = frame / Raw(bytes(size - head))
    return bytes(frame)


def _eth() -> Ether:
    return Ether(dst=DST_MAC, src=SRC_MAC)


def udp(dport: int, size: int = 100, sport: int = 40000, options: bytes = b"") -> bytes:
    ip = IP(src=SRC_IP, dst=DST_IP, options=[IPOption(options)] if options else [])
    return _sized(_eth() / ip / UDP(sport=sport, dport=dport), size)


def tcp(dport: int, size: int = 100, options: bytes = b"") -> bytes:
    ip = IP(src=SRC_IP, dst=DST_IP, options=[IPOption(options)] if options else [])
    return _sized(_eth() / ip / TCP(sport=40001, dport=dport, flags="S"), size)


def arp(reply: bool = False, size: int = 64) -> bytes:
    frame = _eth() / ARP(op=2 if reply else 1, hwsrc=SRC_MAC, psrc=SRC_IP, pdst=DST_IP)
    return bytes(frame) + bytes(max(0, size - len(frame)))


def ipv6_udp(dport: int, size: int = 100) -> bytes:
    ip6 = IPv6(src="fd00::64", dst="fd00::fa")
    return _sized(_eth() / ip6 / UDP(sport=40000, dport=dport), size)


def vlan(vid: int, inner: Packet, prio: int = 0, size: int = 104) -> bytes:
    """An 802.1Q-tagged frame around `inner` (an IPv4 or ARP packet)."""
    return _sized(_eth() / Dot1Q(vlan=vid, prio=prio) / inner, size)


def udp_header_cut_off(port: int) -> bytes:
    """A complete IPv4 datagram with a 60-byte header (IHL 15: 40 bytes of options) that
    says UDP but ends right after the header: no UDP header at all. Bytes 36-37, where
    the port of a 20-byte header would be, hold `port`."""
    options = b"\x01\x01" + port.to_bytes(2, "big") + b"\x01" * 35 + b"\x00"
    ip = IP(src=SRC_IP, dst=DST_IP, proto=17, options=[IPOption(options)])
    return bytes(_eth() / ip)


def ethertype(type_: int, size: int = 100) -> bytes:
    return bytes(Ether(dst=DST_MAC, src=SRC_MAC, type=type_)) + bytes(size - 14)


def swap16(value: int) -> int:
    return ((value & 0xFF) << 8) | (value >> 8)


@dataclass(frozen=True)
class Kind:
    name: str
    frames: list[bytes]
    passes: bool  # the specification's verdict


def corpus_kinds(port: int) -> list[Kind]:
    """The visible corpus: every kind a student's filter is graded on."""
    p = port
    decoy = b"\x01\x01" + p.to_bytes(2, "big")  # p where a fixed `[36]` read looks, IHL 6
    udp_in_ip = IP(src=SRC_IP, dst=DST_IP) / UDP(sport=40000, dport=p)
    arp_inner = ARP(op=1, hwsrc=SRC_MAC, psrc=SRC_IP, pdst=DST_IP)
    return [
        Kind("ARP requests", [arp(size=64 + 8 * i) for i in range(4)], True),
        Kind("ARP replies", [arp(reply=True) for _ in range(2)], True),
        Kind(f"IPv4 UDP to port {p}", [udp(p, 80 + 20 * i) for i in range(6)], True),
        Kind(f"IPv4 UDP to port {p} behind a 24-byte IPv4 header (options)",
             [udp(p, options=b"\x01\x01\x01\x00") for _ in range(3)], True),
        Kind(f"IPv4 UDP to port {p + 1} behind a 24-byte IPv4 header "
             f"(bytes 36-37 = {p})", [udp(p + 1, options=decoy) for _ in range(3)], False),
        Kind(f"IPv4 UDP to port {p - 1}", [udp(p - 1) for _ in range(3)], False),
        Kind(f"IPv4 UDP to port {p + 1}", [udp(p + 1) for _ in range(3)], False),
        Kind(f"IPv4 UDP from port {p} to port {p + 2}",
             [udp(p + 2, sport=p) for _ in range(3)], False),
        Kind(f"IPv4 UDP to port {swap16(p)} ({p} with its bytes swapped)",
             [udp(swap16(p)) for _ in range(3)], False),
        Kind(f"IPv4 TCP to port {p}", [tcp(p) for _ in range(3)], False),
        Kind(f"IPv6 UDP to port {p}", [ipv6_udp(p) for _ in range(3)], False),
        Kind(f"802.1Q VLAN 10, IPv4 UDP to port {p}",
             [vlan(10, udp_in_ip) for _ in range(3)], False),
        Kind("802.1Q VLAN 10, ARP request", [vlan(10, arp_inner) for _ in range(2)], False),
        Kind(f"IPv4 datagram that says UDP but ends after a 60-byte header "
             f"(no UDP header; bytes 36-37 = {p})",
             [udp_header_cut_off(p) for _ in range(3)], False),
        Kind("EtherType 0x88b5", [ethertype(0x88B5) for _ in range(2)], False),
    ]


# ------------------------------------------------------------------ host-side checks

@dataclass(frozen=True)
class XdpObject:
    path: Path | None
    error: str


@pytest.fixture(scope="session")
def compiled_cbpf(submission: Path) -> Compiled:
    return compile_filter(submission / CBPF_FILE)


@pytest.fixture(scope="session")
def compiled_xdp(submission: Path) -> XdpObject:
    from lab.ebpf.compile import compile_program

    source = submission / XDP_FILE
    if not source.is_file():
        return XdpObject(None, f"{XDP_FILE} is missing from your submission")
    try:
        return XdpObject(compile_program(source).path, "")
    except LabError as exc:
        # clang names the file by the path it was given: keep the name only
        text = str(exc).replace(f"{source.parent}/", "")
        return XdpObject(None, text + (f"\nhint: {exc.hint}" if exc.hint else ""))


# --------------------------------------------------------------------- guest stacks

@dataclass
class Stacks:
    cbpf_error: str | None = None  # the bpf block refused the program
    xdp_error: str | None = None  # the XDP program was not attached: why
    left_attached: str | None = None  # a refused program left something on eth0


@pytest.fixture(scope="session")
def vm2(lab: LabNodes) -> GuestNode:
    return lab.vm("vm2")


def _detach(vm: GuestNode, pinned_before: set[str]) -> None:
    vm.run("ip link set dev eth0 xdpgeneric off 2>/dev/null; "
           "ip link set dev eth0 xdp off 2>/dev/null; rm -f " + GUEST_OBJECT)
    for name in sorted(_pinned(vm) - pinned_before):
        vm.run(f"rm -f {PINNED}/{shlex.quote(name)}")


def _pinned(vm: GuestNode) -> set[str]:
    return set(vm.run(f"ls {PINNED} 2>/dev/null").stdout.split())


def verifier_summary(stderr: str) -> str:
    """What the verifier said, short: the log's last lines (the source line, the refused
    instruction and why) and libbpf's own verdict."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    log: list[str] = []
    inside = False
    for line in lines:
        if "BEGIN PROG LOAD LOG" in line:
            inside = True
            continue
        if "END PROG LOAD LOG" in line:
            inside = False
            continue
        if inside:
            log.append(line)
    verdicts = [line for line in lines if "libbpf:" in line and "LOG" not in line]
    if log:
        tail = [line for line in log if not line.startswith("processed ")][-8:]
        return ("the verifier's log (last lines):\n" + "\n".join(f"  {t}" for t in tail)
                + "\n" + "\n".join(verdicts[:2]))
    return "\n".join(lines[-8:]) or "ip link gave no reason"


@pytest.fixture(scope="session")
def stacks(lab: LabNodes, vm1: GuestNode, vm2: GuestNode, compiled_cbpf: Compiled,
           compiled_xdp: XdpObject) -> Iterator[Stacks]:
    """vm1: eth0 -> f (bpf, filter.bpf) -> c (counter). vm2: XDP program on eth0 (generic
    mode), the counter c bound on eth0 above it."""
    common = ["ip link set eth0 promisc on",  # else virtio-net drops unknown VLANs
              "modprobe -a lana fb_eth fb_bpf fb_counter", "vlink ethernet hook eth0",
              "fbctl add c counter"]
    vm1.sh(" && ".join([*common, "fbctl add f bpf", "fbctl bind f eth0",
                        "fbctl bind c f"]))
    vm2.run("ip link set dev eth0 xdpgeneric off 2>/dev/null; "
            "ip link set dev eth0 xdp off 2>/dev/null; true")
    vm2.sh(" && ".join([*common, "fbctl bind c eth0"]))
    pinned_before = _pinned(vm2)
    result = Stacks()
    if not compiled_cbpf.ok:
        result.cbpf_error = f"not checked: {compiled_cbpf.error}"
    else:
        vm1.put("/tmp/filter.ops", compiled_cbpf.program)
        loaded = vm1.run("cat /tmp/filter.ops > /proc/net/lana/fblock/f")
        if loaded.exit_code != 0:
            log = vm1.run("dmesg | grep 'bpf f' | tail -1").stdout.strip()
            result.cbpf_error = (f"the guest kernel refused {CBPF_FILE}: "
                                 f"{loaded.stderr.strip()}" + (f" ({log})" if log else ""))
    if compiled_xdp.path is None:
        result.xdp_error = f"not checked: {compiled_xdp.error}"
    else:
        vm2.put(GUEST_OBJECT, compiled_xdp.path.read_bytes())
        attached = vm2.run(f"ip link set dev eth0 xdpgeneric obj {GUEST_OBJECT} sec xdp",
                           timeout=120)
        if attached.exit_code != 0:
            said = attached.stderr + attached.stdout
            result.xdp_error = ("`ip link set dev eth0 xdpgeneric obj filter.bpf.o sec xdp` "
                                "refused your program: " + verifier_summary(said))
            shown = vm2.run("ip link show dev eth0").stdout
            if re.search(r"\bxdp", shown):
                result.left_attached = shown.strip()
    try:
        yield result
    finally:
        if vm2.crashed is None:
            _detach(vm2, pinned_before)


# ------------------------------------------------------------------ sending the corpus

# Why rx_packets reaching the target is enough: virtio_net adds a poll's frames to
# rx_packets before the poll hands its last (GRO-batched) frames to the stack, but a poll
# runs to its end with bottom halves off and the guests have one vCPU, so by the time this
# shell reads the target every frame has been through XDP or LANA's blocks and counter.
_READ = """t={target}; i=0
rx() {{ read -r n < /sys/class/net/eth0/statistics/rx_packets; echo "$n"; }}
while [ "$(rx)" -lt "$t" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
read -r c _ < /proc/net/lana/fblock/c
echo "$(rx) $c $(nproc)"
"""


def _snapshot(vm: GuestNode) -> tuple[int, int]:
    out = vm.sh("read -r n < /sys/class/net/eth0/statistics/rx_packets; "
                "read -r c _ < /proc/net/lana/fblock/c; echo $n $c").split()
    return int(out[0]), int(out[1])


def _after(vm: GuestNode, target: int) -> tuple[int, int]:
    """Wait until eth0 has received `target` frames; then the counter holds all of them."""
    rx, counted, cpus = (int(x) for x in vm.sh(_READ.format(target=target)).split())
    if cpus != 1:  # the reasoning above _READ holds for one vCPU only
        raise RuntimeError(f"{vm.name} has {cpus} vCPUs; this grader's lab gives each VM one")
    return rx, counted


@dataclass(frozen=True)
class Verdicts:
    """Per kind of frame: how many each filter passed ("cbpf", "xdp")."""

    kinds: list[tuple[Kind, dict[str, int]]]
    problem: str | None = None  # frames that did not arrive (the lab, not the student)


def send_kinds(lab: LabNodes, vm1: GuestNode, vm2: GuestNode,
               kinds: list[Kind]) -> Verdicts:
    vms = {"cbpf": vm1, "xdp": vm2}
    state = {name: _snapshot(vm) for name, vm in vms.items()}
    results = []
    for kind in kinds:
        send_frames(lab.host("h1"), kind.frames)
        passed = {}
        for name, vm in vms.items():
            rx, count = _after(vm, state[name][0] + len(kind.frames))
            if rx < state[name][0] + len(kind.frames):
                return Verdicts(results, f"{vm.name} received {rx - state[name][0]} of the "
                                f"{len(kind.frames)} frames of kind '{kind.name}' h1 sent")
            passed[name] = count - state[name][1]
            state[name] = (rx, count)
        results.append((kind, passed))
    return Verdicts(results)


@pytest.fixture(scope="session")
def verdicts(stacks: Stacks, lab: LabNodes, vm1: GuestNode, vm2: GuestNode,
             variant: dict[str, Any]) -> Verdicts:
    return send_kinds(lab, vm1, vm2, corpus_kinds(int(variant["udp_port"])))


HINTS = {
    "cbpf": "the guest kernel takes an 802.1Q tag off before LANA sees the frame (test it "
            "with `ld #vlanp`); ARP is EtherType 0x0806; the UDP header starts after the "
            "IPv4 header, whose length `ldxb 4*([14]&0xf)` puts into X (`ldh [x + 16]` is "
            "the destination port)",
    "xdp": "XDP sees the frame as it came off the wire (an 802.1Q tag is still in it); "
           "compare ports in network byte order (bpf_htons); the UDP header starts at "
           "iph->ihl * 4 bytes after the IPv4 header; ARP is ETH_P_ARP",
}
FILES = {"cbpf": CBPF_FILE, "xdp": XDP_FILE}


def verdict_feedback(which: str, verdicts: Verdicts, error: str | None) -> str | None:
    if error:
        return error
    if verdicts.problem:
        return f"the grader could not check this: {verdicts.problem}"
    wrong = []
    for kind, passed in verdicts.kinds:
        want = len(kind.frames) if kind.passes else 0
        if passed[which] != want:
            must = "must pass all" if kind.passes else "must drop all"
            wrong.append(f"  - {kind.name}: passed {passed[which]} of {len(kind.frames)} "
                         f"({must})")
    if not wrong:
        return None
    where = ("loaded into a LANA bpf block in vm1" if which == "cbpf"
             else "attached to eth0 of vm2 (generic XDP)")
    return (f"{FILES[which]}, {where} and fed the corpus kind by kind, got these "
            "wrong:\n" + "\n".join(wrong) + f"\nhint: {HINTS[which]}")


# ------------------------------------------- report.toml (optional): the measured ratio

HERE = Path(__file__).resolve().parent
MEASURE = HERE / "tools" / "measure.sh"
GUEST_MEASURE = "/tmp/lanalab-ex7-measure.sh"
GUEST_OPS = "/tmp/lanalab-ex7-filter.ops"
ROUNDS, SECONDS = 2, 0.4  # measure.sh's defaults: ~20 s under TCG with the instruction clock
# Accepted distance of the reported xdp_vs_lana from the grader's: with the instruction
# clock the rounds agree within 0.2 % (0.737 in every round for the reference); the real
# clock (KVM only) moves with the host's load.
TOLERANCE = {"instructions": 0.03, "real": 0.25}
BOOT_WITH_CLOCK = ("grade without --run (the grader then boots its own lab with the "
                   "instruction clock), or boot your lab with `lanalab up --clock "
                   "instructions` (notebook 07 does) and grade on that")


@dataclass(frozen=True)
class Report:
    present: bool
    ratio: float | None = None
    problem: str | None = None


@pytest.fixture(scope="session")
def report(submission: Path) -> Report:
    import math
    import tomllib

    path = submission / "report.toml"
    if not path.is_file():
        return Report(False)
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return Report(True, problem=f"report.toml is not valid TOML: {exc}")
    value = data.get("xdp_vs_lana")
    if value is None:
        return Report(True, problem="report.toml lacks xdp_vs_lana (the `ratio xdp_vs_lana` "
                      "line measure.sh printed)")
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value <= 0:
        return Report(True, problem=f"report.toml: xdp_vs_lana = {value!r} must be a positive "
                      "number (without quotes), the ratio measure.sh printed")
    return Report(True, float(value))


@dataclass(frozen=True)
class Remeasured:
    ratio: float | None
    clock: str
    problem: str | None = None
    output: str = ""


@pytest.fixture(scope="session")
def remeasured(report: Report, stacks: Stacks, verdicts: Verdicts, vm1: GuestNode,
               compiled_cbpf: Compiled, compiled_xdp: XdpObject) -> Remeasured | None:
    """measure.sh run by the grader in vm1 (after the corpus) on your two filters; None
    when there is no report.toml to compare with."""
    if not report.present or report.problem:
        return None
    if stacks.cbpf_error or stacks.xdp_error or compiled_xdp.path is None:
        return Remeasured(None, vm1.clock, "not measured: both filters must load first")
    if vm1.clock != "instructions" and vm1.accel != "kvm":
        return Remeasured(None, "real", "not measured: vm1 of this lab runs under TCG with "
                          "the wall clock, whose rates move with the host's load; the grader "
                          "measures with the instruction clock: " + BOOT_WITH_CLOCK)
    vm1.put(GUEST_MEASURE, MEASURE.read_bytes())
    vm1.put(GUEST_OPS, compiled_cbpf.program)
    vm1.put(GUEST_OBJECT, compiled_xdp.path.read_bytes())
    result = vm1.run(f"bash {GUEST_MEASURE} {GUEST_OPS} {GUEST_OBJECT} {ROUNDS} {SECONDS:g}",
                     timeout=240)
    vm1.run(f"rm -f {GUEST_MEASURE} {GUEST_OPS}")
    match = re.search(r"^ratio xdp_vs_lana ([0-9.]+)$", result.stdout, re.M)
    print(f"[grade] measure.sh in vm1 ({vm1.clock} clock):\n{result.stdout}", flush=True)
    if result.exit_code != 0 or match is None:
        return Remeasured(None, vm1.clock, "the grader could not measure your filters: "
                          + (result.stderr.strip() or result.stdout.strip())[-400:])
    return Remeasured(float(match[1]), vm1.clock, output=result.stdout)
