"""The bench's cBPF points in a real guest: one classic-BPF filter (lab/bench/udp_port9.bpf:
IPv4 UDP to port 9) in LANA's bpf block, on a PF_PACKET socket (SO_ATTACH_FILTER) and as
XDP (kernel/xdp/xdp_cbpf.bpf.c) counts exactly the frames that match it.

One guest for the module, set up by the bench's own helpers (lab/bench/guest.sh: lb_setup,
lb_cbpf_setup, lb_mode). lanagen sends exactly M frames the filter refuses (UDP to port 10,
100 bytes) and then exactly N it passes (port 9, 60 bytes); each send is over once lanagen's
`sent` reaches its count (it hands frames to netif_receive_skb() synchronously, so the
counters are final then). Every count is exact; nothing waits a fixed time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Guest

pytestmark = pytest.mark.vm

N, M = 1000, 300
SNIFF_OUT = "/tmp/cbpf-sniff.out"
SNIFF_READY = "/tmp/cbpf-sniff.ready"


def _bench(guest: Guest, script: str) -> str:
    return guest.sh("bash -c " + guest.quote(f". /tmp/lanabench.sh && {script}"))


@pytest.fixture(scope="module")
def bench(guest: Guest) -> Iterator[Guest]:
    from lab.bench.guest import CBPF_PROGRAM, HELPERS, SNIFFER, build_sniffer, compile_cbpf
    from lab.ebpf.compile import PROGRAMS_DIR, compile_program

    if not guest.run("modinfo -F name lanagen").stdout.strip():
        pytest.skip("the guest image has no lanagen module")
    guest.put(HELPERS, (Path(__file__).parents[2] / "lab/bench/guest.sh").read_bytes())
    guest.put(CBPF_PROGRAM, compile_cbpf())
    guest.put("/tmp/lanabench-xdp_cbpf.bpf.o",
              compile_program(PROGRAMS_DIR / "xdp_cbpf.bpf.c").path.read_bytes())
    with tempfile.TemporaryDirectory(prefix="cbpf-") as tmp:
        guest.put(SNIFFER, build_sniffer(Path(tmp)).read_bytes())
    guest.sh(f"chmod 755 {SNIFFER}")
    _bench(guest, "lb_setup 1 && lb_cbpf_setup")
    yield guest


def _send(guest: Guest, count: int, port: int, length: int) -> None:
    guest.sh(f"modprobe lanagen dev=vb len={length} count={count} dst_port={port}")
    try:
        guest.wait_for(f"[ $(cat /sys/module/lanagen/parameters/sent) -ge {count} ]", 120,
                       f"lanagen to send {count} frames")
        assert int(guest.sh("cat /sys/module/lanagen/parameters/sent")) == count
    finally:
        guest.sh("rmmod lanagen")


def _refused_then_passed(guest: Guest) -> None:
    _send(guest, M, 10, 100)
    _send(guest, N, 9, 60)


def test_the_bpf_block_program_is_the_filter(bench: Guest) -> None:
    shown = bench.sh("cat /proc/net/lana/fblock/bflt")
    assert "0x00000009" in shown and len([x for x in shown.splitlines() if "{" in x]) == 11


def test_lana_bpf_block_counts_what_the_filter_passes(bench: Guest) -> None:
    _bench(bench, "lb_mode lana_bpf")
    try:
        before = [int(x) for x in bench.sh("cat /proc/net/lana/fblock/bcnt").split()]
        _refused_then_passed(bench)
        after = [int(x) for x in bench.sh("cat /proc/net/lana/fblock/bcnt").split()]
    finally:
        _bench(bench, "lb_mode linux")
    assert [a - b for a, b in zip(after, before, strict=True)] == [N, N * 60]
    assert bench.sh("cat /tmp/lanabench.state").strip() == "linux"  # unhooked again
    bench.vm.check_console()


def test_cbpf_xdp_counts_what_the_filter_passes(bench: Guest) -> None:
    pin = "/sys/fs/bpf/tc/globals/cbpf_xdp_cnt"

    def counted() -> int:
        return next(int(line.split()[1]) for line in bench.sh(f"cat {pin}").splitlines()
                    if line.startswith("0:"))

    _bench(bench, "lb_mode cbpf_xdp")
    try:
        before = counted()
        _refused_then_passed(bench)
        after = counted()
    finally:
        _bench(bench, "lb_mode linux")
    assert after - before == N
    assert "xdp" not in bench.sh("ip link show dev vb")
    assert bench.run(f"test -e {pin}").exit_code != 0
    bench.vm.check_console()


def test_cbpf_socket_gets_what_the_filter_passes(bench: Guest) -> None:
    from lab.bench.guest import CBPF_PROGRAM, SNIFFER

    # an 8 MiB buffer: lanagen's burst fits, though the sniffer shares the vCPU with it
    bench.sh(f"rm -f {SNIFF_OUT} {SNIFF_READY}; ( {SNIFFER} -b 8388608 -n {N} "
             f"-r {SNIFF_READY} packet "
             f"vb 0 600 {CBPF_PROGRAM} > {SNIFF_OUT} 2> {SNIFF_OUT}.err < /dev/null & )")
    bench.wait_for(f"[ -e {SNIFF_READY} ]", 60, "the filtered socket to be ready",
                   f"{SNIFF_OUT}.err")
    _refused_then_passed(bench)
    bench.wait_for(f"[ -s {SNIFF_OUT} ]", 120, f"the filtered socket to count {N} frames",
                   f"{SNIFF_OUT}.err")
    packets, size, ns, drops = (int(x) for x in bench.sh(f"cat {SNIFF_OUT}").split())
    # only the 60-byte frames to port 9: a refused 100-byte frame would show in the bytes
    assert (packets, size, drops) == (N, N * 60, 0)
    assert ns > 0


def test_a_bad_filter_file_is_refused_with_a_clear_line(bench: Guest) -> None:
    from lab.bench.guest import SNIFFER

    bench.put("/tmp/cbpf-junk.txt", "ldh [12]\nnot bpfc output\n")
    result = bench.run(f"{SNIFFER} packet vb 0 1 /tmp/cbpf-junk.txt")
    assert result.exit_code == 1 and "filter /tmp/cbpf-junk.txt" in result.stderr
