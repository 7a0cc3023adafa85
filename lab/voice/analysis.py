"""How well a voice call went: audio fidelity and frame timing.

Fidelity: the decoded output is aligned to the input by cross-correlation (Opus adds a
fixed algorithmic delay of a few ms), then the Pearson correlation and the SNR
(input energy over the energy of input minus the least-squares-scaled output) are
computed over the whole call.

Timing: lanavoice logs one line per received frame: seq, the kernel's receive time
(SO_TIMESTAMPNS, in ms of the receiving guest's CLOCK_MONOTONIC), the gap to the previous
arrival and the *path gap*: that gap minus the sender's own spacing of the two frames
(its send timestamps). Under TCG on a loaded host a whole VM can stall for hundreds of
ms; a sender stall shows in the gap but not in the path gap, which is what the stack
between the two sockets (and a change of it) adds. A frame is lost when it never
arrived; it is concealed when it arrived after its playout slot or never.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from lab.voice.signals import RATE

PERIOD_MS = 20.0
MAX_LAG = RATE // 5  # search 200 ms of delay


@dataclass(frozen=True)
class Fidelity:
    lag_samples: int
    correlation: float
    snr_db: float


@dataclass(frozen=True)
class FrameLog:
    seqs: list[int]  # in arrival order, received frames only
    arrivals_ms: list[float]
    sent_ms: list[float]  # the sender's send times (the sender's clock)
    gaps_ms: list[float]  # to the previous arrival (0 for the first)
    path_gaps_ms: list[float]
    concealed: list[int]  # played as concealment: never arrived or too late
    late: list[int]

    def lost(self, total: int) -> list[int]:
        """Frames of 0..total-1 that never arrived."""
        return sorted(set(range(total)) - set(self.seqs))

    def max_gap_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    def max_path_gap_ms(self) -> float:
        return max(self.path_gaps_ms, default=0.0)

    def worst_around(self, t_ms: float, window_ms: float = 300.0,
                     sender_clock: bool = False) -> tuple[float, float]:
        """(gap, path gap) maxima over the frames that arrived (or, with sender_clock,
        were sent) within window_ms of t_ms."""
        gap = path = 0.0
        times = self.sent_ms if sender_clock else self.arrivals_ms
        for t, g, p in zip(times, self.gaps_ms, self.path_gaps_ms, strict=True):
            # the interval since the previous frame overlaps the window (a long gap
            # that spans the whole window counts too)
            if t >= t_ms - window_ms and t - g <= t_ms + window_ms:
                gap, path = max(gap, g), max(path, p)
        return gap, path


def parse_log(text: str) -> FrameLog:
    log = FrameLog([], [], [], [], [], [], [])
    for row in csv.DictReader(io.StringIO(text)):
        seq = int(row["seq"])
        if row["status"] == "lost":
            log.concealed.append(seq)
            continue
        if row["status"] == "late":
            log.late.append(seq)
        log.seqs.append(seq)
        log.arrivals_ms.append(float(row["arrival_ms"]))
        log.sent_ms.append(float(row["send_ms"]))
        log.gaps_ms.append(float(row["gap_ms"]))
        log.path_gaps_ms.append(float(row["path_gap_ms"]))
    return log


def _best_lag(ref: np.ndarray, out: np.ndarray) -> int:
    n = min(len(ref), len(out))
    size = 1 << int(np.ceil(np.log2(2 * n)))
    xc = np.fft.irfft(np.fft.rfft(out[:n], size) * np.conj(np.fft.rfft(ref[:n], size)), size)
    return int(np.argmax(xc[:MAX_LAG]))


def fidelity(ref: np.ndarray, out: np.ndarray) -> Fidelity:
    """Correlation and SNR of `out` (decoded) against `ref` (sent), after alignment."""
    lag = _best_lag(ref, out)
    n = min(len(ref), len(out) - lag)
    if n <= RATE // 10:
        return Fidelity(lag, 0.0, float("-inf"))
    x, y = ref[:n], out[lag:lag + n]
    corr = float(np.corrcoef(x, y)[0, 1])
    gain = float(np.dot(x, y) / max(np.dot(y, y), 1e-12))
    noise = float(np.sum((x - gain * y) ** 2))
    snr = 10 * np.log10(float(np.sum(x ** 2)) / max(noise, 1e-12))
    return Fidelity(lag, corr, float(snr))
