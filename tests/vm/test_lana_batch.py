"""The batch path (lana.batch=1, docs/design/batching.md) in a real guest.

One guest for the module: lana.ko loaded with batch=1, a quiet veth pair va/vb, LANA
hooked on vb. lanagen hands exactly N frames to vb's receive path (count=N, 64 per BH-off
section as a NAPI driver does), so every count is exact: eth queues them per CPU, its
NAPI poll hands them to the engine in batches, and the engine runs them block by block
(netrx_list for fwd, counter, bpf and tee; netrx per packet for ratelimit and mirror).
The engine's `calls` show that it did: with batches they are far fewer than the packets.
Replace, insert and cut run while lanagen floods, and every frame must still be counted
once; the modules unload and load again with frames in flight. Waits are on what the
guest shows (counters, lanagen's `sent`), never fixed sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from lab.lana.procfs import PpeCpu, parse_fblocks, parse_ppe, ppe_total
from lab.polling import poll

if TYPE_CHECKING:
    from conftest import Guest

pytestmark = pytest.mark.vm

PROC = "/proc/net/lana"
BATCH = "/sys/module/lana/parameters/batch"
SENT = "/sys/module/lanagen/parameters/sent"
MODULES = "fb_eth fb_fwd fb_counter fb_bpf fb_tee fb_ratelimit fb_mirror"
IPV4_BPF = "ldh [12]\njeq #0x800, L1, L2\nL1: ret #0xffff\nL2: ret #0\n"
ARP_BPF = "ldh [12]\njeq #0x806, L1, L2\nL1: ret #0xffff\nL2: ret #0\n"
N = 2000


def ppe(g: Guest) -> PpeCpu:
    return ppe_total(parse_ppe(g.sh(f"cat {PROC}/ppe")))


def counter(g: Guest, name: str) -> int:
    return int(g.sh(f"cat {PROC}/fblock/{name}").split()[0])


def qdrops(g: Guest) -> int:
    """Frames eth's batch lists refused (full); the line is there while batch=1."""
    for line in g.sh(f"cat {PROC}/fblock/vb").splitlines():
        if line.startswith("batch_qdrops "):
            return int(line.split()[1])
    raise AssertionError("eth's proc file has no batch_qdrops line with batch=1")


def send(g: Guest, n: int, timeout: float = 120.0) -> None:
    """lanagen hands exactly n frames to vb; returns once it has, lanagen unloaded."""
    g.sh(f"modprobe lanagen dev=vb len=60 count={n}")
    try:
        g.wait_for(f"[ $(cat {SENT}) -eq {n} ]", timeout, f"lanagen to send {n} frames")
    finally:
        g.sh("rmmod lanagen")


def wait_count(g: Guest, name: str, at_least: int, what: str) -> None:
    g.wait_for(f"[ $(cut -d' ' -f1 {PROC}/fblock/{name}) -ge {at_least} ]", 60, what)


def load_bpf(g: Guest, name: str, program: str) -> None:
    g.put("/tmp/batch.bpf", program)
    g.sh(f"bpfc /tmp/batch.bpf > {PROC}/fblock/{name}")


@pytest.fixture(scope="module")
def batched(guest: Guest) -> Iterator[Guest]:
    guest.sh(f"modprobe lana batch=1 && modprobe -a {MODULES} && "
             "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
             "net.ipv6.conf.default.disable_ipv6=1 && "
             "ip link add name va type veth peer name vb && ip link set dev va up && "
             "ip link set dev vb up && vlink ethernet hook vb >/dev/null")
    assert guest.sh(f"cat {BATCH}").strip() == "1"
    yield guest
    guest.vm.check_console()


@pytest.fixture
def stack(batched: Guest) -> Iterator[list[str]]:
    """Commands a test appends to undo what it built (run in reverse, also on failure);
    batch is back at 1 afterwards and the console clean."""
    undo: list[str] = []
    yield undo
    for command in reversed(undo):
        batched.run(command)
    batched.sh(f"echo 1 > {BATCH}")
    assert list(parse_fblocks(batched.sh(f"cat {PROC}/fblocks"))) == ["vb"], \
        "the test left instances behind"
    batched.vm.check_console()


def build(g: Guest, undo: list[str], blocks: list[tuple[str, str]],
          binds: list[tuple[str, str]]) -> None:
    for name, type_ in blocks:
        g.sh(f"fbctl add {name} {type_}")
        undo.append(f"fbctl rm {name}")
    for upper, lower in binds:
        g.sh(f"fbctl bind {upper} {lower}")
        undo.append(f"fbctl unbind {upper} {lower}")


