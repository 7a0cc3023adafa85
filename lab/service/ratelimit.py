"""Per-uid admission: a token bucket (requests per second) and a cap on requests running
at once, so one participant's flood or pile of slow requests cannot starve the others."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float
    inflight: int = 0


class Admission:
    def __init__(self, rate: float, burst: int, max_inflight: int,
                 clock=time.monotonic) -> None:
        self.rate, self.burst, self.max_inflight = rate, burst, max_inflight
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    def admit(self, uid: int) -> str | None:
        """None if `uid` may start a request now (call done() after it), else the reason."""
        with self._lock:
            now = self.clock()
            b = self._buckets.setdefault(uid, _Bucket(float(self.burst), now))
            b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate)
            b.at = now
            if b.tokens < 1.0:
                return (f"rate limit: more than {self.rate:g} requests per second "
                        f"(burst {self.burst}) from uid {uid}")
            if b.inflight >= self.max_inflight:
                return f"uid {uid} already has {b.inflight} requests running (the limit)"
            b.tokens -= 1.0
            b.inflight += 1
            return None

    def done(self, uid: int) -> None:
        with self._lock:
            self._buckets[uid].inflight -= 1
