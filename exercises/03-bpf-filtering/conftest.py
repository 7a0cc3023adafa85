"""Exercise 3 grader fixtures: the student's four filters, compiled on the host, loaded
by the grader into a fixed stack in vm1, and a traffic corpus sent class by class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.grading import corpus
from lab.grading.bpf import Compiled, compile_filter
from lab.grading.nodes import GuestNode, LabNodes
from lab.grading.traffic import send_frames

FILTERS = ["arp", "udp", "vlan", "index"]
# eth0 -> t0 (tee) -> ta, tb (tees) -> f_<filter> (bpf) -> c_<filter> (counter):
# each frame runs 4 times through the engine (the original and 3 clones).
RUNS_PER_FRAME = 4


@dataclass(frozen=True)
class TrafficClass:
    name: str
    frames: list[bytes]
    passes: frozenset[str]  # the filters that must pass this class


@pytest.fixture(scope="session")
def compiled(submission: Path) -> dict[str, Compiled]:
    return {name: compile_filter(submission / f"{name}.bpf") for name in FILTERS}


def corpus_classes(mac: str, v: dict[str, Any]) -> list[TrafficClass]:
    p, q, vid = v["udp_port"], v["tcp_port"], v["vlan_id"]
    ip = "10.0.0.1"
    decoy = b"\x01\x01" + q.to_bytes(2, "big")  # Q where `ldh [36]` looks, IHL 6

    def tc(name: str, frames: list[bytes], *passes: str) -> TrafficClass:
        return TrafficClass(name, frames, frozenset(passes))

    return [
        tc("ARP requests", [corpus.arp(mac, ip, size=64 + i) for i in range(6)], "arp"),
        tc("ARP replies", [corpus.arp(mac, ip, reply=True) for _ in range(3)], "arp"),
        tc(f"IPv4 UDP to port {p}", [corpus.udp(mac, ip, p, 100 + i) for i in range(8)], "udp"),
        tc(f"IPv4 UDP from port {p} to port {p + 1}",
           [corpus.udp(mac, ip, p + 1, sport=p) for _ in range(4)]),
        tc(f"IPv4 TCP to port {p}", [corpus.tcp(mac, ip, p) for _ in range(3)]),
        tc(f"IPv4 TCP to port {q}", [corpus.tcp(mac, ip, q, 90 + i) for i in range(5)], "index"),
        tc(f"IPv4 TCP to port {q} with a 24-byte IPv4 header",
           [corpus.tcp(mac, ip, q, option_bytes=b"\x01\x01\x01\x00") for _ in range(4)],
           "index"),
        tc(f"IPv4 TCP to port {q + 1} with a 24-byte IPv4 header (bytes 36-37 = {q})",
           [corpus.tcp(mac, ip, q + 1, option_bytes=decoy) for _ in range(3)]),
        tc(f"IPv4 UDP to port {q}", [corpus.udp(mac, ip, q) for _ in range(2)]),
        tc(f"802.1Q VLAN {vid}", [corpus.vlan(mac, vid) for _ in range(5)], "vlan"),
        tc(f"802.1Q VLAN {vid}, priority 5", [corpus.vlan(mac, vid, prio=5) for _ in range(3)],
           "vlan"),
        tc(f"802.1Q VLAN {vid % 4000 + 1}", [corpus.vlan(mac, vid % 4000 + 1) for _ in range(4)]),
        tc(f"IPv6 UDP to port {p}", [corpus.ipv6_udp(mac, p) for _ in range(3)]),
        tc("EtherType 0x88b5", [corpus.ethertype(mac, 0x88B5) for _ in range(2)]),
    ]


@pytest.fixture(scope="session")
def loaded(vm1: GuestNode, compiled: dict[str, Compiled]) -> dict[str, str]:
    """The grader's stack in vm1 with the student's programs; -> load error per filter."""
    script = ["ip link set eth0 promisc on",  # else virtio-net drops unknown VLANs
              "modprobe -a lana fb_eth fb_tee fb_bpf fb_counter",
              "vlink ethernet hook eth0", "fbctl add t0 tee", "fbctl add ta tee",
              "fbctl add tb tee", "fbctl bind t0 eth0", "fbctl bind ta t0",
              "fbctl bind tb t0"]
    for i, name in enumerate(FILTERS):
        tee = "ta" if i < 2 else "tb"
        script += [f"fbctl add f_{name} bpf", f"fbctl add c_{name} counter",
                   f"fbctl bind f_{name} {tee}", f"fbctl bind c_{name} f_{name}"]
    vm1.sh(" && ".join(script))
    errors = {}
    for name in FILTERS:
        if not compiled[name].ok:
            errors[name] = compiled[name].error
            continue
        vm1.put(f"/tmp/{name}.ops", compiled[name].program)
        result = vm1.run(f"cat /tmp/{name}.ops > /proc/net/lana/fblock/f_{name}")
        if result.exit_code != 0:
            log = vm1.run(f"dmesg | grep 'bpf f_{name}' | tail -1").stdout.strip()
            errors[name] = (f"the guest kernel refused {name}.bpf: {result.stderr.strip()}"
                            + (f" ({log})" if log else ""))
            vm1.sh(f"printf 'ret #0\\n' | bpfc -i - > /proc/net/lana/fblock/f_{name} || "
                   f"echo '{{ 0x6, 0, 0, 0x00000000 }},' > /proc/net/lana/fblock/f_{name}")
    return errors


_READ = """t={target}; i=0
ppe() {{ awk '{{s+=$2}} END {{print s+0}}' /proc/net/lana/ppe; }}
while [ "$(ppe)" -lt "$t" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
sleep 0.2; ppe; cat {files}"""


def send_class(vm1: GuestNode, lab: LabNodes, frames: list[bytes],
               ppe_before: int) -> tuple[int, dict[str, int]]:
    """Send one class, wait in the guest until the engine has run all of it, read the
    counters: -> (engine packets now, packets per filter counter)."""
    send_frames(lab.host("h1"), frames)
    files = " ".join(f"/proc/net/lana/fblock/c_{n}" for n in FILTERS)
    out = vm1.sh(_READ.format(target=ppe_before + RUNS_PER_FRAME * len(frames),
                              files=files)).split("\n")
    counts = {n: int(line.split()[0]) for n, line in zip(FILTERS, out[1:5], strict=True)}
    return int(out[0]), counts


@pytest.fixture(scope="session")
def passed_per_class(loaded: dict[str, str], vm1: GuestNode, vm1_mac: str, lab: LabNodes,
                     variant: dict[str, Any]) -> list[tuple[TrafficClass, dict[str, int]]]:
    """Each class sent on its own: how many of its frames each filter passed."""
    ppe, counts = send_class(vm1, lab, [], 0)
    results = []
    for cls in corpus_classes(vm1_mac, variant):
        ppe, after = send_class(vm1, lab, cls.frames, ppe)
        results.append((cls, {n: after[n] - counts[n] for n in FILTERS}))
        counts = after
    return results


HINTS = {
    "arp": "ARP is EtherType 0x0806, at offset 12",
    "udp": "check the EtherType (0x0800), the IPv4 protocol (byte 23: 17 = UDP) and the "
           "destination port, which follows the source port",
    "vlan": "the guest kernel takes the 802.1Q tag off the frame before LANA sees it; test "
            "for it with `ld #vlanp` and read it with `ld #vlan_tci`, whose top 4 bits are "
            "priority and DEI (mask with 0xfff)",
    "index": "the TCP header starts after the IPv4 header, whose length is in its low "
             "nibble: `ldxb 4*([14]&0xf)` puts it into X, then `ldh [x + 16]` reads the port",
}


def class_feedback(name: str, results: list[tuple[TrafficClass, dict[str, int]]],
                   load_error: str | None) -> str | None:
    if load_error:
        return load_error
    wrong = []
    for cls, passed in results:
        want = len(cls.frames) if name in cls.passes else 0
        if passed[name] != want:
            must = "must pass all" if want else "must drop all"
            wrong.append(f"  - {cls.name}: passed {passed[name]} of {len(cls.frames)} "
                         f"({must})")
    if not wrong:
        return None
    return (f"{name}.bpf, loaded into vm1 and fed the corpus class by class, got these "
            "wrong:\n" + "\n".join(wrong) + f"\nhint: {HINTS[name]}")
