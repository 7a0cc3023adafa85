"""LANA beside XDP and tc-eBPF: the summary's table of the receive-and-drop paths at each
size the eBPF points were measured at, with seed 003's own figures for comparison."""

from __future__ import annotations

from typing import Any

from lab.bench.plan import EBPF_MODES

# the paths side by side: mode (lana: 1 FB), what runs per frame
PATHS = (
    ("linux", "Linux stack: ip_rcv drops it (otherhost)"),
    ("lana", "LANA 1 FB: eth block steals it, the fwd block drops it"),
    ("xdp_generic_drop", "XDP (generic mode) on vb: XDP_DROP"),
    ("tc_drop", "tc ingress (clsact, cls_bpf direct action): TC_ACT_SHOT"),
    ("xdp_parse_drop", "XDP (generic): parse Ethernet/IPv4/UDP, then XDP_DROP"),
)
# Seed 003 (a thesis on eBPF, XDP and AF_XDP): userspace receivers, one thread, its own
# hardware and NIC; kpps by frame size
SEED_003 = {
    "what": "seed 003, one receive thread on real hardware: userspace receivers",
    "kpps": {200: {"udp_recvfrom": 220, "udp_recvmmsg": 463, "af_xdp": 1359},
             1400: {"udp_recvfrom": 140, "udp_recvmmsg": 199, "af_xdp": 530}},
}
NOTE = ("lanagen calls netif_receive_skb() on vb, so XDP runs in generic mode (native XDP "
        "on veth sees only frames from the peer's xmit); every eBPF program counts its "
        "drops in a pinned map, as LANA's engine counts in /proc/net/lana/ppe")


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
              + ". The lab's UDP and AF_XDP receivers are not measured yet."]
    return lines
