"""The LANA core (lana.ko, fbctl, vlink) inside a real guest.

One guest for the whole module. Traffic needs no host networking: a veth pair va/vb in
the guest, LANA hooked on vb, trafgen flooding va. Every control operation runs while
trafgen floods; the fixture checks the console for Oops/BUG/WARNING after each test.
Bad input must fail with a clear message and leave /proc/net/lana/fblocks unchanged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from lab.grading.traffic import wait_settled
from lab.lana.procfs import FBlock, parse_fblocks, parse_ppe, ppe_total

if TYPE_CHECKING:
    from conftest import Guest

pytestmark = pytest.mark.vm

PROC = "/proc/net/lana"
# 100-byte broadcast IPv4-typed frames; fill bytes only, nobody answers them.
FRAME = ("{ fill(0xff, 6), 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, c16(0x0800), "
         "fill(0xca, 86) }")
TRAFGEN_PID = "/tmp/lana_core_trafgen.pid"


@pytest.fixture(scope="module")
def lana(guest: Guest) -> Guest:
    """The guest with lana.ko and a quiet veth pair va/vb hooked into LANA as 'vb'."""
    guest.sh("modprobe lana")
    guest.sh("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 "
             "&& ip link add name va type veth peer name vb "
             "&& ip link set dev va up && ip link set dev vb up")
    # fb_eth is not loaded: `vlink ethernet hook` must load it via its module alias.
    guest.sh("vlink ethernet hook vb")
    return guest


@pytest.fixture
def core(lana: Guest) -> Iterator[Guest]:
    """Per test: start from only 'vb'; remove what the test left behind (reverse order)."""
    yield lana
    for _ in range(3):  # unbind everything, then remove everything but vb
        blocks = fblocks(lana)
        by_idp = {block.idp: block.name for block in blocks.values()}
        for block in blocks.values():
            for port in block.ports:
                if port.direction == "out":
                    lana.run(f"fbctl unbind {block.name} {by_idp[port.idp]}")
            for idp in block.subscriptions:
                lana.run(f"fbctl unsubscribe {block.name} {by_idp.get(idp, '?')}")
        for name in reversed(list(fblocks(lana))):
            if name != "vb":
                lana.run(f"fbctl rm {name}")
    assert list(fblocks(lana)) == ["vb"], "test left instances behind"
    lana.vm.check_console()


def fblocks(guest: Guest) -> dict[str, FBlock]:
    return parse_fblocks(guest.sh(f"cat {PROC}/fblocks"))


def ppe_packets(guest: Guest) -> int:
    return ppe_total(parse_ppe(guest.sh(f"cat {PROC}/ppe"))).packets


def tx_packets(guest: Guest) -> int:
    return int(guest.sh("cat /sys/class/net/va/statistics/tx_packets"))


def counter(guest: Guest, name: str) -> int:
    text = guest.sh(f"cat {PROC}/fblock/{name}")
    match = re.fullmatch(r"(\d+) (\d+)\n", text)
    assert match, f"counter {name} printed {text!r}"
    return int(match.group(1))


def wait_growing(guest: Guest, name: str, above: int, timeout: float = 20.0) -> int:
    """Wait until counter `name` passes `above` (packets flow through it)."""
    deadline = time.monotonic() + timeout
    value = counter(guest, name)
    while value <= above and time.monotonic() < deadline:
        time.sleep(0.3)
        value = counter(guest, name)
    assert value > above, f"counter {name} stuck at {value}: no traffic through it"
    return value


@contextmanager
def flood(guest: Guest) -> Iterator[None]:
    """trafgen floods va (so vb receives) for the duration of the block."""
    guest.sh(f"setsid sh -c 'echo $$ > {TRAFGEN_PID}; exec timeout -s INT 300 "
             f"trafgen --dev va --cpus 1 --no-cpu-stats --num 0 \"{FRAME}\"' "
             "</dev/null >/tmp/lana_core_trafgen.log 2>&1 &")
    try:
        before = tx_packets(guest)
        deadline = time.monotonic() + 20
        while tx_packets(guest) <= before and time.monotonic() < deadline:
            time.sleep(0.3)
        assert tx_packets(guest) > before, (
            "trafgen sends nothing on va: " + guest.run("cat /tmp/lana_core_trafgen.log").stdout)
        yield
    finally:
        # stopped once the process is gone, not after some time
        guest.run(f"pid=$(cat {TRAFGEN_PID}); kill -TERM $pid 2>/dev/null; "
                  "for i in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done")


def fails_with(guest: Guest, command: str, *fragments: str) -> str:
    """Run a command that must fail with exit 1 and a message with all `fragments`,
    leaving the LANA state as it was."""
    before = guest.sh(f"cat {PROC}/fblocks")
    result = guest.fails(command)
    message = result.stdout + result.stderr
    assert result.exit_code == 1, f"{command}: exit {result.exit_code}\n{message}"
    for fragment in fragments:
        assert fragment in message, f"{command}: expected {fragment!r} in {message!r}"
    assert guest.sh(f"cat {PROC}/fblocks") == before, f"{command} changed the state"
    return message


def test_core_loads_and_hook_autoloads_eth(lana: Guest) -> None:
    assert "lana: core up" in lana.sh("dmesg")
    blocks = fblocks(lana)
    assert blocks["vb"].type == "eth" and blocks["vb"].refcnt == 1
    assert "eth fb_eth" in lana.sh(f"cat {PROC}/types")
    help_text = lana.sh("fbctl --help")
    for command in ("add NAME TYPE", "bind A B", "replace OLD NEW [--drop-priv]", "list"):
        assert command in help_text


def test_build_and_tear_down_under_traffic(core: Guest) -> None:
    g = core
    with flood(g):
        g.sh("fbctl add f1 fwd && fbctl add c1 counter")  # counter autoloads too
        g.sh("fbctl bind f1 vb && fbctl bind c1 f1")
        seen = wait_growing(g, "c1", 0)
        blocks = fblocks(g)
        vb, f1, c1 = blocks["vb"], blocks["f1"], blocks["c1"]
        assert [(p.direction, p.idp) for p in f1.ports] == [("out", vb.idp), ("in", c1.idp)]
        assert set(f1.subscribers) == {vb.idp, c1.idp}  # bind subscribes both ways
        assert set(c1.subscriptions) == {f1.idp}
        g.sh("fbctl subscribe c1 vb && fbctl unsubscribe c1 vb")
        g.sh("fbctl unbind c1 f1")
        time.sleep(1)
        stopped = counter(g, "c1")
        time.sleep(1)
        assert counter(g, "c1") == stopped, "unbound counter still gets packets"
        assert stopped >= seen
        g.sh("fbctl bind c1 f1")
        wait_growing(g, "c1", stopped)
        g.sh("fbctl unbind c1 f1 && fbctl rm c1 && fbctl add c1 counter "
             "&& fbctl bind c1 f1")
        wait_growing(g, "c1", 0)
        g.sh("fbctl unbind c1 f1 && fbctl unbind f1 vb && fbctl rm c1 && fbctl rm f1")
    assert list(fblocks(g)) == ["vb"]


def test_notifications_are_delivered_and_counted(core: Guest) -> None:
    g = core
    g.sh("fbctl add c1 counter && fbctl add c2 counter && fbctl subscribe c2 c1")
    assert fblocks(g)["c2"].subscriptions == (fblocks(g)["c1"].idp,)
    g.sh("fbctl set c1 reset=1 && fbctl set c1 reset=1")
    assert fblocks(g)["c2"].events == 2
    assert fblocks(g)["c1"].events == 0  # the publisher does not get its own events
    fails_with(g, "fbctl set c1 bogus=1", "set c1 bogus=1")  # a refused set notifies nobody
    assert fblocks(g)["c2"].events == 2


def test_replace_moves_priv_idp_and_bindings_under_traffic(core: Guest) -> None:
    g = core
    g.sh("fbctl add f1 fwd && fbctl add c1 counter && fbctl add w1 counter")
    g.sh("fbctl bind f1 vb && fbctl bind c1 f1 && fbctl subscribe w1 c1")
    with flood(g):
        old = fblocks(g)
        seen = wait_growing(g, "c1", 0)
        # same type, priv moves: c2 continues c1's count under c1's IDP and bindings
        g.sh("fbctl add c2 counter && fbctl replace c1 c2")
        new = fblocks(g)
        assert "c1" not in new and new["c2"].idp == old["c1"].idp
        assert new["c2"].ports == old["c1"].ports
        assert set(new["c2"].subscribers) == set(old["c1"].subscribers) >= {new["w1"].idp}
        assert new["w1"].events == old["w1"].events + 1  # told about the replacement
        wait_growing(g, "c2", seen)
        # other type needs --drop-priv; with it the core replays the ports to f2
        g.sh("fbctl add f2 tee")
        fails_with(g, "fbctl replace f1 f2", "--drop-priv")
        before = counter(g, "c2")
        g.sh("fbctl replace f1 f2 --drop-priv")
        after = fblocks(g)
        assert after["f2"].idp == old["f1"].idp and after["f2"].ports == old["f1"].ports
        wait_growing(g, "c2", before)
    listing = g.sh("fbctl list").splitlines()
    assert listing[0].split()[:5] == ["NAME", "TYPE", "IDP", "REFCNT", "EVENTS"]
    assert any(line.split()[:2] == ["f2", "tee"] and "out:vb" in line and "in:c2" in line
               for line in listing), listing


REPLACE_LOOP = """
for i in 1 2 3 4 5; do
  fbctl add f2 fwd && fbctl replace f1 f2 --drop-priv && fbctl add f1 fwd \
  && fbctl replace f2 f1 --drop-priv && fbctl add c2 counter && fbctl replace c1 c2 \
  && fbctl add c1 counter && fbctl replace c2 c1 || exit 1
