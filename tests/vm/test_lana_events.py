"""LANA events (lana_fblock_emit): counter rate thresholds, a limiter dropping and idle,
links going down and up, seen by `fbctl monitor` and by lab.lana.client.Lana.events()
alike, and a ratelimit block that reacts to a counter's events (arm=on_event).

One guest for the module. Traffic comes from veth pairs in the guest: frames sent on va
arrive on vb, which LANA hooks. The stack

    vb (eth) -> c0 (counter: rate_high=200, rate_normal=20, interval_ms=200)
             -> r0 (ratelimit: rate=1 burst=1 idle_ms=300 arm=on_event) -> s0 (counter)

passes a trickle untouched, limits a flood only between c0's RATE_HIGH and RATE_NORMAL,
and passes the next trickle untouched again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Guest

pytestmark = pytest.mark.vm

PROC = "/proc/net/lana/fblock"
TROUBLE = r"BUG|Oops|WARNING|general protection|Call Trace"
GUEST_PY = ("PYTHONPATH=/lab:/lab/.venv/lib/python3.11/site-packages "
            "PYTHONDONTWRITEBYTECODE=1 python3")
FRAME = ("{ fill(0xff, 6), 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, c16(0x0800), "
         "fill(0xca, 86) }")
EVENTS = 8  # rate_high, limit_dropping, rate_normal, limit_idle, 2 x (link_down, link_up)

# In the guest: Lana.events() written as fbctl monitor prints them, until EVENTS came.
LISTENER = f"""
import sys
from lab.lana.client import Lana
with Lana() as lana:
    events = lana.events(timeout=120)
    print("listening", file=sys.stderr, flush=True)
    for n, ev in enumerate(events, 1):
        print(ev.block, ev.type, ev.kind, ev.value, flush=True)
        if n == {EVENTS}:
            break
print("done", file=sys.stderr, flush=True)
"""

# In the guest: flood va until r0 has dropped something, then 0.3 s more (deadline 60 s).
FLOODER = """
import socket, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind(("va", 0))
frame = b"\\xff" * 6 + b"\\x02\\0\\0\\0\\0\\x01" + b"\\x08\\x00" + b"\\xca" * 86
def dropped():
    return int(open("/proc/net/lana/fblock/r0").read().split("dropped ")[1].split()[0])
deadline, sent = time.monotonic() + 60, 0
while time.monotonic() < deadline and dropped() == 0:
    for _ in range(50):
        sock.send(frame)
    sent += 50
end = time.monotonic() + 0.3
while time.monotonic() < end:
    sock.send(frame)
    sent += 1