def test_the_batch_parameter_reads_back_and_refuses_bad_values(batched: Guest,
                                                               stack: list[str]) -> None:
    """/sys/module/lana/parameters/batch: 0 or 1 from root only; anything else is
    refused and changes nothing; eth's proc file shows batch_qdrops only with batch=1."""
    g = batched
    assert g.sh(f"cat {BATCH}").strip() == "1"
    assert "batch_qdrops 0" in g.sh(f"cat {PROC}/fblock/vb")
    for bad in ("2", "x", "-1", "", "1 1"):
        result = g.fails(f"bash -c {g.quote(f'echo {g.quote(bad)} > {BATCH}')}")
        assert "Invalid argument" in result.stderr, (bad, result.stderr)
        assert g.sh(f"cat {BATCH}").strip() == "1"
    result = g.fails(f"setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "
                     f"'echo 0 > {BATCH}'")
    assert "Permission denied" in result.stderr, result.stderr
    g.sh(f"echo 0 > {BATCH}")
    assert g.sh(f"cat {BATCH}").strip() == "0"
    assert "batch_qdrops" not in g.sh(f"cat {PROC}/fblock/vb")  # batch=0: as before
    g.sh(f"echo 1 > {BATCH}")
    assert g.sh(f"cat {BATCH}").strip() == "1"


CHAIN = [("f1", "fwd"), ("r1", "ratelimit"), ("b1", "bpf"), ("t1", "tee"),
         ("c1", "counter"), ("c2", "counter")]
CHAIN_BINDS = [("f1", "vb"), ("r1", "f1"), ("b1", "r1"), ("t1", "b1"), ("c1", "t1"),
               ("c2", "t1")]


def test_exact_counts_through_fwd_ratelimit_bpf_tee_counter(batched: Guest,
                                                            stack: list[str]) -> None:
    """vb -> f1 (fwd) -> r1 (ratelimit, no netrx_list: per packet) -> b1 (bpf) -> t1
    (tee) -> c1 and c2 (counters, the sinks): with batch=1 each of N frames reaches c1 once
    and its clone c2 once, and the engine makes far fewer calls than packets; the same N
    with batch=0 costs one call per packet and block. A filter that passes nothing drops
    every frame at b1, counted, and the counters stay."""
    g = batched
    build(g, stack, CHAIN, CHAIN_BINDS)
    load_bpf(g, "b1", IPV4_BPF)
    for batch in (1, 0):
        g.sh(f"echo {batch} > {BATCH}")
        c1, c2, before = counter(g, "c1"), counter(g, "c2"), ppe(g)
        send(g, N)
        wait_count(g, "c2", c2 + N, f"the {N} clones at c2")
        after = ppe(g)
        got = (counter(g, "c1") - c1, counter(g, "c2") - c2, after.packets - before.packets,
               after.drops - before.drops)
        # batch=0 runs the tee's clones from the backlog, where they count as packets
        # entering the engine; batch=1 keeps them in the batch
        entered = N if batch else 2 * N
        assert got == (N, N, entered, 2 * N), \
            f"batch={batch}: c1, c2, entered, dropped {got}"
        calls = after.calls - before.calls
        if batch:
            # per run one call each of f1, b1, t1, c1 and c2; r1 one per packet
            assert N <= calls < 2 * N, f"batch=1 made {calls} calls for {N} frames"
            assert qdrops(g) == 0
        else:
            assert calls == 6 * N, f"batch=0 made {calls} calls for {N} frames (5 blocks " \
                                   "and the clone's counter per frame)"
    g.sh(f"echo 1 > {BATCH}")
    load_bpf(g, "b1", ARP_BPF)  # lanagen sends IPv4: nothing passes
    c1, before = counter(g, "c1"), ppe(g)
    send(g, 1000)
    assert poll(lambda: ppe(g).drops >= before.drops + 1000, 60), "1000 drops at b1"
    after = ppe(g)
    assert (counter(g, "c1") - c1, after.packets - before.packets,
            after.drops - before.drops) == (0, 1000, 1000)


def test_mirror_turns_every_frame_of_a_batch_around(batched: Guest,
                                                    stack: list[str]) -> None:
    """vb <- m1 (mirror: no netrx_list, turns packets to egress) : the batch path runs it
    per packet, the frames go down to eth (egress, per packet) and out of vb to va."""
    g = batched
    build(g, stack, [("m1", "mirror")], [("m1", "vb")])
    rx = int(g.sh("cat /sys/class/net/va/statistics/rx_packets"))
    send(g, 500)
    g.wait_for(f"[ $(cat /sys/class/net/va/statistics/rx_packets) -ge {rx + 500} ]", 60,
               "500 mirrored frames at va")
    assert int(g.sh("cat /sys/class/net/va/statistics/rx_packets")) - rx == 500


