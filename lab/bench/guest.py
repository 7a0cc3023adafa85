"""The guest side of a benchmark: install the helpers, build the chain once, and measure
batches of points with one guest-agent call each (qga round trips are slow under TCG)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.bench.plan import (
    AF_XDP_PROGRAM,
    CBPF_FILTER,
    CBPF_MODES,
    CBPF_XDP_PROGRAM,
    EBPF_MODES,
    RECEIVER_KINDS,
    RECEIVER_MODES,
    Plan,
    Point,
)
from lab.bench.stats import Sample, counted_packets
from lab.errors import LabError

HERE = Path(__file__).resolve().parent
HELPERS = "/tmp/lanabench.sh"
SNIFFER = "/tmp/lanabench-sniffer"
RECEIVERS = "/tmp/lanabench-recv"  # lab/bench/receivers.c: UDP, TPACKET_V3, AF_XDP
BPF_OBJECT = "/tmp/lanabench-{}.bpf.o"  # what guest.sh's lb_xdp / lb_tc load
CBPF_PROGRAM = "/tmp/lanabench-cbpf.txt"  # guest.sh's LB_CBPF: the cBPF points' filter

# generic XDP on vb: with pktgen every frame arrives shared (pktgen holds a reference while
# it transmits), and 6.1's generic XDP reallocates the head of a frame without the XDP
# headroom with pskb_expand_head(), which BUG()s on a shared skb: measured, the guest panics
GENERIC_XDP_MODES = ("xdp_generic_drop", "xdp_parse_drop", "cbpf_xdp", "af_xdp")
PKTGEN_XDP = ("generic XDP cannot run on pktgen's shared frames (Linux 6.1 BUG()s in "
              "pskb_expand_head): measured with lanagen only")

Shell = Callable[[str, float], str]  # (command, timeout) -> stdout, raising on failure


@dataclass
class Skipped:
    label: str
    reason: str


def build_sniffer(workdir: Path) -> Path:
    """Compile the PF_PACKET receiver on the host (the guest is the same Debian release,
    so a dynamically linked binary runs there)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise LabError("no C compiler on this host for the socket benchmark's receiver",
                       hint="install gcc (scripts/setup-host.sh does) or skip sockets")
    out = workdir / "lanabench-sniffer"
    uapi = HERE.parents[1] / "kernel" / "include" / "uapi"  # AF_LANA, struct sockaddr_lana
    proc = subprocess.run([cc, "-O2", "-Wall", "-I", str(uapi), "-o", str(out),
                           str(HERE / "sniffer.c")],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"building the socket receiver failed: {proc.stderr.strip()[-400:]}",
                       hint="check gcc and the libc headers (libc6-dev)")
    return out


