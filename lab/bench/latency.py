"""The latency scenario (`lanalab bench --latency`): seed 003's use case, a UDP
request/response service that reverses each request's payload, served in vm1 of the bench
topology in four ways (lab/bench/latency_server.c) and driven from the Mininet host h1 by a
closed-loop client (lab/bench/latency_client.py): one request at a time, each round trip
timed with the **wall clock** (the host's perf_counter), not the guest's instruction clock:
a round trip crosses the host's bridge, qemu's NIC emulation and the guest, and only the
wall clock sees all of it. The guest therefore boots without -icount, and the figures move
with the host's load (the results record it).

Server kinds, measured in turn on the same booted lab (each round in the opposite order of
the one before, so a drift of the host's speed does not favour one kind):

    udp_recvfrom  UDP socket, recvfrom(2)/sendto(2)
    udp_recvmmsg  UDP socket, recvmmsg(2)/sendmmsg(2) (up to 64 per call)
    af_xdp        AF_XDP on eth0 queue 0 (kernel/xdp/xdp_xsk.bpf.c, generic XDP unless
                  native is asked for), reply built in the UMEM frame, sent on its TX ring
    pf_lana       PF_LANA socket on top of eth0 (`vlink ethernet hook eth0`, steal mode):
                  the whole frame comes up, the reply frame goes back down

While af_xdp or pf_lana serves, every frame of eth0 goes to the server, which answers the
requests and drops the rest (ARP too): h1 therefore gets a permanent neighbour entry for
vm1 before the first request, and the servers reply to the request's own MAC.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
KINDS = ("udp_recvfrom", "udp_recvmmsg", "af_xdp", "pf_lana")
WHAT = {
    "udp_recvfrom": "UDP socket, recvfrom(2) / sendto(2)",
    "udp_recvmmsg": "UDP socket, recvmmsg(2) / sendmmsg(2)",
    "af_xdp": "AF_XDP copy mode on eth0, reply on the socket's TX ring",
    "pf_lana": "PF_LANA socket on top of eth0 (eth -> pflana), reply sent back down",
}
SERVER = "/tmp/lanalat-server"
XSK_OBJECT = "/tmp/lanalat-xdp_xsk.bpf.o"
PF_NAME = "latsrv"  # the PF_LANA socket's instance name
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
SCHEMA = "lanalab-latency/1"
DEFAULT_OUT = Path("bench-results")
# seed 003's client: 800-byte frames (42 bytes of headers, 758 of payload), one request at
# a time per connection, a 1 s read deadline
SEED_PAYLOAD = 758

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LatencyPlan:
    requests: int = 1000  # timed requests per server kind, over all rounds
    rounds: int = 2
    payload: int = SEED_PAYLOAD  # bytes of UDP payload per request
    warmup: int = 10  # untimed requests before each kind's timed ones, every round
    port: int = 7777
    timeout: float = 1.0  # s without a reply: the request counts as lost
    xdp_mode: str = "generic"  # "generic" or "native" (driver mode)
    kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        if self.requests < 1 or self.rounds < 1 or self.warmup < 0:
            raise LabError("latency: --requests and --rounds must be at least 1")
        if not 12 <= self.payload <= 1472:
            raise LabError(f"latency: a payload of {self.payload} bytes does not fit",
                           hint="give 12..1472 bytes (one Ethernet frame)")
        if self.xdp_mode not in ("generic", "native"):
            raise LabError(f"latency: unknown XDP mode {self.xdp_mode!r}",
                           hint="generic or native")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise LabError(f"latency: unknown server kind(s) {', '.join(unknown) or '-'}",
                           hint=f"choose among {', '.join(KINDS)}")

    def order(self, round_no: int) -> tuple[str, ...]:
        return self.kinds if round_no % 2 == 0 else self.kinds[::-1]

    def per_round(self, round_no: int) -> int:
        """Timed requests of each kind in round `round_no` (they add up to `requests`)."""
        base, extra = divmod(self.requests, self.rounds)
        return base + (1 if round_no < extra else 0)


def build_server(workdir: Path) -> Path:
    """Compile lanalat-server on the host, statically linked with libbpf (AF_XDP's program
    and XSKMAP), as the bench's receivers are."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise LabError("no C compiler on this host for the latency servers",
                       hint="install gcc (scripts/setup-host.sh does)")
    out = workdir / "lanalat-server"
    uapi = REPO_ROOT / "kernel" / "include" / "uapi"  # AF_LANA, struct sockaddr_lana
    proc = subprocess.run([cc, "-O2", "-Wall", "-static", "-I", str(uapi), "-o", str(out),
                           str(HERE / "latency_server.c"), "-l:libbpf.a", "-l:libelf.a",
                           "-l:libz.a"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"building the latency servers failed: {proc.stderr.strip()[-400:]}",
                       hint="they link libbpf statically: install libbpf-dev, libelf-dev "
                            "and zlib1g-dev (scripts/host-packages.txt)")
    return out


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (monotonic in q by construction)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q * len(sorted_values) / 100.0 - 1e-9))  # float noise
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of the table from the client's results of every round of `kind`."""
    rtts_us = sorted(ns / 1e3 for r in runs for ns in r["rtt_ns"])
    seconds = sum(float(r["seconds"]) for r in runs)
    answered = sum(int(r["answered"]) for r in runs)
    row: dict[str, Any] = {
        "kind": kind, "what": WHAT[kind],
        "requests": sum(int(r["requests"]) for r in runs), "answered": answered,
        "lost": sum(int(r["lost"]) for r in runs), "wrong": sum(int(r["wrong"]) for r in runs),
        "seconds": seconds, "requests_per_s": answered / seconds if seconds > 0 else 0.0,
        "mean_us": sum(rtts_us) / len(rtts_us) if rtts_us else float("nan"),
        "min_us": rtts_us[0] if rtts_us else float("nan"),
        "max_us": rtts_us[-1] if rtts_us else float("nan"),
        "served": [r.get("served") for r in runs],
        "rtt_us": [round(x, 1) for x in rtts_us],  # ascending
    }
    for q in PERCENTILES:
        row[f"p{q:g}_us"] = percentile(rtts_us, q)
    return row