done
"""


def rx_packets(guest: Guest) -> int:
    return int(guest.sh("cat /sys/class/net/vb/statistics/rx_packets"))


def test_replace_loses_no_packet_under_traffic(core: Guest) -> None:
    """Every frame vb receives must reach the counter while the blocks on its path are
    replaced again and again (the IDP never points nowhere; the count moves with priv)."""
    every_frame_counted_while(core, REPLACE_LOOP)


def every_frame_counted_while(g: Guest, script: str) -> None:
    """vb -> f1 -> c1; trafgen floods while `script` runs: c1 must count every frame vb
    received."""
    g.sh("fbctl add f1 fwd && fbctl add c1 counter && fbctl bind f1 vb && fbctl bind c1 f1")
    received, counted = rx_packets(g), counter(g, "c1")
    with flood(g):
        g.sh(script, timeout=600)
    # frames still queued in the backlog arrive late: read once both counts stop moving
    received, counted = wait_settled(  # type: ignore[misc]
        lambda: (rx_packets(g) - received, counter(g, "c1") - counted), timeout=60)
    assert received > 1000, f"too little traffic to tell: {received} frames"
    assert counted == received, f"vb received {received} frames, the counter saw {counted}"


GROW_TABLE = r"""
for i in $(seq 150); do fbctl add g$i fwd || exit 1; done
grep -q '^g150 ' /proc/net/lana/fblocks || exit 1
for i in $(seq 150); do fbctl rm g$i || exit 1; done
"""


def test_idp_table_grows_under_traffic_without_losing_a_packet(core: Guest) -> None:
    """150 more instances push the IDPs past the engine's table (64 slots at load, so it
    is copied and republished at least twice) while frames flow: none may be lost."""
    g = core
    every_frame_counted_while(g, GROW_TABLE)
    g.sh("fbctl add late counter && fbctl bind late c1")  # a high IDP carries traffic too
    assert fblocks(g)["late"].idp > 150
    with flood(g):
        wait_growing(g, "late", 0)
    g.sh("fbctl unbind late c1 && fbctl rm late")


CONCURRENT = r"""
(for i in $(seq 60); do
   cat /proc/net/lana/fblocks /proc/net/lana/ppe >/dev/null || exit 1
   cat /proc/net/lana/fblock/c1 >/dev/null 2>&1  # may be mid-replace: ENOENT is fine
 done; echo readers-ok) >/tmp/lana_r.log 2>&1 &
