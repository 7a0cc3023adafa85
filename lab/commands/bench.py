"""`lanalab bench`: LANA's receive-and-drop rate against Linux, chain scaling, socket
receivers and lab speed, measured side by side in one guest (docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from lab.bench.plan import CLOCKS, PLANS, SOURCES
from lab.errors import LabError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="benchmark LANA against Linux in a guest; write JSON, plots, summary",
        description="Boot the bench topology, measure receive-and-drop rates (Linux vs LANA "
        "chains of fwd blocks, several frame sizes), beside them XDP_DROP, tc cls_bpf, an "
        "XDP parse-then-drop and one classic-BPF filter three ways (LANA bpf block, socket "
        "filter, rewritten as XDP), the userspace receivers (PF_PACKET, PF_LANA, TPACKET_V3, "
        "AF_XDP, UDP recvfrom and recvmmsg) and lab speed, in interleaved rounds; write "
        "results.json, summary.md and plots (docs/benchmarks.md explains each point). Under "
        "TCG the guest clock counts instructions, so the figures do not move with the host's "
        "load. Default run: about 9 minutes under TCG; --quick: about 2 minutes; --full: the "
        "thesis's whole grid, 7 rounds, plus lab speed.")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a handful of points (< 2 min)")
    size.add_argument("--full", action="store_true",
                      help="every chain length and RFC 2544 size, 7 rounds, lab speed")
    size.add_argument("--engines", action="store_true",
                      help="the engine models of thesis 6.5 side by side (kthread-hp, "
                      "kthread-np, kthread-cs, hrtimer, softirq) with 1, 10 and 50 fwd "
                      "blocks beside Linux: pps, per-block cost, fig. 6.12 (~4 min)")
    p.add_argument("--source", choices=SOURCES, default="lanagen",
                   help="traffic source in the guest: lanagen hands fresh frames to vb's "
                   "receive path like a NIC driver (default); pktgen sends over a veth pair "
                   "and its frames arrive shared, so LANA clones each")
    p.add_argument("--clock", choices=CLOCKS, default="instructions",
                   help="instructions (default, TCG only): the guest clock counts "
                   "instructions, so the figures do not move with the host's load; real: "
                   "wall-clock time (always so under KVM)")
    p.add_argument("--out", type=Path, help="output folder (default bench-results/<time>/)")
    p.add_argument("--cold-build", action="store_true",
                   help="with --full: also time a cold image build (several minutes)")
    p.add_argument("--replot", type=Path, metavar="RESULTS_JSON",
                   help="only redraw summary.md and plots from an existing results.json")
    lat = p.add_argument_group(
        "latency scenario (--latency)",
        "Seed 003's function invoker: a UDP service in vm1 that answers each request with "
        "its payload reversed, served in turn by a UDP socket (recvfrom/sendto), recvmmsg/"
        "sendmmsg, AF_XDP (reply on the socket's TX ring) and a PF_LANA socket on top of "
        "eth0; a closed-loop client in h1 sends one request at a time and times each round "
        "trip with the WALL CLOCK (not the instruction clock: the guest boots without "
        "-icount, and the figures move with the host's load). Prints p50/p90/p99/p99.9 "
        "and requests/s per server kind; writes results.json and summary.md. Example: "
        "`lanalab bench --latency --requests 2000 --rounds 2` (about 2-3 min under TCG).")
    lat.add_argument("--latency", action="store_true",
                     help="run the latency scenario instead of the receive benchmark")
    lat.add_argument("--requests", type=int, default=1000,
                     help="timed requests per server kind, over all rounds (default 1000)")
    lat.add_argument("--rounds", type=int, default=2,
                     help="rounds; each visits the kinds in the opposite order of the last "
                     "(default 2)")
    lat.add_argument("--payload", type=int, default=758,
                     help="UDP payload bytes per request (default 758: seed 003's 800-byte "
                     "frames)")
    lat.add_argument("--xdp-mode", choices=("generic", "native"), default="generic",
                     help="attach AF_XDP's program in generic (skb) mode (default) or "
                     "native (driver) mode, which fails clearly where the driver lacks it")
    lat.add_argument("--kinds", default="udp_recvfrom,udp_recvmmsg,af_xdp,pf_lana",
                     help="comma-separated server kinds (default: all four)")
    p.set_defaults(func=cmd_bench)


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def cmd_bench(args: argparse.Namespace) -> int:
    from lab.bench.session import default_out_dir, run_session, write_results

    if getattr(args, "latency", False):  # Namespaces built without the latency options
        return cmd_latency(args)
    if args.replot:
        try:
            results = json.loads(args.replot.read_text())
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read {args.replot}: {exc}",
                           hint="pass the results.json a bench run wrote") from exc
        for path in write_results(results, args.out or args.replot.parent, _progress):
            print(path)
        return 0
    name = ("quick" if args.quick else "full" if args.full
            else "engines" if getattr(args, "engines", False) else "default")
    plan = replace(PLANS[name], source=args.source, clock=args.clock)
    out = args.out or default_out_dir()
    _progress(f"{plan.name} run, about {plan.estimate_seconds() / 60:.0f} min of measuring; "
              f"results in {out}/")
    start = time.monotonic()
    results = run_session(plan, out, _progress, cold_build=args.cold_build)
    print((out / "summary.md").read_text())
    _progress(f"done in {time.monotonic() - start:.0f} s: {out}/results.json, summary.md, "
              "plots")
    return 0


def cmd_latency(args: argparse.Namespace) -> int:
    from lab.bench.latency import LatencyPlan, default_out_dir, render_table, run_latency

    plan = LatencyPlan(requests=args.requests, rounds=args.rounds, payload=args.payload,
                       xdp_mode=args.xdp_mode,
                       kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()))
    out = args.out or default_out_dir()
    _progress(f"latency scenario: {len(plan.kinds)} server kinds x {plan.requests} requests, "
              f"{plan.rounds} round(s), wall clock; results in {out}/")
    start = time.monotonic()
    results = run_latency(plan, out, _progress)
    print(render_table(results["rows"]))
    _progress(f"done in {time.monotonic() - start:.0f} s: {out}/results.json, summary.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m lab.bench`, usable before `lanalab bench` is wired into lab/cli.py."""
    parser = argparse.ArgumentParser(prog="lanalab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    from lab.cli import run_parsed

    return run_parsed(args)