def render_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| server | requests | answered | p50 µs | p90 µs | p99 µs | p99.9 µs | "
             "requests/s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['requests']} | {r['answered']} | "
                     + " | ".join(f"{r[f'p{q:g}_us']:.0f}" for q in PERCENTILES)
                     + f" | {r['requests_per_s']:.0f} |")
    return "\n".join(lines)


class LatencyLab:
    """The scenario on a booted lab: `sh(node, command, timeout)` runs on vm1 or h1 (a
    LabRun's sh), `put(path, data)` writes into vm1."""

    def __init__(self, sh: Callable[[str, str, float], str], put: Callable[[str, bytes], None],
                 target: str, vm: str = "vm1", host: str = "h1") -> None:
        self.sh = sh
        self.put = put
        self.target = target
        self.vm = vm
        self.host = host

    def guest(self, command: str, timeout: float = 120.0) -> str:
        return self.sh(self.vm, command, timeout)

    def install(self, server: bytes, xsk_object: bytes) -> None:
        self.put(SERVER, server)
        self.put(XSK_OBJECT, xsk_object)
        self.guest(f"chmod 755 {SERVER} && modprobe -a lana fb_eth fb_pflana && "
                   "sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1")
        mac = self.guest("cat /sys/class/net/eth0/address").strip()
        dev = self.sh(self.host, f"ip -o route get {self.target}", 30).split(" dev ")[1].split()[0]
        # the raw servers take every frame of eth0, ARP too: h1 must not need to ask
        self.sh(self.host, f"ip neigh replace {self.target} lladdr {mac} dev {dev} "
                "nud permanent", 30)

    def _server_args(self, kind: str, plan: LatencyPlan) -> str:
        if kind == "udp_recvfrom":
            return f"udp {plan.port}"
        if kind == "udp_recvmmsg":
            return f"mmsg {plan.port}"
        if kind == "af_xdp":
            native = "-N " if plan.xdp_mode == "native" else ""
            return f"{native}-o {XSK_OBJECT} xdp eth0 {plan.port}"
        return f"pflana {PF_NAME} {plan.port}"

    def start_server(self, args: str, out: str = "/tmp/lanalat.out",
                     timeout: float = 60.0) -> str:
        """Start lanalat-server ARGS in the background, wait until it printed "ready";
        return its pid. A server that exits first raises with its message."""
        self.guest(f"rm -f {out} {out}.err {out}.pid; setsid sh -c 'echo $$ > {out}.pid; "
                   f"exec {SERVER} {args} > {out} 2> {out}.err' < /dev/null > /dev/null 2>&1 &")
        tries = int(timeout * 10)
        state = self.guest(
            f"i=0; while :; do grep -qx ready {out} 2>/dev/null && echo ready && break; "
            f"[ -s {out}.pid ] && ! kill -0 $(cat {out}.pid) 2>/dev/null && echo exited && "
            f"break; i=$((i + 1)); [ $i -ge {tries} ] && echo timeout && break; sleep 0.1; "
            "done", timeout * 3 + 30).strip()
        if state != "ready":
            err = self.guest(f"cat {out}.err {out} 2>/dev/null; true").strip()
            if state == "timeout":
                self.guest(f"kill $(cat {out}.pid) 2>/dev/null; true")
            raise LabError(f"the latency server `{args}` did not start ({state}): {err}")
        return self.guest(f"cat {out}.pid").strip()

    def stop_server(self, pid: str, out: str = "/tmp/lanalat.out") -> int:
        """SIGTERM, wait for its "served N" line; return N."""
        text = self.guest(
            f"kill -TERM {pid}; i=0; while kill -0 {pid} 2>/dev/null && [ $i -lt 300 ]; do "
            f"i=$((i + 1)); sleep 0.1; done; kill -0 {pid} 2>/dev/null && kill -KILL {pid}; "
            f"cat {out}", 120)
        for line in text.splitlines():
            if line.startswith("served "):
                return int(line.split()[1])
        err = self.guest(f"cat {out}.err 2>/dev/null; true").strip()
        raise LabError(f"the latency server (pid {pid}) did not say what it served: {err}")

    def client(self, count: int, plan: LatencyPlan, out: Path) -> dict[str, Any]:
        script = HERE / "latency_client.py"
        self.sh(self.host, " ".join(shlex.quote(a) for a in (
            sys.executable, str(script), self.target, str(plan.port), str(count),
            str(plan.payload), str(plan.warmup), f"{plan.timeout:g}", str(out))),
                count * plan.timeout + 120)
        result: dict[str, Any] = json.loads(out.read_text())
        return result

    def serve_one(self, kind: str, count: int, plan: LatencyPlan,
                  workdir: Path) -> dict[str, Any]:
        """One kind for one round: start its server, run the client, stop the server."""
        pid = self.start_server(self._server_args(kind, plan))
        try:
            if kind == "pf_lana":  # put the socket on top of eth0
                self.guest(f"vlink ethernet hook eth0 > /dev/null && fbctl bind {PF_NAME} eth0")
            result = self.client(count, plan, workdir / f"{kind}.json")
        finally:
            served = self.stop_server(pid)
            if kind == "pf_lana":
                self.guest("vlink ethernet unhook eth0")
        result["served"] = served
        if kind == "af_xdp" and "xdp" in self.guest("ip link show dev eth0"):
            raise LabError("the AF_XDP server exited but an XDP program is still on eth0")
        return result

    def measure(self, plan: LatencyPlan, progress: Progress) -> list[dict[str, Any]]:
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in plan.kinds}
        with tempfile.TemporaryDirectory(prefix="lanalat-") as tmp:
            for r in range(plan.rounds):
                count = plan.per_round(r)
                for kind in plan.order(r):
                    result = self.serve_one(kind, count, plan, Path(tmp))
                    runs[kind].append(result)
                    rtts = sorted(result["rtt_ns"])
                    p50 = percentile(rtts, 50) / 1e3 if rtts else float("nan")
                    progress(f"round {r + 1}/{plan.rounds} {kind}: {result['answered']}/"
                             f"{count} answered, p50 {p50:.0f} µs, lost {result['lost']}, "
                             f"wrong {result['wrong']}")
        return [summarize(k, runs[k]) for k in plan.kinds]


