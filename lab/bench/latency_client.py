"""The latency scenario's client (`lanalab bench --latency`), run inside a Mininet host:
closed loop, one UDP request at a time, each round trip timed with the wall clock
(time.perf_counter_ns: the host's clock, not the guest's).

    python3 latency_client.py TARGET PORT COUNT PAYLOAD WARMUP TIMEOUT OUT.json

Each request's payload is a sequence number and random bytes, so a reply is correct only
if it is exactly that request's payload reversed. A reply that does not come within
TIMEOUT seconds counts as lost (the next request goes out); replies to earlier requests
that arrive late are recognised and skipped. The first WARMUP requests (ARP, caches) are
not timed. Standalone on purpose (no lab imports): it runs with the host's Python in the
host's network namespace. Writes OUT.json: rtt_ns (one per answered timed request),
answered, lost, wrong, seconds (the timed loop's wall time).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time


def request(seq: int, size: int) -> bytes:
    head = f"{seq:010d}:".encode()
    return head + os.urandom(max(0, size - len(head)))


def run(target: str, port: int, count: int, size: int, warmup: int,
        timeout: float) -> dict[str, object]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    sock.settimeout(timeout)
    rtts: list[int] = []
    lost = wrong = answered = 0
    start = 0
    for seq in range(warmup + count):
        if seq == warmup:
            start = time.perf_counter_ns()
        payload = request(seq, size)
        expected = payload[::-1]
        t0 = time.perf_counter_ns()
        sock.sendto(payload, (target, port))
        deadline = t0 + int(timeout * 1e9)
        while True:
            try:
                data, source = sock.recvfrom(65536)
            except TimeoutError:
                if seq >= warmup:
                    lost += 1
                break
            t1 = time.perf_counter_ns()
            if source[0] != target:
                continue
            if data == expected:
                if seq >= warmup:
                    rtts.append(t1 - t0)
                    answered += 1
                break
            head = f"{seq:010d}:".encode()
            if data.endswith(head[::-1]) or data.startswith(head):
                wrong += seq >= warmup  # this request's reply, but not its payload reversed
                break
            # a late reply to an earlier request: keep waiting for this one
            left = (deadline - t1) / 1e9
            if left <= 0:
                lost += seq >= warmup
                break
            sock.settimeout(left)
        sock.settimeout(timeout)
    seconds = (time.perf_counter_ns() - start) / 1e9
    return {"rtt_ns": rtts, "answered": answered, "lost": lost, "wrong": wrong,
            "seconds": seconds, "requests": count}


def main(argv: list[str]) -> int:
    if len(argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    target, port, count, size, warmup, timeout, out = argv
    result = run(target, int(port), int(count), int(size), int(warmup), float(timeout))
    with open(out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
