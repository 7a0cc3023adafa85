"""LANA beside XDP and tc-eBPF: the summary's table of the receive-and-drop paths at each
size the eBPF points were measured at, and the table of the userspace receivers (PF_PACKET,
PF_LANA, UDP recvfrom/recvmmsg, TPACKET_V3, AF_XDP), with seed 003's own figures for
comparison."""

from __future__ import annotations

from typing import Any

from lab.bench.plan import EBPF_MODES, RECEIVER_MODES

# the paths side by side: mode (lana: 1 FB), what runs per frame
PATHS = (
    ("linux", "Linux stack: ip_rcv drops it (otherhost)"),
    ("lana", "LANA 1 FB: eth block steals it, the fwd block drops it"),
    ("xdp_generic_drop", "XDP (generic mode) on vb: XDP_DROP"),
    ("tc_drop", "tc ingress (clsact, cls_bpf direct action): TC_ACT_SHOT"),
    ("xdp_parse_drop", "XDP (generic): parse Ethernet/IPv4/UDP, then XDP_DROP"),
    ("lana_bpf", "LANA: eth -> bpf block (cBPF: IPv4 UDP to port 9) -> counter"),
    ("cbpf_socket", "the same cBPF program on a PF_PACKET socket (SO_ATTACH_FILTER), "
                    "recvfrom(2)"),
    ("cbpf_xdp", "the same filter as XDP (generic; restricted C, not cBPF), counted, "
                 "XDP_DROP"),
)
# Seed 003 (a thesis on eBPF, XDP and AF_XDP): userspace receivers, one thread, its own
# hardware and NIC; kpps by frame size
SEED_003_KPPS: dict[int, dict[str, int]] = {
    200: {"udp_recvfrom": 220, "udp_recvmmsg": 463, "af_xdp": 1359},
    1400: {"udp_recvfrom": 140, "udp_recvmmsg": 199, "af_xdp": 530},
}
SEED_003: dict[str, Any] = {
    "what": "seed 003, one receive thread on real hardware: userspace receivers",
    "kpps": SEED_003_KPPS,
}
# the userspace receivers: mode, what it does per frame
RECEIVERS = (
    ("pf_packet", "PF_PACKET socket, recvfrom(2): one copy per frame"),
    ("pf_lana", "PF_LANA socket above vb (eth -> pflana), recvfrom(2)"),
    ("udp_recvfrom", "UDP socket on vb's address, recvfrom(2): one datagram per call"),
    ("udp_recvmmsg", "UDP socket, recvmmsg(2): up to 64 datagrams per call"),
    ("tpacket_v3", "PF_PACKET with a TPACKET_V3 mmap'd ring: blocks of frames, no copy out"),
    ("af_xdp", "AF_XDP copy mode (generic XDP redirects into an XSKMAP): UMEM rings"),
)
RECEIVER_NOTE = ("every receiver shares the one vCPU with the frame source, so its rate is "
                 "what is left after the kernel built and delivered each frame; the UDP "
                 "points send to vb's own MAC and address, the others get the source's "
                 "usual frames; seed "
                 "003's column is its own ratio to its simple socket at its nearest size")
NOTE = ("lanagen calls netif_receive_skb() on vb, so XDP runs in generic mode (native XDP "
        "on veth sees only frames from the peer's xmit); every eBPF program counts its "
        "drops in a pinned map, as LANA's engine counts in /proc/net/lana/ppe; the cBPF "
        "rows run one classic-BPF filter (lab/bench/udp_port9.bpf) in a LANA bpf block, "
        "on a socket and, rewritten in restricted C, as XDP")


def _label(mode: str, size: int) -> str:
    return f"lana1@{size}" if mode == "lana" else f"{mode}@{size}"


