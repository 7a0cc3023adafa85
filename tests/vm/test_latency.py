"""The latency scenario (lab/bench/latency.py) on a real bench lab: h1 -> s1 -> vm1.

A short run, 200 timed requests per server kind in two rounds (order alternated), checks
correctness, not speed: every reply is exactly its request's payload reversed (the client
counts anything else as wrong and a missing reply as lost), every kind answered every
request and its server says it served them all, and the table has all four rows with
p50 <= p90 <= p99 <= p99.9. No timing thresholds: round trips are timed with the wall clock
on a host others share. Then AF_XDP's bad input: native mode on a device whose driver has
no XDP (a dummy device) fails with a clear message and leaves nothing attached.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.bench.latency import (
    KINDS,
    PERCENTILES,
    LatencyLab,
    LatencyPlan,
    build_server,
    guest_address,
    render_table,
)

pytestmark = [pytest.mark.vm, pytest.mark.slow]

REQUESTS = 200


@pytest.fixture(scope="module")
def scenario(image: Any) -> Iterator[tuple[Any, LatencyLab]]:
    from lab.ebpf.compile import PROGRAMS_DIR, compile_program
    from lab.labrun import LabRun
    from lab.topology.loader import load_topology

    with tempfile.TemporaryDirectory(prefix="lanalat-") as tmp:
        server = build_server(Path(tmp)).read_bytes()
    xsk = compile_program(PROGRAMS_DIR / "xdp_xsk.bpf.c").path.read_bytes()
    topo = load_topology("bench")
    run = LabRun(topo, image, backend="qemu")
    run.up()
    try:
        lab = LatencyLab(run.sh, run.vms["vm1"].put_file, guest_address(topo))
        lab.install(server, xsk)
        yield run, lab
        run.vms["vm1"].check_console()
    finally:
        run.down()


def test_every_kind_answers_every_request_reversed(scenario: tuple[Any, LatencyLab]) -> None:
    run, lab = scenario
    plan = LatencyPlan(requests=REQUESTS, rounds=2, warmup=5)
    rows = lab.measure(plan, print)
    table = render_table(rows)
    print("\n" + table)
    assert [r["kind"] for r in rows] == list(KINDS)
    for r in rows:
        assert (r["requests"], r["answered"], r["lost"], r["wrong"]) == (REQUESTS, REQUESTS,
                                                                        0, 0), r["kind"]
        # the server's own count: the timed requests and both rounds' warm-up ones
        assert sum(r["served"]) == REQUESTS + 2 * plan.warmup, r["kind"]
        values = [r[f"p{q:g}_us"] for q in PERCENTILES]
        assert all(v > 0 for v in values), r
        assert values == sorted(values), r
        assert r["requests_per_s"] > 0
    assert len(table.splitlines()) == 2 + len(KINDS)
    # the raw servers left eth0 as they found it: no XDP program, no LANA hook
    assert "xdp" not in run.sh("vm1", "ip link show dev eth0")
    assert "eth0" not in run.sh("vm1", "cat /proc/net/lana/fblocks")


def test_af_xdp_native_without_driver_support_fails_clearly(
        scenario: tuple[Any, LatencyLab]) -> None:
    run, lab = scenario
    run.sh("vm1", "ip link add name lat0 type dummy && ip link set dev lat0 up")
    try:
        with pytest.raises(Exception) as err:
            lab.start_server("-N -o /tmp/lanalat-xdp_xsk.bpf.o xdp lat0 7777")
        message = str(err.value)
        assert "native (driver) mode" in message and "no XDP support" in message, message
        assert "generic mode" in message, "the message says what to do instead"
        assert "xdp" not in run.sh("vm1", "ip link show dev lat0")
        # a device that does not exist: one line that says so
        with pytest.raises(Exception) as err:
            lab.start_server("-o /tmp/lanalat-xdp_xsk.bpf.o xdp nosuchdev 7777")
        assert "no device nosuchdev" in str(err.value)
    finally:
        run.sh("vm1", "ip link del dev lat0")
