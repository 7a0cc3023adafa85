"""Cross-host against same-host, side by side in one run (`python -m lab.bench.crosshost`):
what the VXLAN link between hypervisors costs in frame rate and latency.

The lab is lab/multihost/testlab.py's on the one-machine testbed; vm1 (on hv1) sends on two
paths in turn:

    same host     vm1 eth1 -> hv1's bridge of s2 -> vm3 eth0
    across hosts  vm1 eth0 -> hv1's bridge of s1 -> VXLAN over the underlay -> hv2's
                  bridge of s1 -> vm2 eth0

Frame rate: pktgen in vm1 sends FRAMES 60-byte UDP frames (port 9) to the receiver's MAC
as fast as it can; the receiver counts them in a LANA stack (eth -> bpf(UDP port 9) ->
counter). Delivered rate = frames counted / pktgen's send time; lost = sent - counted.
Latency: ping round trips from vm1, PINGS echoes 20 ms apart (Linux's stacks at both ends).

Each round measures both paths, in the opposite order of the round before, so a drift of
the host's speed favours neither. The clock is the wall clock (libvirt guests have no
instruction clock): the figures move with the host's load; the ratio is the point.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.bench.session import DEFAULT_OUT
from lab.errors import LabError
from lab.grading.traffic import wait_settled
from lab.labrun import LabRun

BPF_FILE = Path(__file__).with_name("udp_port9.bpf")
# path name -> (sender NIC in vm1, receiver VM, receiver address); receivers use eth0
PATHS = {"same host": ("eth1", "vm3", "10.0.1.3"), "across hosts": ("eth0", "vm2", "10.0.0.2")}
FRAME_SIZE = 60  # bytes on the wire without FCS: pktgen's pkt_size
COUNTING = ("modprobe -a lana fb_eth fb_bpf fb_counter && vlink ethernet hook eth0 && "
            "fbctl add xf bpf && bpfc /tmp/udp9.bpf > /proc/net/lana/fblock/xf && "
            "fbctl add xc counter && fbctl bind xf eth0 && fbctl bind xc xf")
UNCOUNTING = ("fbctl unbind xc xf && fbctl unbind xf eth0 && fbctl rm xc && fbctl rm xf && "
              "vlink ethernet unhook eth0")
PKTGEN_RESULT = re.compile(r"Result: OK: (\d+)\(.*?usec, (\d+) ")
PING_RTT = re.compile(r"time=([\d.]+) ms")


@dataclass(frozen=True)
class Plan:
    rounds: int = 3
    frames: int = 20000
    pings: int = 50


@dataclass
class Sample:
    path: str
    round_no: int
    sent: int
    counted: int
    send_seconds: float
    rtts_ms: list[float]

    @property
    def rate_pps(self) -> float:
        return self.counted / self.send_seconds if self.send_seconds > 0 else 0.0


def pktgen_script(dev: str, dst_mac: str, dst_ip: str, frames: int) -> str:
    """Configure pktgen on `dev` for `frames` frames to dst_mac, run it (blocks), print its
    result line."""
    pg = "/proc/net/pktgen"
    settings = [f"count {frames}", "clone_skb 0", "delay 0", f"pkt_size {FRAME_SIZE}",
                f"dst_mac {dst_mac}", f"dst {dst_ip}", "udp_dst_min 9", "udp_dst_max 9"]
    lines = ["modprobe pktgen", f"echo rem_device_all > {pg}/kpktgend_0",
             f"echo add_device {dev} > {pg}/kpktgend_0",
             *(f"echo '{s}' > {pg}/{dev}" for s in settings),
             f"echo start > {pg}/pgctrl", f"grep Result: {pg}/{dev}"]
    return " && ".join(lines)


def parse_pktgen(out: str) -> tuple[int, float]:
    """(frames sent, seconds) from pktgen's `Result: OK: <usec>(...) usec, <n> (...)`."""
    found = PKTGEN_RESULT.search(out)
    if found is None:
        raise LabError(f"pktgen printed no result: {out.strip()!r}",
                       hint="the guest kernel needs pktgen (kernel/net/ in the image)")
    return int(found.group(2)), int(found.group(1)) / 1e6


