"""The call as seen on the lab's bridge: a pcap (tcpdump on the host) of the LANA frames.

The host's capture clock does not stall with a guest, so the spacing of a stream's frames
on the wire shows what the *sending* VM's stack did to them. Each frame carries its send
time (the sender's CLOCK_MONOTONIC), so the wire path gap of a frame is its wire gap minus
the sender's own spacing, and a change of the sender's stack can be looked up by the
sender's clock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

LANA_ETHERTYPE_BASE = 0xAC00


@dataclass
class WireStream:
    seqs: list[int] = field(default_factory=list)
    wire_ms: list[float] = field(default_factory=list)  # host clock
    sent_ms: list[float] = field(default_factory=list)  # sender's clock

    def path_gaps_ms(self) -> list[float]:
        gaps = [0.0]
        for i in range(1, len(self.seqs)):
            wire = self.wire_ms[i] - self.wire_ms[i - 1]
            sent = self.sent_ms[i] - self.sent_ms[i - 1]
            gaps.append(wire - sent)
        return gaps

    def worst_path_gap_around(self, t_ms: float, window_ms: float = 300.0) -> float:
        """Largest wire path gap among frames sent within window_ms of t_ms (sender's
        clock)."""
        return max((g for t, g in zip(self.sent_ms, self.path_gaps_ms(), strict=True)
                    if abs(t - t_ms) <= window_ms), default=0.0)


def read_streams(pcap: Path, vlink_id: int) -> dict[int, WireStream]:
    """lanavoice frames in a classic pcap (tcpdump -w), by stream number."""
    data = pcap.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    streams: dict[int, WireStream] = {}
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if len(frame) < 14 + 24 or frame[14:16] != b"LV":
            continue
        if struct.unpack("!H", frame[12:14])[0] != LANA_ETHERTYPE_BASE | vlink_id:
            continue
        stream = streams.setdefault(frame[17], WireStream())
        seq, _, hi, lo = struct.unpack("!IIII", frame[18:34])
        stream.seqs.append(seq)
        stream.wire_ms.append(sec * 1e3 + frac / (1e6 if nano else 1e3))
        stream.sent_ms.append(((hi << 32) | lo) / 1e6)
    return streams
