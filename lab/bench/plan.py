"""What a benchmark run measures: points (one configuration of the guest's receive path at
one frame size) grouped in series that are measured round after round."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

# RFC 2544 Ethernet frame sizes (with FCS), as in the thesis's figures 6.2-6.4
RFC2544_SIZES = (64, 128, 256, 512, 1024, 1280, 1518)

# eBPF on vb (kernel/xdp/, loaded by iproute2): generic XDP drop, tc ingress (cls_bpf,
# direct action) drop, and XDP that parses Ethernet/IPv4/UDP first (LANA's 1 FB, in eBPF)
EBPF_MODES = ("xdp_generic_drop", "tc_drop", "xdp_parse_drop")
# the kernel object file (kernel/xdp/NAME.bpf.c) of each eBPF point
EBPF_PROGRAMS = {"xdp_generic_drop": "xdp_drop", "tc_drop": "tc_drop",
                 "xdp_parse_drop": "xdp_parse_drop"}
# userspace receivers (lab/bench/receivers.c) beside pf_packet and pf_lana, seed 003's
# kinds: a UDP socket with recvfrom(2) and with recvmmsg(2) (lanagen's frames then go to
# vb's MAC and an address on vb), PF_PACKET with a TPACKET_V3 ring, AF_XDP in copy mode
RECEIVER_MODES = ("udp_recvfrom", "udp_recvmmsg", "tpacket_v3", "af_xdp")
RECEIVER_KINDS = {"udp_recvfrom": "udp", "udp_recvmmsg": "mmsg", "tpacket_v3": "tpacket3",
                  "af_xdp": "xdp"}  # lb_recv's KIND in guest.sh
SOCKET_MODES = ("pf_packet", "pf_lana", *RECEIVER_MODES)
# one classic-BPF filter (lab/bench/udp_port9.bpf: IPv4 UDP to port 9, lanagen's frames)
# three ways: in LANA's bpf block (vb -> bpf -> counter), as SO_ATTACH_FILTER of a
# PF_PACKET socket on vb, and as XDP (the same test in restricted C: the kernel cannot
# load cBPF at the XDP hook)
CBPF_MODES = ("lana_bpf", "cbpf_socket", "cbpf_xdp")
CBPF_FILTER = "udp_port9.bpf"  # in lab/bench/, compiled by bpfc on the host
CBPF_XDP_PROGRAM = "xdp_cbpf"  # kernel/xdp/xdp_cbpf.bpf.c
AF_XDP_PROGRAM = "xdp_xsk"  # kernel/xdp/xdp_xsk.bpf.c: redirects into the AF_XDP socket
# the engine models of thesis 6.5 (kernel/core/engine_*.c, /proc/net/lana/engine), in the
# order of its fig. 6.12; softirq is the default (the thesis's final "kthr ksirq-nrx")
ENGINES = ("kthread-hp", "kthread-np", "kthread-cs", "hrtimer", "softirq")
ENGINE_BLOCKS = (1, 10, 50)  # chain lengths each engine is measured with (`--engines`)
MODES = ("sender", "linux", "lana", "engine", *EBPF_MODES, *CBPF_MODES, *SOCKET_MODES)
# lanagen: fresh frames into vb's receive path, as a NIC driver; pktgen: over the veth pair
SOURCES = ("lanagen", "pktgen")
# instructions: the TCG guest's clock counts instructions (1 ns each), so rates do not
# depend on the host's load; real: wall-clock time (always so under KVM)
CLOCKS = ("instructions", "real")
ICOUNT_SHIFT = 0  # qemu -icount shift: 2**0 ns per instruction
# With an instruction clock, rounds agree within 0.2 %: short windows suffice (in guest time,
# which then runs 2-4x slower than the wall clock here)
INSTRUCTION_CLOCK_WINDOW = (0.2, 0.5)  # warm-up, counting window (s)


@dataclass(frozen=True)
class Point:
    """One measured configuration.

    mode: "linux" (Linux receives and drops), "lana" (eth -> `blocks` fwd -> counter),
    "engine" (the same chain with `engine` as the engine model, ENGINES),
    "sender" (pktgen into a dummy device: the sender's own cost), EBPF_MODES (an eBPF
    program on vb drops and counts), CBPF_MODES (the cBPF filter in a bpf block, a socket,
    XDP: what it passes is counted), "pf_packet" / "pf_lana" and RECEIVER_MODES (a
    userspace receiver counting the frames it gets)."""

    mode: str
    size: int = 64
    blocks: int = 0
    engine: str = ""  # mode "engine" only

    @property
    def label(self) -> str:
        name = f"lana{self.blocks}" if self.mode == "lana" else self.mode
        if self.mode == "engine":
            name = f"{self.engine}:lana{self.blocks}"
        return f"{name}@{self.size}"

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "label": self.label}


@dataclass(frozen=True)
class Plan:
    name: str
    rounds: int
    warmup: float  # seconds of traffic before the counting window
    seconds: float  # counting window per point
    chain_blocks: tuple[int, ...]  # LANA chain lengths at 64 bytes
    sizes: tuple[int, ...]  # further frame sizes
    size_blocks: tuple[int, ...]  # chain lengths measured at each further size
    socket_sizes: tuple[int, ...]
    lab_speed: str  # "basic": this run's own boot/up/down; "full": also bench-foundation
    ebpf_sizes: tuple[int, ...] = ()  # sizes (64 or one of `sizes`) of the eBPF points
    # sizes (among socket_sizes) of the userspace receivers beside pf_packet and pf_lana;
    # None: all of socket_sizes
    receiver_sizes: tuple[int, ...] | None = None
    cbpf_sizes: tuple[int, ...] = ()  # sizes (64 or one of `sizes`) of the CBPF_MODES
    source: str = "lanagen"  # SOURCES
    clock: str = "instructions"  # CLOCKS
    engines: tuple[str, ...] = ()  # engine models measured side by side (ENGINES), 64 B
    engine_blocks: tuple[int, ...] = ENGINE_BLOCKS

    @property
    def ebpf_programs(self) -> list[str]:
        """kernel/xdp/ programs the plan's points load (compiled before the VM boots)."""
        return [EBPF_PROGRAMS[m] for m in EBPF_MODES] if self.ebpf_sizes else []

    @property
    def bpf_objects(self) -> list[str]:
        """Every kernel/xdp/ object the run needs: the eBPF points', and AF_XDP's."""
        return [*self.ebpf_programs, *([CBPF_XDP_PROGRAM] if self.cbpf_sizes else []),
                *([AF_XDP_PROGRAM] if self.receivers_at else [])]

    @property
    def receivers_at(self) -> tuple[int, ...]:
        """The sizes the RECEIVER_MODES are measured at."""
        if self.receiver_sizes is None:
            return self.socket_sizes
        return tuple(s for s in self.receiver_sizes if s in self.socket_sizes)

    @property
    def max_blocks(self) -> int:
        engine_blocks = self.engine_blocks if self.engines else ()
        return max((*self.chain_blocks, *self.size_blocks, *engine_blocks, 1))

    def series(self) -> list[list[Point]]:
        """Groups of points compared with each other; each group starts with its
        references (sender, Linux) so every round has them side by side."""
        groups = [[*self._references(64),
                   *(Point("lana", 64, n) for n in _targets_first(self.chain_blocks)),
                   *(Point("engine", 64, n, e) for e in self.engines
                     for n in self.engine_blocks)]]
        for size in self.sizes:
            groups.append([*self._references(size),
                           *(Point("lana", size, n) for n in self.size_blocks)])
        for size in self.ebpf_sizes:
            groups.append([Point(mode, size) for mode in EBPF_MODES])
        for size in self.cbpf_sizes:
            groups.append([Point(mode, size) for mode in CBPF_MODES])
        if self.socket_sizes:
            groups.append([Point(mode, size) for size in self.socket_sizes
                           for mode in SOCKET_MODES
                           if mode not in RECEIVER_MODES or size in self.receivers_at])
        return groups

    def for_clock(self, clock: str) -> Plan:
        """This plan as measured with `clock` (the one the guest really got)."""
        if clock != "instructions":
            return replace(self, clock=clock)
        warmup, seconds = INSTRUCTION_CLOCK_WINDOW
        return replace(self, clock=clock, warmup=min(self.warmup, warmup),
                       seconds=min(self.seconds, seconds))

    def _references(self, size: int) -> list[Point]:
        """Linux, and with pktgen the sender alone (its share of each frame's time; lanagen
        has no such reference: building a frame is part of receiving it, as in a driver)."""
        sender = [Point("sender", size)] if self.source == "pktgen" else []
        return [*sender, Point("linux", size)]

    def rounds_order(self) -> list[list[Point]]:
        """Every round visits every point; odd rounds go backwards so a slow drift of the
        machine's speed does not favour the points measured first."""
        flat = [p for group in self.series() for p in group]
        return [flat if r % 2 == 0 else flat[::-1] for r in range(self.rounds)]

    def estimate_seconds(self, per_point_overhead: float = 0.6) -> float:
        points = sum(len(g) for g in self.series())
        return points * self.rounds * (self.warmup + self.seconds + per_point_overhead)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "points_per_round": sum(len(g) for g in self.series())}