def parse_rtts(out: str) -> list[float]:
    return [float(t) for t in PING_RTT.findall(out)]


def counted(lab: LabRun, vm: str) -> int:
    return int(lab.sh(vm, "cat /proc/net/lana/fblock/xc").split()[0])


def measure_path(lab: LabRun, path: str, round_no: int, plan: Plan) -> Sample:
    dev, receiver, addr = PATHS[path]
    mac = lab.sh(receiver, "cat /sys/class/net/eth0/address").strip()
    rtts = parse_rtts(lab.sh("vm1", f"ping -n -c {plan.pings} -i 0.02 -W 2 {addr} || true"))
    lab.vms[receiver].put_file("/tmp/udp9.bpf", BPF_FILE.read_bytes())
    lab.sh(receiver, COUNTING)
    try:
        sent, seconds = parse_pktgen(lab.sh("vm1", pktgen_script(dev, mac, addr, plan.frames),
                                            timeout=300))
        got = int(str(wait_settled(lambda: counted(lab, receiver), expect=sent, quiet=1.0)))
    finally:
        lab.sh(receiver, UNCOUNTING)
    return Sample(path, round_no, sent, got, seconds, rtts)


def measure(lab: LabRun, plan: Plan, progress: Any = print) -> list[Sample]:
    samples = []
    names = list(PATHS)
    for round_no in range(plan.rounds):
        for path in names if round_no % 2 == 0 else reversed(names):
            sample = measure_path(lab, path, round_no, plan)
            progress(f"round {round_no + 1}/{plan.rounds}, {path}: "
                     f"{sample.rate_pps / 1000:.1f} kpps, {sample.sent - sample.counted} lost, "
                     f"median rtt {statistics.median(sample.rtts_ms or [0]):.2f} ms")
            samples.append(sample)
    return samples


