"""Results of a run: results.json (raw samples, medians, ratios, the environment) and a
short summary.md with the targets and the comparison against the thesis's figures."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from lab.bench.beside import beside_ebpf, beside_receivers, render_beside, render_receivers
from lab.bench.engines import engines_summary, render_engines
from lab.bench.plan import CBPF_MODES, EBPF_MODES, RECEIVER_MODES, SOCKET_MODES
from lab.bench.runner import RawRun
from lab.bench.stats import (
    Sample,
    by_label,
    chain_slope,
    chain_slopes_per_round,
    median,
    ns_per_packet,
    receive_only_ratio,
    side_by_side_ratio,
)

SCHEMA = "lanalab-bench/1"
REPO_ROOT = Path(__file__).resolve().parents[2]

_COMMON = {
    "frames": "IPv4/UDP to a foreign MAC (02:00:00:00:be:ef), sizes with FCS (the UDP "
              "receivers' to vb's own MAC and address)",
    "linux": "vb not hooked: Linux receives and drops each frame in ip_rcv (otherhost)",
    "lana": ("vb hooked (eth, steal) -> N fwd blocks; the last has nothing above it and "
             "drops the frame (the thesis's chain); the engine's statistics count"),
    "engine": ("the lana chain with another engine model (/proc/net/lana/engine, thesis "
               "6.5): per-CPU kernel threads with queues (kthread-hp/np/cs), an hrtimer in "
               "softirq (hrtimer), or at once in the NET_RX softirq (softirq, the default); "
               "counted: frames the engine ran"),
    "pf_packet": "userspace recvfrom(2) loop on a PF_PACKET socket bound to vb",
    "udp_recvfrom": "UDP socket on port 9 of vb's address (lanagen's frames to vb's MAC "
                    "and 10.254.254.254 for this point), recvfrom(2) per datagram "
                    "(lab/bench/receivers.c)",
    "udp_recvmmsg": "the same UDP socket read with recvmmsg(2), up to 64 per call",
    "tpacket_v3": "PF_PACKET socket on vb with a TPACKET_V3 mmap'd RX ring (blocks)",
    "af_xdp": "AF_XDP socket on vb queue 0, copy mode; kernel/xdp/xdp_xsk.bpf.c in generic "
              "XDP redirects every frame into its XSKMAP",
    "xdp_generic_drop": "XDP program (kernel/xdp/xdp_drop.bpf.c) on vb, generic mode: "
                        "XDP_DROP, counted in its map",
    "tc_drop": "tc ingress filter on vb (clsact, cls_bpf direct action, "
               "kernel/xdp/tc_drop.bpf.c): TC_ACT_SHOT, counted in its map",
    "xdp_parse_drop": "XDP program on vb, generic mode: parses Ethernet/IPv4/UDP with "
                      "bounds checks, then XDP_DROP (kernel/xdp/xdp_parse_drop.bpf.c)",
    "lana_bpf": "vb hooked (eth, steal) -> bpf block with the classic-BPF filter "
                "lab/bench/udp_port9.bpf (IPv4 UDP to port 9) -> counter block, the sink; "
                "the counter counts what the filter passed",
    "cbpf_socket": "PF_PACKET socket on vb with the same classic-BPF program attached "
                   "(SO_ATTACH_FILTER), recvfrom(2) loop: what the socket got",
    "cbpf_xdp": "the same filter as XDP on vb, generic mode: the kernel cannot load cBPF "
                "at the XDP hook, so kernel/xdp/xdp_cbpf.bpf.c is the same test in "
                "restricted C; it counts what it passes in its map, then XDP_DROP",
}
TRAFFIC = {
    "lanagen": {
        **_COMMON,
        "source": "lanagen (kernel/bench/lanagen.c) in the guest: fresh frames into vb's "
                  "receive path, 64 per BH-off batch, as a NAPI driver hands them over",
        "why": ("a real NIC hands over unshared frames; pktgen holds a reference on each, "
                "so LANA's eth block (like ip_rcv) must clone every frame, a cost no NIC "
                "causes; and under TCG the guest's CPU is the bottleneck either way"),
        "cpu": "one vCPU: building a frame is part of receiving it, as in a driver",
    },
    "pktgen": {
        **_COMMON,
        "source": "pktgen inside the guest, on veth end va; frames arrive (shared) on vb",
        "why": "the kernel's own generator, for comparison: LANA's eth block clones each "
               "shared frame",
        "sender": "pktgen into a dummy device: the sender's own time per packet",
        "cpu": "one vCPU: sender and receiver share it, time per packet = t_send + t_receive",
    },
}
CLOCK = {
    "instructions": ("the guest's clock counts instructions (qemu -icount shift=0): 1 ns "
                     "is 1 guest instruction, so pps are frames per 1e9 instructions and "
                     "ns are instructions; the host's load does not change them"),
    "real": "wall-clock time in the guest: figures move with the host's load",
}

# Figures the thesis states in its text (sections 6.4.1 and 6.4.2), 64-byte frames
THESIS = {
    "linux_pps_64": 1.38e6,
    "lana1_over_linux": 1.0,
    "lana10_pps_64": 1.18e6,
    "lana10_over_lana1": 1.18 / 1.38,
    "pps_1518": 81_000.0,
    "pf_lana_over_pf_packet": 1.0,
    "pf_packet_pps_64": 850_000.0,
    # (1/1.18 Mpps - 1/1.38 Mpps) over the 9 blocks between 1 and 10 FBs, Core 2 Q6600
    "ns_per_block": (1e9 / 1.18e6 - 1e9 / 1.38e6) / 9,
}


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) or math.isinf(x) else round(x, 4)


def point_summaries(samples: list[Sample]) -> list[dict[str, Any]]:
    rows = []
    for label, group in by_label(samples).items():
        first = group[0]
        pps = [s.pps for s in group]
        row: dict[str, Any] = {
            "label": label, "mode": first.mode, "size": first.size, "blocks": first.blocks,
            "rounds": len(group), "median_pps": _finite(median(pps)),
            "min_pps": _finite(min(pps)), "max_pps": _finite(max(pps)),
            "ns_per_packet": _finite(ns_per_packet(median(pps))),
        }
        linux, sender = f"linux@{first.size}", f"sender@{first.size}"
        if first.mode in ("lana", "engine", *EBPF_MODES, *CBPF_MODES, *SOCKET_MODES):
            row["ratio_to_linux"] = _finite(side_by_side_ratio(samples, label, linux))
        if first.mode in RECEIVER_MODES[1:]:
            row["ratio_to_udp_recvfrom"] = _finite(
                side_by_side_ratio(samples, label, f"udp_recvfrom@{first.size}"))
        if first.mode == "pf_lana":
            row["ratio_to_pf_packet"] = _finite(
                side_by_side_ratio(samples, label, f"pf_packet@{first.size}"))
        if first.mode in ("lana", *EBPF_MODES):
            row["ratio_to_lana1"] = _finite(
                side_by_side_ratio(samples, label, f"lana1@{first.size}"))
        if first.mode in CBPF_MODES[1:]:
            row["ratio_to_lana_bpf"] = _finite(
                side_by_side_ratio(samples, label, f"lana_bpf@{first.size}"))
        if first.mode == "lana":
            row["receive_only_ratio_to_linux"] = _finite(_receive_only(samples, label, linux,
                                                                       sender))
        rows.append(row)
    order = {"sender": 0, "linux": 1, "lana": 2, "engine": 2.5,
             **{m: 3 + i for i, m in enumerate(EBPF_MODES)},
             **{m: 6 + i for i, m in enumerate(CBPF_MODES)},
             **{m: 10 + i for i, m in enumerate(SOCKET_MODES)}}
    return sorted(rows, key=lambda r: (r["size"], order.get(r["mode"], 99),
                                       r["label"].split(":")[0] if r["mode"] == "engine"
                                       else "", r["blocks"]))


def _receive_only(samples: list[Sample], label: str, linux: str, sender: str) -> float:
    """Median over rounds of the receive-only ratio (sender's cost taken out)."""
    rounds = sorted({s.round for s in samples})
    values = []
    for r in rounds:
        pps = {s.label: s.pps for s in samples if s.round == r}
        if label in pps and linux in pps and sender in pps:
            values.append(receive_only_ratio(pps[label], pps[linux], pps[sender]))
    return median(v for v in values if not math.isnan(v))


def _row(points: list[dict[str, Any]], label: str) -> dict[str, Any]:
    return next((p for p in points if p["label"] == label), {})


def targets(points: list[dict[str, Any]], skipped: dict[str, str]) -> list[dict[str, Any]]:
    lana1, lana10 = _row(points, "lana1@64"), _row(points, "lana10@64")

    def check(name: str, goal: float, measured: float | None, note: str) -> dict[str, Any]:
        met = None if measured is None else measured >= goal
        return {"target": name, "goal": goal, "measured": measured, "met": met, "note": note}

    pf_lana = _row(points, "pf_lana@64").get("ratio_to_pf_packet")
    pf_note = (skipped.get("pf_lana@64", "") if pf_lana is None
               else "pps ratio, same round; both receivers share the vCPU with the source")
    return [
        check("1 block >= 95% of Linux (64 B)", 0.95, lana1.get("ratio_to_linux"),
              "pps ratio, same round"),
        check("10 blocks >= 90% of 1 block (64 B)", 0.90, lana10.get("ratio_to_lana1"),
              "pps ratio, same round (thesis: 0.855)"),
        check("PF_LANA >= PF_PACKET (64 B)", 1.0, pf_lana, pf_note),
    ]


def thesis_comparison(points: list[dict[str, Any]], slope: dict[str, Any] | None,
                      skipped: dict[str, str]) -> list[dict[str, Any]]:
    def row(what: str, thesis: float, measured: float | None, unit: str) -> dict[str, Any]:
        return {"what": what, "thesis": round(thesis, 4), "measured": measured, "unit": unit}

    linux, lana1, lana10 = (_row(points, f"{x}@64") for x in ("linux", "lana1", "lana10"))
    big = _row(points, "lana1@1518")
    pf = _row(points, "pf_packet@64")
    pf_lana = _row(points, "pf_lana@64")
    return [
        row("Linux receive-and-drop, 64 B", THESIS["linux_pps_64"], linux.get("median_pps"),
            "pps"),
        row("LANA 1 FB / Linux, 64 B", THESIS["lana1_over_linux"],
            lana1.get("ratio_to_linux"), "ratio"),
        row("LANA 10 FB, 64 B", THESIS["lana10_pps_64"], lana10.get("median_pps"), "pps"),
        row("LANA 10 FB / 1 FB, 64 B", THESIS["lana10_over_lana1"],
            lana10.get("ratio_to_lana1"), "ratio"),
        row("engine cost per fwd block", THESIS["ns_per_block"],
            slope["ns_per_block"] if slope else None, "ns/packet"),
        row("LANA 1 FB, 1518 B", THESIS["pps_1518"], big.get("median_pps"), "pps"),
        row("PF_PACKET receiver, 64 B", THESIS["pf_packet_pps_64"], pf.get("median_pps"),
            "pps"),
        {**row("PF_LANA / PF_PACKET, 64 B", THESIS["pf_lana_over_pf_packet"],
               pf_lana.get("ratio_to_pf_packet"), "ratio"),
         "note": skipped.get("pf_lana@64", "")},
    ]


def _host_environment() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    qemu = _first_line(["qemu-system-x86_64", "--version"])
    commit = _first_line(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    return {"cpu_model": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "qemu": qemu, "lab_commit": commit}


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        return (out.stdout.splitlines() or ["?"])[0]
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def build_results(raw: RawRun, lab_speed: dict[str, Any] | None = None,
                  load: tuple[list[float], list[float]] | None = None) -> dict[str, Any]:
    points = point_summaries(raw.samples)
    fit = chain_slope(raw.samples, 64)
    per_round = chain_slopes_per_round(raw.samples, 64)
    slope = None if fit is None else {
        "size": 64,
        "ns_per_block": _finite(median(f.slope for f in per_round)),
        "per_round_ns_per_block": [_finite(f.slope) for f in per_round],
        "fit_of_medians_ns_per_block": _finite(fit.slope),
        "intercept_ns": _finite(fit.intercept), "r2": _finite(fit.r2),
        "chain_lengths": fit.points,
        "note": "ns_per_block: median over rounds of the least-squares slope of ns per "
                "packet over chain length (LANA, 64 B); intercept and r2: fit of medians"}
    finished = time.time()
    host = _host_environment()
    if load:
        host["loadavg_start"], host["loadavg_end"] = load
    return {
        "schema": SCHEMA,
        "started": _iso(raw.started), "finished": _iso(finished),
        "duration_s": round(finished - raw.started, 1),
        "plan": raw.plan.to_json(),
        "environment": {"accel": raw.guest.get("accel", "?"), "host": host,
                        "guest": raw.guest, "image": raw.image},
        "traffic": TRAFFIC[raw.plan.source],
        "clock": CLOCK[raw.guest.get("clock", "real")],
        "timings": {k: _finite(v) for k, v in raw.timings.items()},
        "samples": [{**s.__dict__, "pps": _finite(s.pps)} for s in raw.samples],
        "skipped": raw.skipped,
        "points": points,
        "chain_slope": slope,
        "targets": targets(points, raw.skipped),
        "thesis_comparison": thesis_comparison(points, slope, raw.skipped),
        "beside_ebpf": beside_ebpf(points),
        "beside_receivers": beside_receivers(points),
        "engines": engines_summary(raw.samples),
        "lab_speed": lab_speed or {},
    }


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def write_json(results: dict[str, Any], out: Path) -> Path:
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "pps":
        return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.1f} k"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit == "ns/packet":
        return f"{value:.0f} ns"
    return str(value)


def _load(host: dict[str, Any], key: str) -> str:
    values = host.get(key)
    return f"{values[0]:.1f}" if values else "?"


def render_summary(results: dict[str, Any]) -> str:
    env = results["environment"]
    counts_instructions = env["guest"].get("clock") == "instructions"
    lines = [
        f"# LANA lab benchmark ({results['plan']['name']}, {results['started']})", "",
        f"- accelerator: **{env['accel']}**; host CPU {env['host']['cpu_model']} "
        f"({env['host']['cores']} cores), host kernel {env['host']['kernel']}",
        f"- guest: kernel {env['guest'].get('kernel', '?')}, {env['guest'].get('cpus', '?')} "
        f"vCPU ({env['guest'].get('cpu_model', '?')})",
        f"- host load average (1 min) {_load(env['host'], 'loadavg_start')} at the start, "
        f"{_load(env['host'], 'loadavg_end')} at the end"
        + ("" if counts_instructions else
           ": above the core count, other VMs take the vCPU's time and even ratios drift "
           "(docs/benchmarks.md)"),
        f"- {results['plan']['rounds']} interleaved rounds, {results['plan']['seconds']} s per "
        f"point; medians; ratios taken inside a round. Run took {results['duration_s']} s.",
        f"- traffic: {results['traffic']['source']} ({results['traffic']['cpu']})",
        f"- clock: {CLOCK['instructions' if counts_instructions else 'real']}", "",
        "## Targets (reported, not enforced)", "",
        "| target | measured | met |", "|---|---|---|"]
    for t in results["targets"]:
        met = {True: "yes", False: "no", None: "n/a"}[t["met"]]
        lines.append(f"| {t['target']} | {_fmt(t['measured'], 'ratio')} | {met} |")
    lines += ["", "## Against the thesis (Core 2 Q6600, e1000e, Linux 3.0)", "",
              "| figure | thesis | measured here |", "|---|---|---|"]
    for row in results["thesis_comparison"]:
        note = f" ({row['note']})" if row.get("note") else ""
        lines.append(f"| {row['what']} | {_fmt(row['thesis'], row['unit'])} | "
                     f"{_fmt(row['measured'], row['unit'])}{note} |")
    lines += render_beside(results.get("beside_ebpf"), counts_instructions)
    lines += render_receivers(results.get("beside_receivers"))
    lines += render_engines(results.get("engines"), counts_instructions)
    lines += ["", "## Points (median pps)", "",
              "| point | pps | min..max | ratio to Linux | receive-only ratio | ratio to 1 FB |",
              "|---|---|---|---|---|---|"]
    for p in results["points"]:
        lines.append(f"| {p['label']} | {_fmt(p['median_pps'], 'pps')} | "
                     f"{_fmt(p['min_pps'], 'pps')}..{_fmt(p['max_pps'], 'pps')} | "
                     f"{_fmt(p.get('ratio_to_linux'), 'ratio')} | "
                     f"{_fmt(p.get('receive_only_ratio_to_linux'), 'ratio')} | "
                     f"{_fmt(p.get('ratio_to_lana1'), 'ratio')} |")
    slope = results["chain_slope"]
    if slope:
        rounds = ", ".join(f"{v:.0f}" for v in slope["per_round_ns_per_block"])
        unit = " (instructions)" if counts_instructions else ""
        lines += ["", f"Engine cost per fwd block (64 B): **{slope['ns_per_block']:.0f} ns**"
                  f"{unit} "
                  f"per packet, median of the rounds' slopes ({rounds}); the fit over the "
                  f"medians gives {slope['fit_of_medians_ns_per_block']:.0f} ns (r² "
                  f"{slope['r2']:.3f}, {slope['chain_lengths']} chain lengths, 0-block "
                  f"intercept {slope['intercept_ns']:.0f} ns)."]
    for label, reason in results["skipped"].items():
        lines.append(f"\nSkipped {label}: {reason}")
    if results["lab_speed"]:
        lines += ["", "## Lab speed", "", "| what | seconds |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in results["lab_speed"].items()]
    return "\n".join(lines) + "\n"