def _targets_first(blocks: tuple[int, ...]) -> list[int]:
    """1 and 10 blocks right after Linux: the targets compare 1 FB with Linux and 10 FBs
    with 1 FB, and points measured seconds apart share the machine's momentary speed."""
    first = [n for n in (1, 10) if n in blocks]
    return first + [n for n in blocks if n not in first]


QUICK = Plan("quick", rounds=2, warmup=0.3, seconds=1.0, chain_blocks=(1, 10, 50),
             sizes=(1518,), size_blocks=(1,), socket_sizes=(64,), lab_speed="basic",
             ebpf_sizes=(64,), cbpf_sizes=(64,))
DEFAULT = Plan("default", rounds=3, warmup=0.3, seconds=1.2,
               chain_blocks=(1, 2, 4, 6, 8, 10, 20, 30, 40, 50),
               sizes=(128, 256, 512, 1024, 1518), size_blocks=(1, 10),
               socket_sizes=(64, 1518), lab_speed="basic", ebpf_sizes=(64, 1518),
               receiver_sizes=(64,), cbpf_sizes=(64,))
FULL = Plan("full", rounds=7, warmup=0.5, seconds=2.0,
            chain_blocks=(*range(1, 11), *range(15, 51, 5)),
            sizes=RFC2544_SIZES[1:], size_blocks=(1, 5, 10, 20, 50),
            socket_sizes=RFC2544_SIZES, lab_speed="full", ebpf_sizes=RFC2544_SIZES,
            cbpf_sizes=RFC2544_SIZES)
# `lanalab bench --engines`: every engine model with chains of 1, 10 and 50 fwd blocks,
# beside Linux, in the same rounds (thesis 6.5, fig. 6.12)
ENGINES_PLAN = Plan("engines", rounds=3, warmup=0.3, seconds=1.0, chain_blocks=(),
                    sizes=(), size_blocks=(), socket_sizes=(), lab_speed="basic",
                    engines=ENGINES)
PLANS = {p.name: p for p in (QUICK, DEFAULT, FULL, ENGINES_PLAN)}