def guest_address(topo: Any, vm: str = "vm1") -> str:
    """vm's first NIC address: the only address the client may target."""
    for spec in topo.vms:
        if spec.name == vm and spec.nics and spec.nics[0].ip:
            return str(spec.nics[0].ip).split("/")[0]
    raise LabError(f"the topology has no addressed {vm} for the latency client to target")


def run_latency(plan: LatencyPlan, out: Path, progress: Progress) -> dict[str, Any]:
    """Boot the bench topology (real clock), install, measure, tear down; write
    results.json and summary.md into `out`."""
    from lab.ebpf.compile import PROGRAMS_DIR, compile_program
    from lab.image.build import ensure_image
    from lab.labrun import LabRun
    from lab.topology.loader import load_topology

    with tempfile.TemporaryDirectory(prefix="lanalat-") as tmp:
        server = build_server(Path(tmp)).read_bytes()
    xsk = compile_program(PROGRAMS_DIR / "xdp_xsk.bpf.c").path.read_bytes()
    image = ensure_image(progress)
    topo = load_topology("bench")
    target = guest_address(topo)
    load_start = list(os.getloadavg())
    lab = LabRun(topo, image, progress=progress, backend="qemu")  # no -icount: wall clock
    started = time.time()
    lab.up()
    try:
        vm = lab.vms["vm1"]
        scenario = LatencyLab(lab.sh, vm.put_file, target)
        scenario.install(server, xsk)
        accel = str(vm.describe().get("accel"))
        kernel = lab.sh("vm1", "uname -r").strip()
        t = time.monotonic()
        rows = scenario.measure(plan, progress)
        measure_s = time.monotonic() - t
        vm.check_console()
    finally:
        lab.down()
    results = {
        "schema": SCHEMA, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "plan": asdict(plan), "clock": "real (wall clock of the host, time.perf_counter_ns)",
        "environment": {"accel": accel, "guest_kernel": kernel, "host_cpus": os.cpu_count(),
                        "load_start": load_start, "load_end": list(os.getloadavg()),
                        "topology": "bench (h1 -> s1 -> vm1)", "target": target},
        "measure_s": measure_s, "rows": rows,
    }
    write_results(results, out)
    return results


def render_summary(results: dict[str, Any]) -> str:
    env = results["environment"]
    plan = results["plan"]
    return "\n".join([
        "# Latency: a UDP payload-reversing service in vm1, closed-loop client in h1", "",
        f"{results['started']}, {env['accel']}, guest {env['guest_kernel']}, host load "
        f"{env['load_start'][0]:.1f} -> {env['load_end'][0]:.1f}; {plan['requests']} timed "
        f"requests of {plan['payload']} B per server kind in {plan['rounds']} round(s), "
        f"round trips timed with the {results['clock']}.", "",
        render_table(results["rows"]), "",
        "Every row's requests went out one at a time (closed loop); requests/s is answered "
        "requests over the client's loop time. docs/benchmarks.md, \"Latency: seed 003's "
        "function invoker\", explains the setup and compares with seed 003.", ""])


def write_results(results: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    summary = out / "summary.md"
    summary.write_text(render_summary(results))
    return [path, summary]


def default_out_dir() -> Path:
    return DEFAULT_OUT / time.strftime("latency-%Y%m%d-%H%M%S")
