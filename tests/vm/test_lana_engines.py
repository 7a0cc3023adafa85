"""The engine models of thesis 6.5 (kernel/core/engine_*.c) in a real guest.

One guest for the module: a quiet veth pair va/vb, LANA hooked on vb, the chain
vb -> f1 (fwd) -> c1 (counter). lanagen hands exactly N frames to vb's receive path
(count=N), so every count is exact: on every engine c1 must see each frame once, and the
engine must end with nothing queued. Switching is checked under traffic (nothing lost or
run twice), bad switches are refused and change nothing, and lana.ko loads with each
engine as its parameter and unloads cleanly while frames are in flight. Waits are on
what the guest shows (counters, lanagen's `sent`), never fixed sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from lab.lana.procfs import parse_ppe, ppe_total

if TYPE_CHECKING:
    from conftest import Guest

pytestmark = pytest.mark.vm

PROC = "/proc/net/lana"
ENGINES = ("softirq", "kthread-hp", "kthread-np", "kthread-cs", "hrtimer")
N = 2000
# frames per lanagen run: no more than one engine queue holds (LANA_ENGINE_QLEN, 1024),
# so a queued model that lets lanagen run on loses nothing to a full queue; overload is
# the bench's business (it counts those drops), exact counts are this test's
BURST = 1000
SENT = "/sys/module/lanagen/parameters/sent"


def engine_state(g: Guest) -> dict[str, str]:
    """/proc/net/lana/engine: '[current] other ...', then 'model', 'queued', 'qdrops'."""
    lines = g.sh(f"cat {PROC}/engine").splitlines()
    current = re.findall(r"\[([a-z-]+)\]", lines[0])
    assert len(current) == 1, lines
    assert lines[0].replace("[", "").replace("]", "").split() == list(ENGINES), lines
    state = {"current": current[0]}
    for line in lines[1:]:
        key, value = line.split(" ", 1)
        state[key] = value
    return state


def counts(g: Guest) -> tuple[int, int, int]:
    """(c1's packets, frames that entered the engine, frames dropped at a full queue)."""
    c1 = int(g.sh(f"cat {PROC}/fblock/c1").split()[0])
    entered = ppe_total(parse_ppe(g.sh(f"cat {PROC}/ppe"))).packets
    return c1, entered, int(engine_state(g)["qdrops"])


def build_chain(g: Guest) -> None:
    g.sh("vlink ethernet hook vb >/dev/null && fbctl add f1 fwd && fbctl add c1 counter "
         "&& fbctl bind f1 vb && fbctl bind c1 f1")


def send(g: Guest, n: int, timeout: float = 120.0) -> None:
    """lanagen hands exactly n frames to vb; returns once it has, lanagen unloaded."""
    g.sh(f"modprobe lanagen dev=vb len=60 count={n}")
    try:
        g.wait_for(f"[ $(cat {SENT}) -eq {n} ]", timeout, f"lanagen to send {n} frames")
    finally:
        g.sh("rmmod lanagen")


def settle(g: Guest, before: tuple[int, int, int], n: int) -> tuple[int, int, int]:
    """Wait until every one of the n frames is counted at c1 or as a queue drop and the
    engine holds nothing; the deltas since `before`."""
    c0, e0, q0 = before
    g.wait_for(f"c=$(cut -d' ' -f1 {PROC}/fblock/c1); q=$(sed -n 's/^qdrops //p' "
               f"{PROC}/engine); [ $((c - {c0} + q - {q0})) -ge {n} ] && "
               f"grep -qx 'queued 0' {PROC}/engine", 60,
               f"all {n} frames through the chain")
    c1, entered, qdrops = counts(g)
    return c1 - c0, entered - e0, qdrops - q0


@pytest.fixture(scope="module")
def chain(guest: Guest) -> Iterator[Guest]:
    guest.sh("modprobe -a lana fb_eth fb_fwd fb_counter && "
             "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
             "net.ipv6.conf.default.disable_ipv6=1 && "
             "ip link add name va type veth peer name vb && ip link set dev va up && "
             "ip link set dev vb up")
    build_chain(guest)
    yield guest
    guest.vm.check_console()


@pytest.mark.parametrize("engine", ENGINES)
def test_every_frame_once_on_each_engine(chain: Guest, engine: str) -> None:
    g = chain
    g.sh(f"echo {engine} > {PROC}/engine")
    state = engine_state(g)
    assert state["current"] == engine
    before = counts(g)
    for done in range(BURST, N + 1, BURST):
        send(g, BURST)
        settle(g, before, done)
    c1, entered, qdrops = settle(g, before, N)
    assert (c1, entered, qdrops) == (N, N, 0), f"{engine}: c1 {c1}, entered {entered}, " \
        f"queue drops {qdrops} of {N} frames"
    if engine != "softirq":  # the queued models' threads and timers exist only while on
        assert engine_state(g)["queued"] == "0"
    g.vm.check_console()


SWITCH_LOOP = f"""
for round in 1 2; do
    for e in {' '.join(ENGINES)} kthread-cs softirq hrtimer kthread-hp; do
        echo $e > {PROC}/engine || exit 1
    done
done
"""


def test_switching_under_traffic_loses_and_repeats_nothing(chain: Guest) -> None:
    """lanagen floods (until vb goes down: it stops itself then, its count final) while
    the engine is switched 18 times: every frame reaches c1 exactly once or was dropped
    at a full queue (counted), none is lost in a switch."""
    g = chain
    g.sh(f"echo softirq > {PROC}/engine")
    before = counts(g)
    g.sh("modprobe lanagen dev=vb len=60 count=0")
    try:
        g.wait_for(f"[ $(cat {SENT}) -gt 1000 ]", 60, "lanagen to flood")
        g.sh(SWITCH_LOOP, timeout=600)
        g.sh("ip link set dev vb down")  # lanagen stops in the notifier: `sent` is final
        n = int(g.sh(f"cat {SENT}"))
    finally:
        g.sh("rmmod lanagen; ip link set dev vb up")
    c1, entered, qdrops = settle(g, before, n)
    assert n > 2000, f"too little traffic to tell: {n} frames"
    assert c1 + qdrops == n, f"{n} sent: c1 {c1} + queue drops {qdrops}"
    assert entered == c1, f"the engine ran {entered} frames, c1 counted {c1}"
    assert engine_state(g)["queued"] == "0"
    assert "[kthread-hp]" in g.sh(f"head -n 1 {PROC}/engine")
    g.sh(f"echo softirq > {PROC}/engine")
    g.vm.check_console()


def test_bad_switches_are_refused_and_change_nothing(chain: Guest) -> None:
    g = chain
    g.sh(f"echo kthread-cs > {PROC}/engine")
    for bad in ("bogus", "", "softirq2", "kthread", "x" * 40, "softirq hrtimer"):
        # echo writes BAD and a newline (the newline alone for ""): one write(2)
        result = g.fails(f"bash -c {g.quote(f'echo {g.quote(bad)} > {PROC}/engine')}")
        assert "Invalid argument" in result.stderr, (bad, result.stderr)
        assert engine_state(g)["current"] == "kthread-cs"
    result = g.fails(f"setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "
                     f"'echo softirq > {PROC}/engine'")
    assert "Permission denied" in result.stderr or "not permitted" in result.stderr, \
        result.stderr
    assert engine_state(g)["current"] == "kthread-cs"
    g.sh(f"echo softirq > {PROC}/engine")
    g.vm.check_console()


def test_load_and_unload_with_each_engine_while_frames_flow(chain: Guest) -> None:
    """lana.ko with engine=NAME: the model is current from the start, frames flow, and
    the modules unload while lanagen still sends (frames queued at that moment are run
    or dropped, the kernel stays quiet). A bad engine= refuses to load."""
    g = chain
    teardown = ("fbctl unbind c1 f1 && fbctl unbind f1 vb && vlink ethernet unhook vb && "
                "fbctl rm c1 && fbctl rm f1 && rmmod fb_counter fb_fwd fb_eth lana")
    g.sh(teardown)
    bad = g.fails("modprobe lana engine=bogus")
    assert "Invalid argument" in bad.stderr, bad.stderr
    assert "engine=bogus: no such engine" in g.sh("dmesg | tail -n 5")
    for engine in ENGINES:
        g.sh(f"modprobe lana engine={engine} && modprobe -a fb_eth fb_fwd fb_counter")
        assert engine_state(g)["current"] == engine
        build_chain(g)
        before = counts(g)
        send(g, 500)
        c1, _, qdrops = settle(g, before, 500)
        assert (c1, qdrops) == (500, 0), engine
        g.sh("modprobe lanagen dev=vb len=60 count=0")  # until rmmod: in flight below
        g.wait_for(f"[ $(cut -d' ' -f1 {PROC}/fblock/c1) -gt 1000 ]", 60,
                   "frames through the chain")
        g.sh(f"{teardown} && rmmod lanagen")
        assert "lana" not in g.sh("lsmod | cut -d' ' -f1")
        g.vm.check_console()
    g.sh("modprobe -a lana fb_eth fb_fwd fb_counter")
    build_chain(g)