(for i in $(seq 8); do
   fbctl add s$i counter && fbctl subscribe s$i p1 && fbctl set p1 reset=1 \
   && fbctl unsubscribe s$i p1 && fbctl rm s$i || exit 1
 done; echo subscribers-ok) >/tmp/lana_s.log 2>&1 &
for i in $(seq 6); do
  fbctl add c2 counter && fbctl replace c1 c2 && fbctl add c1 counter \
  && fbctl replace c2 c1 || exit 1
done
wait
cat /tmp/lana_r.log /tmp/lana_s.log
"""


def test_concurrent_control_and_readers_under_traffic(core: Guest) -> None:
    g = core
    g.sh("fbctl add f1 fwd && fbctl add c1 counter && fbctl add p1 counter "
         "&& fbctl bind f1 vb && fbctl bind c1 f1")
    with flood(g):
        out = g.sh(CONCURRENT, timeout=600)
        assert "readers-ok" in out and "subscribers-ok" in out, out
        blocks = fblocks(g)
        assert set(blocks) == {"vb", "f1", "c1", "p1"}
        assert blocks["p1"].events == 0 and blocks["p1"].subscribers == ()
        wait_growing(g, "c1", counter(g, "c1"))
    # dd, not echo: dash's echo reports every write error as "I/O error"
    fails_with(g, "echo x | dd of=/proc/net/lana/fblock/c1 status=none",
               "Operation not supported")


BAD_INPUT = [
    ("fbctl add x1 nosuchtype", "No such file or directory", "unknown block type 'nosuchtype'"),
    ("fbctl add c1 counter", "File exists", "'c1' exists already"),
    ("fbctl add " + "n" * 32 + " counter", "File name too long", "at most 31"),
    ("fbctl add 'a b' counter", "Invalid argument", "A-Z a-z 0-9"),
    ("fbctl add '' counter", "Invalid argument", "empty instance name"),
    ("fbctl bind c1 c1", "Invalid argument", "itself"),
    ("fbctl bind f1 c1", "Too many levels of symbolic links", "loop"),
    ("fbctl bind c1 f1", "File exists", "already bound"),
    ("fbctl unbind c1 vb", "No such file or directory", "not bound"),
    ("fbctl unbind f1 c1", "No such file or directory", "unbind c1 f1"),
    ("fbctl rm f1", "Device or resource busy", "unbind it first"),
    ("vlink ethernet unhook vb", "Device or resource busy", "unbind it first"),
    ("fbctl rm nosuch", "No such file or directory", "no instance named 'nosuch'"),
    ("fbctl unsubscribe c1 vb", "No such file or directory", "not subscribed"),
    ("fbctl set c1 novalue", "Invalid argument", "key=value"),
    ("fbctl replace c1 f1", "Device or resource busy", "must be fresh"),
    ("fbctl bind", "", "usage: fbctl bind A B"),
    ("fbctl frobnicate", "", "unknown command"),
]


def test_bad_input_is_refused_clearly_and_changes_nothing(core: Guest) -> None:
    g = core
    g.sh("fbctl add f1 fwd && fbctl add c1 counter && fbctl bind f1 vb && fbctl bind c1 f1")
    with flood(g):
        before = ppe_packets(g)
        for command, errno_text, fragment in BAD_INPUT:
            fails_with(g, command, errno_text, fragment)
        assert ppe_packets(g) > before, "no traffic went through LANA meanwhile"


def test_rm_of_subscribed_block_and_rmmod_in_use(core: Guest) -> None:
    g = core
    g.sh("fbctl add c1 counter && fbctl add c2 counter && fbctl subscribe c2 c1")
    fails_with(g, "fbctl rm c1", "Device or resource busy", "unsubscribe c2 c1")
    fails_with(g, "rmmod fb_counter", "in use")
    fails_with(g, "rmmod lana", "in use")
    g.sh("fbctl unsubscribe c2 c1 && fbctl rm c1 && fbctl rm c2")


def test_unprivileged_user_gets_eperm(core: Guest) -> None:
    g = core
    for command in ("fbctl list", "fbctl add u1 fwd", "vlink ethernet unhook vb"):
        fails_with(g, f"setpriv --reuid=65534 --regid=65534 --clear-groups {command}",
                   "Operation not permitted")


def test_unload_with_nothing_left_is_clean(lana: Guest) -> None:
    g = lana
    g.sh("vlink ethernet unhook vb")
    assert fblocks(g) == {}
    g.sh("for m in $(lsmod | awk '/^fb_/ {print $1}'); do rmmod $m || exit 1; done")
    g.sh("rmmod lana")
    assert "lana" not in g.sh("lsmod")
    assert "lana: core down" in g.sh("dmesg")
    lana.vm.check_console()