def build_receivers(workdir: Path) -> Path:
    """Compile the UDP / TPACKET_V3 / AF_XDP receivers on the host, statically linked with
    libbpf (for AF_XDP's program and XSKMAP; the guest has no libbpf headers)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise LabError("no C compiler on this host for the benchmark's receivers",
                       hint="install gcc (scripts/setup-host.sh does)")
    out = workdir / "lanabench-recv"
    proc = subprocess.run([cc, "-O2", "-Wall", "-static", "-o", str(out),
                           str(HERE / "receivers.c"), "-l:libbpf.a", "-l:libelf.a",
                           "-l:libz.a"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"building the receivers failed: {proc.stderr.strip()[-400:]}",
                       hint="they link libbpf statically: install libbpf-dev, libelf-dev "
                            "and zlib1g-dev (scripts/host-packages.txt)")
    return out


def compile_cbpf() -> str:
    """bpfc's output for the cBPF points' filter (lab/bench/udp_port9.bpf), on the host."""
    from lab.grading.bpf import compile_filter

    try:
        compiled = compile_filter(HERE / CBPF_FILTER)
    except LabError as err:  # GradingError: no bpfc here
        raise LabError(f"the cBPF points need bpfc: {err}",
                       hint="install netsniff-ng (scripts/host-packages.txt)") from err
    if not compiled.ok:
        raise LabError(f"the cBPF points' filter does not compile: {compiled.error}")
    return compiled.program


class GuestBench:
    """Drives lab/bench/guest.sh in one guest. `shell` runs a command in that guest and
    `put` writes a file there (LabRun.sh and QemuVM.put_file in a real run). `bpf` holds
    the compiled eBPF objects by program name (lab.ebpf.compile, on the host before the
    VM booted), or why there are none (`bpf_missing`)."""

    def __init__(self, shell: Shell, put: Callable[[str, bytes], None],
                 bpf: dict[str, bytes] | None = None, bpf_missing: str | None = None) -> None:
        self.shell = shell
        self.put = put
        self.bpf = bpf or {}
        self.sniffer_ok = False
        self.pf_lana_reason: str | None = None
        self.ebpf_reason: str | None = bpf_missing
        self.receivers_reason: str | None = "the receivers were not installed"
        self.af_xdp_reason: str | None = bpf_missing
        self.cbpf_reason: str | None = "the cBPF filter was not installed"
        self.cbpf_xdp_reason: str | None = bpf_missing
        self.engines_reason: str | None = None

    def run(self, script: str, timeout: float = 120.0) -> str:
        return self.shell("bash -c " + shlex.quote(f". {HELPERS} && {script}"), timeout)

    def install(self, plan: Plan) -> None:
        self.put(HELPERS, (HERE / "guest.sh").read_bytes())
        if not self.shell("test -d /proc/net/pktgen || modprobe pktgen && echo ok", 60):
            raise LabError("the guest has no pktgen", hint="the image must carry kernel/net/")
        if plan.source == "lanagen" and self.shell(
                "modinfo -F name lanagen >/dev/null 2>&1 && echo ok || true", 60).strip() != "ok":
            raise LabError("the guest image has no lanagen module (kernel/bench/lanagen.c)",
                           hint="rebuild the image with `lanalab image build`, or use "
                                "--source pktgen")
        self.run(f"lb_setup {plan.max_blocks}", timeout=60 + 2 * plan.max_blocks)
        if plan.engines and self.shell("test -w /proc/net/lana/engine && echo ok || true",
                                       30).strip() != "ok":
            self.engines_reason = ("this guest's lana.ko has no engine models "
                                   "(/proc/net/lana/engine): rebuild the image")
        if plan.socket_sizes or plan.cbpf_sizes:
            self._install_sniffer()
        if plan.socket_sizes:
            self.pf_lana_reason = self._pf_lana_missing()
            if plan.receivers_at:
                self.receivers_reason = self._install_receivers()
        if plan.ebpf_programs and self.ebpf_reason is None:
            self.ebpf_reason = self._install_bpf(plan.ebpf_programs)
        if plan.cbpf_sizes:
            self.cbpf_reason = self._install_cbpf()
            if self.cbpf_reason is None and self.cbpf_xdp_reason is None:
                self.cbpf_xdp_reason = self._install_bpf([CBPF_XDP_PROGRAM])

    def _install_cbpf(self) -> str | None:
        """The filter (bpfc on the host) into the guest, and the bpf-block point's blocks
        (bflt -> bcnt); None, or why the cBPF points are skipped."""
        try:
            program = compile_cbpf()
        except LabError as err:
            return str(err)
        self.put(CBPF_PROGRAM, program.encode())
        try:
            self.run("lb_cbpf_setup", timeout=60)
        except LabError as err:
            return f"the bpf block could not load the filter: {err}"
        return None

    def _install_bpf(self, programs: list[str]) -> str | None:
        """Copy the objects into the guest; None, or why the eBPF points are skipped."""
        missing = [p for p in programs if p not in self.bpf]
        if missing:
            return f"no compiled eBPF object for {', '.join(missing)}"
        if "libbpf" not in self.shell("ip -V", 30):
            return "the guest's iproute2 is not built with libbpf: it cannot load the objects"
        for name in programs:
            self.put(BPF_OBJECT.format(name), self.bpf[name])
        return None

    def _install_sniffer(self) -> None:
        with tempfile.TemporaryDirectory(prefix="lanabench-") as tmp:
            binary = build_sniffer(Path(tmp))
            self.put(SNIFFER, binary.read_bytes())
        self.shell(f"chmod 755 {SNIFFER}", 30)
        self.sniffer_ok = True

    def _install_receivers(self) -> str | None:
        """The UDP / TPACKET_V3 / AF_XDP receivers and AF_XDP's program into the guest;
        None, or why the receiver points are skipped (a host without static libbpf)."""
        try:
            with tempfile.TemporaryDirectory(prefix="lanabench-") as tmp:
                binary = build_receivers(Path(tmp))
                self.put(RECEIVERS, binary.read_bytes())
        except LabError as err:
            return str(err)
        self.shell(f"chmod 755 {RECEIVERS}", 30)
        if self.af_xdp_reason is None:
            if AF_XDP_PROGRAM in self.bpf:
                self.put(BPF_OBJECT.format(AF_XDP_PROGRAM), self.bpf[AF_XDP_PROGRAM])
            else:
                self.af_xdp_reason = f"no compiled eBPF object for {AF_XDP_PROGRAM}"
        return None

    def _pf_lana_missing(self) -> str | None:
        """None if the guest has PF_LANA (fb_pflana.ko: the pflana block and AF_LANA),
        else why the pf_lana points are skipped."""
        out = self.shell("modprobe -q fb_pflana 2>/dev/null; grep -qw pflana "
                         "/proc/net/lana/types 2>/dev/null && echo yes || echo no", 60)
        if out.strip() == "yes":
            return None
        return "no pflana block / AF_LANA in this guest image (fb_pflana.ko not built)"

    def environment(self) -> dict[str, str]:
        out = self.shell("uname -r; nproc; grep -m1 'model name' /proc/cpuinfo | "
                         "cut -d: -f2; cat /proc/sys/net/core/netdev_max_backlog", 30)
        release, cpus, model, backlog = (out.splitlines() + ["?"] * 4)[:4]
        return {"kernel": release.strip(), "cpus": cpus.strip(), "cpu_model": model.strip(),
                "netdev_max_backlog": backlog.strip()}

    def measure(self, points: Sequence[Point], plan: Plan,
                round_no: int) -> tuple[list[Sample], list[Skipped]]:
        """Measure `points` in this order in one guest call."""
        measured, skipped = [], []
        for p in points:
            reason = self._skip_reason(p, plan.source)
            if reason:
                skipped.append(Skipped(p.label, reason))
            else:
                measured.append(p)
        if not measured:
            return [], skipped
        timeout = 60 + len(measured) * (plan.warmup + plan.seconds + 15)
        out = self.run(" && ".join(point_script(p, plan) for p in measured), timeout=timeout)
        return parse_output(out, measured, round_no), skipped

    def _skip_reason(self, p: Point, source: str = "lanagen") -> str | None:
        if p.mode == "engine":
            return self.engines_reason
        if p.mode in GENERIC_XDP_MODES and source == "pktgen":
            return PKTGEN_XDP
        if p.mode in ("pf_packet", "pf_lana") and not self.sniffer_ok:
            return "the socket receiver could not be installed"
        if p.mode == "pf_lana":
            return self.pf_lana_reason
        if p.mode in EBPF_MODES:
            return self.ebpf_reason
        if p.mode == "cbpf_socket" and not self.sniffer_ok:
            return "the socket receiver could not be installed"
        if p.mode in CBPF_MODES:
            return self.cbpf_reason or (self.cbpf_xdp_reason if p.mode == "cbpf_xdp"
                                        else None)
        if p.mode in RECEIVER_MODES:
            return self.receivers_reason or (self.af_xdp_reason if p.mode == "af_xdp"
                                             else None)
        return None


def point_script(p: Point, plan: Plan) -> str:
    w, s = f"{plan.warmup:g}", f"{plan.seconds:g}"
    label = shlex.quote(p.label)
    src = "lanagen" if plan.source == "lanagen" else "va"  # what guest.sh sends with
    if p.mode == "sender":
        return f"lb_mode linux && lb_measure {label} bd0 {p.size} {w} {s}"
    if p.mode == "linux":
        return f"lb_mode linux && lb_measure {label} {src} {p.size} {w} {s}"
    if p.mode == "lana":
        return f"lb_mode lana {p.blocks} && lb_measure {label} {src} {p.size} {w} {s}"
    if p.mode == "engine":  # back to the default engine after the point
        return (f"lb_engine {p.engine} && lb_mode lana {p.blocks} && "
                f"lb_measure {label} {src} {p.size} {w} {s} && lb_engine softirq")
    if p.mode in (*EBPF_MODES, "lana_bpf", "cbpf_xdp"):
        return f"lb_mode {p.mode} && lb_measure {label} {src} {p.size} {w} {s}"
    if p.mode == "cbpf_socket":
        return f"lb_mode linux && lb_sniff {label} {src} {p.size} {w} {s} {CBPF_PROGRAM}"
    if p.mode == "pf_packet":
        return f"lb_mode linux && lb_sniff {label} {src} {p.size} {w} {s}"
    if p.mode == "pf_lana":
        return f"lb_mode linux && lb_sniff_lana {label} {src} {p.size} {w} {s}"
    if p.mode in RECEIVER_MODES:
        return (f"lb_mode linux && lb_recv {label} {src} {p.size} {w} {s} "
                f"{RECEIVER_KINDS[p.mode]}")
    raise ValueError(f"no guest script for mode {p.mode!r}")


def parse_output(out: str, points: Sequence[Point], round_no: int) -> list[Sample]:
    """Turn the helpers' `point ...` / `sniff ...` lines into samples."""
    by_label = {p.label: p for p in points}
    samples = []
    for line in out.splitlines():
        fields = line.split()
        if not fields or fields[0] not in ("point", "sniff"):
            continue
        p = by_label.get(fields[1])
        if p is None:
            raise LabError(f"benchmark helper printed an unknown point: {line!r}")
        try:
            numbers = [int(f) for f in fields[2:]]
        except ValueError as err:
            raise LabError(f"benchmark helper printed a malformed line: {line!r}") from err
        dropped = 0
        if fields[0] == "point" and len(numbers) == 10:
            t0, rx0, sent0, c0, d0, t1, rx1, sent1, c1, d1 = numbers
            seconds, received, sent = (t1 - t0) / 1e9, rx1 - rx0, sent1 - sent0
            packets = counted_packets(p.mode, received, sent, c1 - c0, 0)
            dropped = d1 - d0
        elif fields[0] == "sniff" and len(numbers) == 4:
            sniffed, _bytes, ns, drops = numbers
            # received: what reached the socket (got + dropped at its full queue)
            seconds, received, sent, packets = ns / 1e9, sniffed + drops, 0, sniffed
        else:
            raise LabError(f"benchmark helper printed a malformed line: {line!r}")
        samples.append(Sample(p.label, p.mode, p.size, p.blocks, round_no, seconds,
                              packets, sent, received, dropped))
    missing = {p.label for p in points} - {s.label for s in samples}
    if missing:
        raise LabError(f"no result for {', '.join(sorted(missing))} in the guest's output",
                       hint=f"guest output was: {out[-500:]!r}")
    return samples
