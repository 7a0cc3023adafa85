"""lab.bench.latency without a VM: the plan, percentiles, a table row, the client's
correctness checks against a local reversing server."""

from __future__ import annotations

import socket
import threading

import pytest

from lab.bench import latency_client
from lab.bench.latency import KINDS, PERCENTILES, LatencyPlan, percentile, render_table, summarize
from lab.errors import LabError


def test_plan_alternates_the_order_and_splits_the_requests() -> None:
    plan = LatencyPlan(requests=201, rounds=2)
    assert plan.order(0) == KINDS and plan.order(1) == KINDS[::-1]
    assert plan.per_round(0) + plan.per_round(1) == 201


@pytest.mark.parametrize("bad", [{"requests": 0}, {"payload": 4}, {"xdp_mode": "fast"},
                                 {"kinds": ("dpdk",)}])
def test_plan_refuses_bad_input(bad: dict[str, object]) -> None:
    with pytest.raises(LabError):
        LatencyPlan(**bad)  # type: ignore[arg-type]


def test_percentiles_are_nearest_rank_and_ordered() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert [percentile(values, q) for q in PERCENTILES] == [500.0, 900.0, 990.0, 999.0]
    assert percentile([7.0], 99.9) == 7.0


def test_summary_row_and_table() -> None:
    runs = [{"rtt_ns": [1000, 2000, 3000], "answered": 3, "lost": 0, "wrong": 0,
             "seconds": 0.5, "requests": 3, "served": 3},
            {"rtt_ns": [4000], "answered": 1, "lost": 1, "wrong": 0, "seconds": 0.5,
             "requests": 2, "served": 1}]
    row = summarize("udp_recvfrom", runs)
    assert (row["requests"], row["answered"], row["lost"]) == (5, 4, 1)
    assert row["requests_per_s"] == 4.0
    assert row["p50_us"] == 2.0 and row["p99.9_us"] == 4.0
    table = render_table([row])
    assert "| udp_recvfrom | 5 | 4 | 2 | 4 | 4 | 4 | 4 |" in table


def _local_server(reply: bytes | None) -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                data, peer = sock.recvfrom(2048)
            except OSError:
                return
            sock.sendto(data[::-1] if reply is None else data, peer)

    threading.Thread(target=serve, daemon=True).start()
    return sock, sock.getsockname()[1]


def test_client_checks_every_reply() -> None:
    sock, port = _local_server(None)
    try:
        good = latency_client.run("127.0.0.1", port, 20, 64, 2, 2.0)
    finally:
        sock.close()
    assert (good["answered"], good["lost"], good["wrong"]) == (20, 0, 0)
    sock, port = _local_server(b"echo")  # echoes instead of reversing
    try:
        bad = latency_client.run("127.0.0.1", port, 5, 64, 0, 2.0)
    finally:
        sock.close()
    assert (bad["answered"], bad["wrong"]) == (0, 5)