def beside_ebpf(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Rows per size that has eBPF points; None when the run measured none."""
    by_label = {p["label"]: p for p in points}
    sizes = sorted({p["size"] for p in points if p["mode"] in EBPF_MODES})
    if not sizes:
        return None
    rows = []
    for size in sizes:
        for mode, what in PATHS:
            p = by_label.get(_label(mode, size))
            if p is None:
                continue
            ratio = 1.0 if mode == "linux" else p.get("ratio_to_linux")
            rows.append({"label": p["label"], "size": size, "what": what,
                         "median_pps": p.get("median_pps"),
                         "ns_per_packet": p.get("ns_per_packet"), "ratio_to_linux": ratio})
    return {"rows": rows, "seed_003": SEED_003, "note": NOTE}


def render_beside(beside: dict[str, Any] | None, instructions: bool) -> list[str]:
    if not beside:
        return []
    unit = "instructions" if instructions else "ns"
    lines = ["", "## LANA beside XDP and tc-eBPF (receive and drop on vb)", "",
             f"| point | what runs per frame | pps | {unit} per frame | ratio to Linux |",
             "|---|---|---|---|---|"]
    for r in beside["rows"]:
        pps = r["median_pps"]
        ns = r["ns_per_packet"]
        ratio = r["ratio_to_linux"]
        lines.append(f"| {r['label']} | {r['what']} | "
                     f"{'-' if pps is None else f'{pps / 1e3:.1f} k'} | "
                     f"{'-' if ns is None else f'{ns:.0f}'} | "
                     f"{'-' if ratio is None else f'{ratio:.2f}'} |")
    seed = beside["seed_003"]["kpps"]
    lines += ["", f"{beside['note']}.", "",
              f"For later comparison, {beside['seed_003']['what']} (kpps): "
              + "; ".join(f"{size} B: UDP recvfrom {v['udp_recvfrom']}, recvmmsg "
                          f"{v['udp_recvmmsg']}, AF_XDP {v['af_xdp']:,}"
                          for size, v in sorted(seed.items()))
              + " (the lab's own receivers: the next table, when measured)."]
    return lines


def seed_ratio(mode: str, size: int = 200) -> float | None:
    """Seed 003's rate of `mode` over its simple UDP socket's, at `size` bytes."""
    kpps = SEED_003_KPPS.get(size, {})
    if mode not in kpps or "udp_recvfrom" not in kpps:
        return None
    return float(kpps[mode]) / float(kpps["udp_recvfrom"])


def seed_size(size: int) -> int:
    """The size of seed 003's figures nearest to a frame size of ours (200 or 1400 B)."""
    return min(SEED_003_KPPS, key=lambda s: abs(s - size))


def beside_receivers(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Rows per size of the userspace receivers; None when the run measured none of the
    UDP/TPACKET_V3/AF_XDP points."""
    by_label = {p["label"]: p for p in points}
    sizes = sorted({p["size"] for p in points if p["mode"] in RECEIVER_MODES})
    if not sizes:
        return None
    rows = []
    for size in sizes:
        for mode, what in RECEIVERS:
            p = by_label.get(f"{mode}@{size}")
            if p is None:
                continue
            rows.append({"label": p["label"], "mode": mode, "size": size, "what": what,
                         "median_pps": p.get("median_pps"),
                         "ratio_to_linux": p.get("ratio_to_linux"),
                         "ratio_to_udp_recvfrom": (1.0 if mode == "udp_recvfrom"
                                                   else p.get("ratio_to_udp_recvfrom")),
                         "seed_003_size": seed_size(size),
                         "seed_003_ratio": seed_ratio(mode, seed_size(size))})
    return {"rows": rows, "note": RECEIVER_NOTE}


SEED_ORDER = ("seed 003 (one thread, real NIC, AF_XDP in the driver): AF_XDP > recvmmsg > "
              "simple socket, 6.2x and 2.9x at 200 B")
WHY_DIFFERENT = (
    "Why it differs: under the instruction clock a system call costs a few hundred "
    "instructions (no mitigations in the TCG guest, no pipeline flush or TLB miss counted), "
    "so recvmmsg saves little of each datagram's UDP receive work; lanagen's frames are skbs, "
    "so AF_XDP runs in generic mode and pays for an skb head reallocation and a copy per "
    "frame, where seed 003's runs in the driver before any skb exists; TPACKET_V3 copies "
    "each frame into its ring and wakes the reader once per block; and source and receiver "
    "share one vCPU (docs/benchmarks.md, \"Userspace receivers beside seed 003\")")


def ordering(rows: list[dict[str, Any]], size: int) -> str:
    """The receivers at `size`, fastest first ("a > b > c")."""
    here = sorted((r for r in rows if r["size"] == size and r.get("median_pps")),
                  key=lambda r: -r["median_pps"])
    return " > ".join(r["mode"] for r in here)


def render_receivers(receivers: dict[str, Any] | None) -> list[str]:
    if not receivers:
        return []
    lines = ["", "## Userspace receivers beside seed 003 (frames a program gets on vb)", "",
             "| point | what the receiver does | pps | ratio to Linux | ratio to UDP "
             "recvfrom | seed 003: ratio to its simple socket (at 200 B for 64-800 B, "
             "1400 B above) |",
             "|---|---|---|---|---|---|"]

    def fmt(x: float | None, spec: str = ".2f") -> str:
        return "-" if x is None else format(x, spec)

    for r in receivers["rows"]:
        pps = r["median_pps"]
        lines.append(f"| {r['label']} | {r['what']} | "
                     f"{'-' if pps is None else f'{pps / 1e3:.1f} k'} | "
                     f"{fmt(r['ratio_to_linux'])} | {fmt(r['ratio_to_udp_recvfrom'])} | "
                     f"{fmt(r.get('seed_003_ratio'))} |")
    note = receivers["note"]
    lines += ["", f"{note[:1].upper()}{note[1:]}."]
    sizes = sorted({r["size"] for r in receivers["rows"]})
    lines += ["", "Order here: " + "; ".join(f"{size} B: {ordering(receivers['rows'], size)}"
                                             for size in sizes)
              + f". Order in {SEED_ORDER}. {WHY_DIFFERENT}."]
    return lines