print(sent)
"""


def block_file(guest: Guest, name: str) -> dict[str, str]:
    lines = guest.sh(f"cat {PROC}/{name}").splitlines()
    return dict(line.split(None, 1) for line in lines if " " in line)


def packets(guest: Guest, name: str) -> int:
    return int(guest.sh(f"cat {PROC}/{name}").split()[0])


def trouble(guest: Guest) -> str:
    return guest.sh(f"dmesg | grep -E '{TROUBLE}' || true").strip()


def trickle(guest: Guest, n: int) -> None:
    guest.sh(f"trafgen --dev va --cpus 1 --no-cpu-stats --num {n} \"{FRAME}\" >/dev/null")


@pytest.fixture(scope="module")
def stack(guest: Guest) -> Iterator[Guest]:
    guest.sh("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 && "
             "modprobe -a lana fb_eth fb_counter fb_ratelimit && "
             "ip link add name va type veth peer name vb && "
             "ip link set dev va up && ip link set dev vb up && vlink ethernet hook vb && "
             "fbctl add c0 counter && fbctl set c0 interval_ms=200 && "
             "fbctl set c0 rate_high=200 && fbctl set c0 rate_normal=20 && "
             "fbctl add r0 ratelimit && fbctl set r0 rate=1 && fbctl set r0 burst=1 && "
             "fbctl set r0 idle_ms=300 && fbctl set r0 arm=on_event && "
             "fbctl add s0 counter && "
             "fbctl bind c0 vb && fbctl bind r0 c0 && fbctl bind s0 r0")
    yield guest
    assert not trouble(guest), trouble(guest)


def test_settings_and_state_in_procfs(stack: Guest) -> None:
    c0 = stack.sh(f"cat {PROC}/c0")
    assert re.fullmatch(r"\d+ \d+\nrate_high 200\nrate_normal 20\ninterval_ms 200\n"
                        r"rate \d+\nstate normal\n", c0), c0
    assert block_file(stack, "r0") == {
        "rate": "1", "burst": "1", "passed": "0", "dropped": "0", "idle_ms": "300",
        "arm": "on_event", "armed": "0", "arms": "0"}
    # a counter without rate events keeps its one line, as every parser expects
    assert re.fullmatch(r"\d+ \d+\n", stack.sh(f"cat {PROC}/s0"))


def test_events_and_the_limiter_reacting(stack: Guest) -> None:
    g = stack
    g.put("/tmp/listener.py", LISTENER)
    g.put("/tmp/flooder.py", FLOODER)
    g.start(f"fbctl monitor --count {EVENTS} --timeout 120 > /tmp/monitor.out",
            "/tmp/monitor.log", "monitoring LANA events")
    g.start(f"{GUEST_PY} /tmp/listener.py > /tmp/listener.out", "/tmp/listener.log",
            "listening", timeout=60)

    # a trickle passes the disarmed limiter untouched
    trickle(g, 5)
    g.wait_for(f"[ \"$(cut -d' ' -f1 {PROC}/s0)\" = 5 ]", what="s0 to count 5")
    assert (block_file(g, "r0")["dropped"], block_file(g, "r0")["armed"]) == ("0", "0")

    # a flood: c0 goes high, r0 arms and drops; after it c0 is normal, r0 idle
    flood = int(g.sh("python3 /tmp/flooder.py", timeout=120).strip())
    g.wait_for("grep -q rate_normal /tmp/monitor.out && grep -q limit_idle /tmp/monitor.out",
               timeout=60, what="rate_normal and limit_idle", log="/tmp/monitor.out")
    r0 = block_file(g, "r0")
    assert int(r0["dropped"]) > 0 and r0["armed"] == "0" and r0["arms"] == "1", r0
    # everything c0 counted went through r0 (veth may drop some of a flood before LANA)
    assert int(r0["passed"]) + int(r0["dropped"]) == packets(g, "c0") <= 5 + flood, (r0, flood)
    assert packets(g, "s0") == int(r0["passed"])

    # disarmed again: the next trickle passes untouched too
    before = block_file(g, "r0")
    trickle(g, 5)
    g.wait_for(f"[ \"$(cut -d' ' -f1 {PROC}/s0)\" = {int(before['passed']) + 5} ]",
               what="s0 to count the second trickle")
    assert block_file(g, "r0")["dropped"] == before["dropped"]

    # links: vb down/up (admin), then va down/up (vb's carrier)
    ifindex = g.sh("cat /sys/class/net/vb/ifindex").strip()
    for step, (cmd, kind) in enumerate([("vb down", "link_down"), ("vb up", "link_up"),
                                        ("va down", "link_down"), ("va up", "link_up")]):
        g.sh(f"ip link set dev {cmd}")
        g.wait_for(f"[ $(grep -c 'vb eth' /tmp/monitor.out) -ge {step + 1} ]",
                   what=f"{kind} after `ip link set {cmd}`", log="/tmp/monitor.out")
    g.wait_for("grep -q done /tmp/listener.log", what="the Python listener to finish",
               log="/tmp/listener.log")
    g.wait_for("! pidof fbctl >/dev/null", what="fbctl monitor to exit")

    lines = g.sh("cat /tmp/monitor.out").splitlines()
    assert g.sh("cat /tmp/listener.out").splitlines() == lines  # the same events
    kinds = [line.rsplit(" ", 1)[0] for line in lines]
    assert kinds[:2] == ["c0 counter rate_high", "r0 ratelimit limit_dropping"], lines
    assert sorted(kinds[2:4]) == ["c0 counter rate_normal", "r0 ratelimit limit_idle"], lines
    assert kinds[4:] == ["vb eth link_down", "vb eth link_up"] * 2, lines
    values = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in lines}
    assert values["c0 counter rate_high"] > 200 and values["c0 counter rate_normal"] <= 20
    assert values["r0 ratelimit limit_dropping"] >= 1
    assert values["r0 ratelimit limit_idle"] == int(block_file(g, "r0")["dropped"])
    assert all(line.endswith(f" {ifindex}") for line in lines[4:]), lines
    # no "events lost", no error: only the line it says once joined
    assert g.sh("cat /tmp/monitor.log") == "fbctl: monitoring LANA events\n"


BAD_SETTINGS = [
    ("c0", "rate_high=-1", "bad rate_high"),
    ("c0", "rate_high=fast", "bad rate_high"),
    ("c0", "rate_high=1000000001", "bad rate_high"),
    ("c0", "rate_high=", "bad rate_high"),
    ("c0", "rate_high=10", "rate_normal must not be above rate_high"),
    ("c0", "rate_normal=201", "rate_normal must not be above rate_high"),
    ("c0", "rate_normal=+5", "bad rate_normal"),
    ("c0", "interval_ms=0", "bad interval_ms"),
    ("c0", "interval_ms=9", "bad interval_ms"),
    ("c0", "interval_ms=60001", "bad interval_ms"),
    ("c0", "rate_hi=5", "unknown option"),
    ("r0", "arm=sometimes", "bad arm"),
    ("r0", "idle_ms=5", "bad idle_ms"),
    ("r0", "idle_ms=none", "bad idle_ms"),
]


def test_bad_settings_refused_old_kept(stack: Guest) -> None:
    settings = {"c0": ("rate_high", "rate_normal", "interval_ms"),
                "r0": ("rate", "burst", "idle_ms", "arm")}

    def current() -> dict[str, dict[str, str]]:
        return {name: {k: block_file(stack, name)[k] for k in keys}
                for name, keys in settings.items()}

    before = current()
    for name, setting, message in BAD_SETTINGS:
        result = stack.fails(f"fbctl set {name} {setting}")
        assert message in result.stderr, (setting, result.stderr)
    assert current() == before
    for args, message in [("--count 0", "bad --count"), ("--timeout -1", "bad --timeout"),
                          ("--bogus", "usage: fbctl monitor")]:
        assert message in stack.fails(f"fbctl monitor {args}").stderr
    # an unprivileged listener is refused
    result = stack.run("setpriv --reuid=65534 --regid=65534 --clear-groups "
                       "fbctl monitor --timeout 1")
    assert result.exit_code != 0


def test_rm_while_emitting_and_unload(stack: Guest) -> None:
    """A counter measuring every 10 ms with a threshold every frame crosses, removed while
    frames flow and a listener reads; then every module unloaded: no oops."""
    g = stack
    g.sh("ip link add name vc type veth peer name vd && ip link set dev vc up && "
         "ip link set dev vd up && vlink ethernet hook vd && fbctl add c9 counter && "
         "fbctl set c9 interval_ms=10 && fbctl set c9 rate_high=1 && fbctl bind c9 vd && "
         "fbctl add r9 ratelimit && fbctl set r9 rate=1 && fbctl set r9 idle_ms=10 && "
         "fbctl subscribe r9 c9 && fbctl set r9 arm=on_event")
    g.start("fbctl monitor --timeout 5 > /tmp/monitor9.out", "/tmp/monitor9.log",
            "monitoring LANA events")
    g.sh(f"( trafgen --dev vc --cpus 1 --no-cpu-stats --num 200000 \"{FRAME}\" "
         ">/dev/null 2>&1 & echo $! > /tmp/trafgen9.pid )")
    g.wait_for("grep -q 'c9 counter rate_high' /tmp/monitor9.out", what="c9 to go high")
    g.sh("fbctl unsubscribe r9 c9 && fbctl rm r9 && fbctl unbind c9 vd && fbctl rm c9")
    g.sh("kill $(cat /tmp/trafgen9.pid) 2>/dev/null; true")
    g.sh("vlink ethernet unhook vd && ip link del dev vc")
    # unload with the listener still joined, and the main stack still built
    g.sh("fbctl unbind s0 r0 && fbctl unbind r0 c0 && fbctl unbind c0 vb && "
         "fbctl rm s0 && fbctl rm r0 && fbctl rm c0 && vlink ethernet unhook vb && "
         "rmmod fb_ratelimit fb_counter fb_eth && rmmod lana")
    g.wait_for("! pidof fbctl >/dev/null", timeout=60,
               what="fbctl monitor to stop, 5 s after the last event")
    assert "lana" not in g.sh("cut -d' ' -f1 /proc/modules").split()
    assert not trouble(g), trouble(g)