def summarize(samples: list[Sample]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path in PATHS:
        mine = [s for s in samples if s.path == path]
        rtts = sorted(r for s in mine for r in s.rtts_ms)
        paths[path] = {
            "rate_pps_median": statistics.median(s.rate_pps for s in mine),
            "rates_pps": [round(s.rate_pps) for s in mine],
            "lost": sum(s.sent - s.counted for s in mine),
            "sent": sum(s.sent for s in mine),
            "rtt_ms_median": statistics.median(rtts) if rtts else None,
            "rtt_ms_p90": rtts[int(0.9 * (len(rtts) - 1))] if rtts else None,
            "pings_answered": len(rtts),
        }
    same, across = paths["same host"], paths["across hosts"]
    ratios = {"rate_across_over_same": across["rate_pps_median"] / same["rate_pps_median"]
              if same["rate_pps_median"] else None,
              "rtt_across_over_same": across["rtt_ms_median"] / same["rtt_ms_median"]
              if same["rtt_ms_median"] and across["rtt_ms_median"] else None}
    return {"paths": paths, "ratios": ratios}


def render(summary: dict[str, Any]) -> str:
    lines = [f"{'path':<14} {'kpps (median)':>14} {'lost/sent':>14} {'rtt median':>11} "
             f"{'rtt p90':>9}"]
    for path, p in summary["paths"].items():
        lines.append(f"{path:<14} {p['rate_pps_median'] / 1000:>14.1f} "
                     f"{p['lost']:>7}/{p['sent']:<6} {p['rtt_ms_median'] or 0:>9.2f}ms "
                     f"{p['rtt_ms_p90'] or 0:>7.2f}ms")
    r = summary["ratios"]
    lines.append(f"across / same: rate {r['rate_across_over_same'] or 0:.2f}, "
                 f"median rtt {r['rtt_across_over_same'] or 0:.2f}")
    return "\n".join(lines)


def plot(samples: list[Sample], summary: dict[str, Any], path: Path) -> Path | None:
    """Two panels: delivered frame rate per round, and the round-trip times' spread."""
    from lab.bench.plots import matplotlib_missing

    if matplotlib_missing():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(PATHS)
    fig, (rate_ax, rtt_ax) = plt.subplots(1, 2, figsize=(9, 3.8))
    for i, name in enumerate(names):
        rates = [s.rate_pps / 1000 for s in samples if s.path == name]
        rate_ax.bar(i, summary["paths"][name]["rate_pps_median"] / 1000, color=f"C{i}",
                    alpha=0.6)
        rate_ax.plot([i] * len(rates), rates, "k.", label="rounds" if i == 0 else None)
    rate_ax.set_xticks(range(len(names)), names)
    rate_ax.set_ylabel("frames delivered (kpps)")
    rate_ax.set_title("frame rate through LANA counters")
    rate_ax.legend(loc="lower right")
    rtt_ax.boxplot([[r for s in samples if s.path == n for r in s.rtts_ms] or [0]
                    for n in names], showfliers=False)
    rtt_ax.set_xticks(range(1, len(names) + 1), names)
    rtt_ax.set_ylabel("ping round trip (ms)")
    rtt_ax.set_title("latency")
    ratios = summary["ratios"]
    fig.suptitle(f"lab across hosts: VXLAN vs one bridge (across/same: rate "
                 f"{ratios['rate_across_over_same'] or 0:.2f}, rtt "
                 f"{ratios['rtt_across_over_same'] or 0:.2f}; TCG, wall clock)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_results(samples: list[Sample], plan: Plan, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(samples)
    results = {"plan": asdict(plan), "samples": [asdict(s) for s in samples], **summary}
    (out / "crosshost.json").write_text(json.dumps(results, indent=1) + "\n")
    figure = plot(samples, summary, out / "crosshost.png")
    results["figure"] = str(figure) if figure else None
    return results


def run(plan: Plan, out: Path, progress: Any = print) -> dict[str, Any]:
    """Build the testbed, bring the lab up, measure, tear everything down."""
    from lab.multihost.testbed import TwoHostTestbed
    from lab.multihost.testlab import spread_lab

    with TwoHostTestbed(join_local=True) as testbed, \
            tempfile.TemporaryDirectory(prefix="lanalab-crosshost-") as folder:
        lab = spread_lab(testbed, Path(folder), progress)
        with lab:
            samples = measure(lab, plan, progress)
    return write_results(samples, plan, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.bench.crosshost",
        description="Frame rate and latency on the same host and across a VXLAN link "
                    "between two hypervisors, side by side in one run, on the one-machine "
                    "testbed (needs root; about 2 minutes under TCG).")
    parser.add_argument("--rounds", type=int, default=Plan.rounds,
                        help="rounds, each measuring both paths (default %(default)s)")
    parser.add_argument("--frames", type=int, default=Plan.frames,
                        help="pktgen frames per path and round (default %(default)s)")
    parser.add_argument("--pings", type=int, default=Plan.pings,
                        help="ping echoes per path and round (default %(default)s)")
    parser.add_argument("--out", type=Path,
                        default=DEFAULT_OUT / time.strftime("crosshost-%Y%m%d-%H%M%S"),
                        help="folder for crosshost.json and crosshost.png")
    args = parser.parse_args(argv)
    if min(args.rounds, args.frames, args.pings) < 1:
        parser.error("--rounds, --frames and --pings must be at least 1")
    try:
        results = run(Plan(args.rounds, args.frames, args.pings), args.out)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(render(results))
    print(f"results: {args.out / 'crosshost.json'}"
          + (f", figure: {results['figure']}" if results["figure"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