RECONFIGURE = """
for i in 1 2 3 4 5; do
  fbctl add f2 fwd && fbctl replace f1 f2 --drop-priv && fbctl add f1 fwd \\
  && fbctl replace f2 f1 --drop-priv && fbctl add c2 counter && fbctl replace c1 c2 \\
  && fbctl add c1 counter && fbctl replace c2 c1 || exit 1
  fbctl add x1 fwd && fbctl insert x1 f1 && fbctl add x2 bpf && fbctl insert x2 c1 \\
  && fbctl add x3 tee && fbctl insert x3 x2 && fbctl cut x1 && fbctl rm x1 \\
  && fbctl cut x3 && fbctl rm x3 && fbctl cut x2 && fbctl rm x2 || exit 1
done
"""


def test_replace_insert_cut_lose_no_frame_under_flood(batched: Guest,
                                                      stack: list[str]) -> None:
    """vb -> f1 -> c1 while lanagen floods (until vb goes down: it stops itself then, its
    count final): f1 and c1 replaced again and again, fwd, bpf and tee blocks inserted
    under f1 and c1 and cut out again. c1 must count every frame exactly once."""
    g = batched
    build(g, stack, [("f1", "fwd"), ("c1", "counter")], [("f1", "vb"), ("c1", "f1")])
    c1, before, q0 = counter(g, "c1"), ppe(g), qdrops(g)
    g.sh("modprobe lanagen dev=vb len=60 count=0")
    try:
        g.wait_for(f"[ $(cat {SENT}) -gt 1000 ]", 60, "lanagen to flood")
        g.sh(RECONFIGURE, timeout=900)
        assert int(g.sh(f"cat {SENT}")) > 5000, "too little traffic during the changes"
        g.sh("ip link set dev vb down")  # lanagen stops in the notifier: `sent` is final
        n = int(g.sh(f"cat {SENT}"))
    finally:
        g.sh("rmmod lanagen; ip link set dev vb up")
    lost_at_queue = qdrops(g) - q0
    wait_count(g, "c1", c1 + n - lost_at_queue, f"all {n} frames at c1")
    after = ppe(g)
    counted = counter(g, "c1") - c1
    assert lost_at_queue == 0, f"{lost_at_queue} frames refused at a full batch list"
    assert counted == n, f"lanagen sent {n} frames, c1 counted {counted}"
    assert after.packets - before.packets == n
    assert after.drops - before.drops == n  # c1 is the sink: it drops what it counted
    assert not [b for b in parse_fblocks(g.sh(f"cat {PROC}/fblocks")) if b[0] == "x"]


def test_unload_and_reload_with_batch_while_frames_flow(batched: Guest) -> None:
    """With batch=1 and lanagen flooding, the stack comes down and every module unloads
    (frames queued for the poll at that moment are run or dropped, the kernel stays
    quiet); a bad batch= refuses to load; lana.ko loads again with batch=1 and counts."""
    g = batched
    g.sh("fbctl add f1 fwd && fbctl add c1 counter && fbctl bind f1 vb && fbctl bind c1 f1")
    g.sh("modprobe lanagen dev=vb len=60 count=0")
    try:
        wait_count(g, "c1", 1000, "frames through the chain")
        g.sh(f"fbctl unbind c1 f1 && fbctl unbind f1 vb && vlink ethernet unhook vb && "
             f"fbctl rm c1 && fbctl rm f1 && rmmod {MODULES} lana")
    finally:
        g.sh("rmmod lanagen")
    assert "lana" not in g.sh("cut -d' ' -f1 /proc/modules").split()
    g.vm.check_console()
    bad = g.fails("modprobe lana batch=2")
    assert "Invalid argument" in bad.stderr, bad.stderr
    g.sh(f"modprobe lana batch=1 && modprobe -a {MODULES}")
    assert g.sh(f"cat {BATCH}").strip() == "1"
    g.sh("vlink ethernet hook vb >/dev/null && fbctl add f1 fwd && fbctl add c1 counter "
         "&& fbctl bind f1 vb && fbctl bind c1 f1")
    send(g, 700)
    wait_count(g, "c1", 700, "700 frames at c1")
    assert counter(g, "c1") == 700
    g.sh("fbctl unbind c1 f1 && fbctl unbind f1 vb && fbctl rm c1 && fbctl rm f1")
    g.vm.check_console()
