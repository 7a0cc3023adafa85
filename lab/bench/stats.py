"""The arithmetic of the benchmark: rates from counter snapshots, medians over rounds,
ratios measured side by side (same round, same frame size) and the chain slope."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lab.bench.plan import EBPF_MODES


@dataclass(frozen=True)
class Sample:
    """One measurement of one point in one round."""

    label: str
    mode: str
    size: int
    blocks: int
    round: int
    seconds: float
    packets: int  # what the point counts: see `counted_packets`
    sent: int  # frames the source pushed during the window (pktgen's device, lanagen)
    received: int  # frames that entered vb's receive path (veth rx counter; with lanagen,
    # what it handed over); for socket receivers: frames that reached the socket
    # (received by the program + socket drops)
    lana_dropped: int = 0  # frames LANA's engine dropped (a chain's end drops every frame);
    # for the eBPF points: what the program counted in its drops map

    @property
    def pps(self) -> float:
        return self.packets / self.seconds if self.seconds > 0 else 0.0


def counted_packets(mode: str, received: int, sent: int, counter: int, sniffed: int) -> int:
    """The figure a point reports: what entered LANA's engine for LANA chains, the frames Linux
    received (and dropped) for Linux, what pktgen pushed for the sender alone, and what the
    userspace receiver got for the socket families; for the eBPF points what the program
    counted (its drops map); for the cBPF filter in LANA's bpf block and as XDP what it
    passed (the counter block's packets, the XDP program's map)."""
    if mode in (*EBPF_MODES, "lana_bpf", "cbpf_xdp"):
        return counter
    return {"lana": counter, "engine": counter, "linux": received,
            "sender": sent}.get(mode, sniffed)


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def by_label(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.label].append(s)
    return dict(groups)


def median_pps(samples: Iterable[Sample]) -> dict[str, float]:
    return {label: median(s.pps for s in group) for label, group in by_label(samples).items()}


def side_by_side_ratio(samples: Sequence[Sample], label: str, reference: str) -> float:
    """Median over rounds of pps(label) / pps(reference), both taken in the same round:
    the machine's speed changes between rounds, a ratio inside one round much less."""
    per_round: dict[int, dict[str, float]] = defaultdict(dict)
    for s in samples:
        if s.label in (label, reference):
            per_round[s.round][s.label] = s.pps
    ratios = [r[label] / r[reference] for r in per_round.values()
              if label in r and r.get(reference, 0) > 0]
    return median(ratios)


def ns_per_packet(pps: float) -> float:
    return 1e9 / pps if pps > 0 else float("nan")


def receive_only_ratio(pps: float, reference_pps: float, sender_pps: float) -> float:
    """pps / reference_pps with the sender's own time per packet taken out of both.
    Sender and receiver share one guest CPU, so the measured time per packet is
    t_send + t_receive; this is t_receive(reference) / t_receive(point)."""
    t_send = ns_per_packet(sender_pps)
    t_ref = ns_per_packet(reference_pps) - t_send
    t_point = ns_per_packet(pps) - t_send
    return t_ref / t_point if t_point > 0 and t_ref > 0 else float("nan")


@dataclass(frozen=True)
class LineFit:
    slope: float
    intercept: float
    r2: float
    points: int


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> LineFit:
    """Least squares y = slope * x + intercept, with r^2."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("a line needs at least two (x, y) points")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all x values are equal: no slope")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - slope * x - intercept) ** 2 for x, y in zip(xs, ys, strict=True))
    return LineFit(slope, intercept, 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0, len(xs))


def chain_slope(samples: Sequence[Sample], size: int = 64) -> LineFit | None:
    """ns per block per packet: the slope of the median time per packet (1/pps) over the
    chain length, for LANA chains at one frame size."""
    lana = [s for s in samples if s.mode == "lana" and s.size == size]
    medians = {blocks: median(s.pps for s in lana if s.blocks == blocks)
               for blocks in sorted({s.blocks for s in lana})}
    xs = [float(b) for b, pps in medians.items() if pps > 0]
    if len(xs) < 2:
        return None
    return fit_line(xs, [ns_per_packet(medians[int(x)]) for x in xs])


def chain_slopes_per_round(samples: Sequence[Sample], size: int = 64,
                           mode: str = "lana") -> list[LineFit]:
    """One fit per round: the machine's speed drifts between rounds (other VMs on the
    host), so the median of per-round slopes is steadier than a fit over medians. `mode`
    "engine": pass one engine's samples only."""
    fits = []
    for r in sorted({s.round for s in samples}):
        lana = [s for s in samples if s.round == r and s.mode == mode and s.size == size
                and s.pps > 0]
        if len({s.blocks for s in lana}) >= 2:
            fits.append(fit_line([float(s.blocks) for s in lana],
                                 [ns_per_packet(s.pps) for s in lana]))
    return fits
