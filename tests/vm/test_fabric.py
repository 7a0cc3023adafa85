"""The Mininet fabric on its own (no VMs): hosts talk over the lab bridge, bandwidth limits
hold, netem-less hosts refuse delay with a clear message, two labs run side by side, and
everything recorded is gone after teardown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.fabric import Fabric
from lab.runstate import RunRecord, clean
from lab.topology import HostLink, HostSpec, SwitchSpec, Topology

pytestmark = pytest.mark.root


def hosts_topology(bw: float | None = None, delay: str | None = None) -> Topology:
    return Topology(name="pair", switches=(SwitchSpec("s1"),), hosts=(
        HostSpec("h1", (HostLink("s1", "10.0.0.1/24", bw=bw, delay=delay),)),
        HostSpec("h2", (HostLink("s1", "10.0.0.2/24"),))))


def start(topo: Topology) -> tuple[Fabric, RunRecord]:
    run = RunRecord.create()
    fabric = Fabric(topo, run)
    try:
        fabric.start()
    except BaseException:
        fabric.stop()
        clean(run.id)
        raise
    return fabric, run


def stop(fabric: Fabric, run: RunRecord) -> None:
    records = run.resources()
    fabric.stop()
    clean(run.id)
    left = [r["ifname"] for r in records
            if r["kind"] == "link" and Path("/sys/class/net", r["ifname"]).exists()]
    assert left == []


def test_two_labs_side_by_side_do_not_touch_each_other() -> None:
    first, run1 = start(hosts_topology())
    second, run2 = start(hosts_topology())
    try:
        assert run1.prefix != run2.prefix
        for fabric in (first, second):
            out = fabric.host("h1").cmd("ping -c 2 -W 2 10.0.0.2")
            assert " 0% packet loss" in out, out
        stop(second, run2)
        out = first.host("h1").cmd("ping -c 1 -W 2 10.0.0.2")
        assert " 0% packet loss" in out, out  # the first lab survived the second's teardown
    finally:
        stop(first, run1)


def _rx_bytes(fabric: Fabric, host: str, ifname: str) -> int:
    return int(fabric.host(host).cmd(f"cat /sys/class/net/{ifname}/statistics/rx_bytes"))


def test_bandwidth_limit_holds() -> None:
    fabric, run = start(hosts_topology(bw=2))
    try:
        # h2 -> h1 for about a second at an offered 20 Mbit/s; h1's link allows 2 Mbit/s
        before = _rx_bytes(fabric, "h1", "h1-eth0")
        fabric.host("h2").cmd("ping -f -c 2000 -s 1200 -w 1 10.0.0.1 > /dev/null")
        got = _rx_bytes(fabric, "h1", "h1-eth0") - before
        mbit = got * 8 / 1e6
        assert 0.5 < mbit < 4.0, f"{mbit:.2f} Mbit received in ~1 s through a 2 Mbit/s link"
    finally:
        stop(fabric, run)


def test_delay_without_netem_is_refused_clearly() -> None:
    try:
        fabric, run = start(hosts_topology(delay="10ms"))
    except LabError as exc:
        assert "netem" in exc.message and exc.hint and "bw" in exc.hint
        return
    try:  # a host kernel with netem: the delay must then really be there
        out = fabric.host("h2").cmd("ping -c 3 -W 2 10.0.0.1")
        rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
        assert rtts and min(rtts) >= 9.0, out
    finally:
        stop(fabric, run)
