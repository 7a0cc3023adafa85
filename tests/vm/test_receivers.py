"""The bench's userspace receivers (lab/bench/receivers.c) in a real guest: each one gets
exactly the frames lanagen handed over, and AF_XDP's bad inputs fail with a clear message
and leave nothing attached.

One guest for the module: a quiet veth pair va/vb (IPv6 off) with 10.254.254.254/24 on vb,
the receivers and kernel/xdp/xdp_xsk.bpf.o built and compiled on the host. lanagen sends
exactly N frames (count=N); the receiver counts from its first frame until it has N
(`-n N`) and says it is ready by creating a file, so nothing waits a fixed time.
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

RECV = "/tmp/lanabench-recv"
OBJ = "/tmp/xdp_xsk.bpf.o"
READY = "/tmp/recv.ready"
OUT = "/tmp/recv.out"
N = 2000


# clang compiles it, the verifier refuses it: a packet read without a bounds check
UNCHECKED = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	if (data[12] != 0x08)
		return XDP_PASS;
	return bpf_redirect_map(&xsks_map, 0, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def receivers(guest: Guest) -> Iterator[Guest]:
    from lab.bench.guest import build_receivers
    from lab.ebpf.compile import compile_all, compile_program

    with tempfile.TemporaryDirectory(prefix="recv-") as tmp:
        guest.put(RECV, build_receivers(Path(tmp)).read_bytes())
        source = Path(tmp) / "xdp_unchecked.bpf.c"
        source.write_text(UNCHECKED)
        guest.put("/tmp/unchecked.bpf.o", compile_program(source).path.read_bytes())
    objects = compile_all()
    for name in ("xdp_xsk", "xdp_drop", "tc_drop"):
        guest.put(f"/tmp/{name}.bpf.o", objects[name].path.read_bytes())
    guest.put("/tmp/junk.bpf.o", b"\x7fELF but not really" * 10)
    guest.sh(f"chmod 755 {RECV} && "
             "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
             " && ip link add name va type veth peer name vb && ip link set dev va up && "
             "ip link set dev vb up && ip addr add 10.254.254.254/24 dev vb && "
             "ip link add name bd0 type dummy && ip link set dev bd0 up")
    yield guest


def _receive(guest: Guest, args: str, lanagen: str = "") -> list[int]:
    """Start `lanabench-recv -n N ARGS`, send exactly N frames with lanagen once it is
    ready, return its "packets bytes ns drops"."""
    guest.sh(f"rm -f {READY} {OUT} {OUT}.err; "
             f"( {RECV} -n {N} -r {READY} {args} 0 120 > {OUT} 2> {OUT}.err < /dev/null & )")
    guest.wait_for(f"[ -e {READY} ]", 60, f"the receiver `{args}` to be ready", f"{OUT}.err")
    guest.sh(f"modprobe lanagen dev=vb len=60 count={N} {lanagen}")
    try:
        guest.wait_for(f"[ -s {OUT} ]", 120, f"the receiver `{args}` to count {N} frames",
                       f"{OUT}.err")
        sent = int(guest.sh("cat /sys/module/lanagen/parameters/sent"))
    finally:
        guest.sh("rmmod lanagen")
    assert sent == N
    return [int(x) for x in guest.sh(f"cat {OUT}").split()]


def _local(guest: Guest) -> str:
    """lanagen's parameters that address its frames to vb's UDP port 9."""
    mac = guest.sh("cat /sys/class/net/vb/address").strip()
    return f"dst_mac={mac} dst_ip=10.254.254.254 dst_port=9"


def _xdp_attached(guest: Guest, dev: str = "vb") -> bool:
    return "xdp" in guest.sh(f"ip link show dev {dev}")


@pytest.mark.parametrize("mode", ["udp", "mmsg"])
def test_udp_receivers_get_every_datagram(receivers: Guest, mode: str) -> None:
    packets, size, ns, drops = _receive(receivers, f"{mode} 9", _local(receivers))
    # 60-byte frames: 14 Ethernet + 20 IPv4 + 8 UDP + 18 bytes of payload
    assert (packets, size, drops) == (N, N * 18, 0)
    assert ns > 0
    receivers.vm.check_console()


def test_lanagen_default_frames_do_not_reach_a_udp_socket(receivers: Guest) -> None:
    """Without dst_mac the frames go to a foreign MAC (the Linux points): ip_rcv drops them."""
    receivers.sh(f"rm -f {READY} {OUT}; ( {RECV} -r {READY} udp 9 0 0.1 > {OUT} "
                 "2>&1 < /dev/null & )")
    receivers.wait_for(f"[ -e {READY} ]", 60, "the UDP receiver to be ready")
    receivers.sh(f"modprobe lanagen dev=vb len=60 count={N}")
    try:
        receivers.wait_for(f"[ $(cat /sys/module/lanagen/parameters/sent) -eq {N} ]", 60,
                           "lanagen to send its frames")
    finally:
        receivers.sh("rmmod lanagen")
    assert not receivers.sh(f"cat {OUT}").strip()  # still waiting for a first datagram
    receivers.sh(f"kill $(pidof {RECV.rsplit('/', 1)[1]})")
    receivers.wait_for(f"! pidof {RECV.rsplit('/', 1)[1]}", 30, "the receiver to exit")
    bad = receivers.fails("modprobe lanagen dev=vb dst_mac=02:00:zz dst_ip=10.254.254.254")
    assert "Invalid argument" in bad.stderr, bad.stderr
    assert "not a MAC address" in receivers.sh("dmesg | tail -n 5")


def test_tpacket_v3_ring_gets_every_frame(receivers: Guest) -> None:
    packets, size, _ns, drops = _receive(receivers, "tpacket3 vb")
    assert (packets, size, drops) == (N, N * 60, 0)


def test_af_xdp_copy_mode_gets_every_frame_and_detaches(receivers: Guest) -> None:
    packets, size, _ns, drops = _receive(receivers, f"-o {OBJ} xdp vb")
    assert (packets, size, drops) == (N, N * 60, 0)
    # the program was attached through the receiver's bpf_link: gone with the process
    receivers.wait_for(f"! pidof {RECV.rsplit('/', 1)[1]}", 30, "the receiver to exit")
    assert not _xdp_attached(receivers)
    receivers.vm.check_console()


def test_af_xdp_receiver_killed_leaves_nothing_attached(receivers: Guest) -> None:
    receivers.sh(f"rm -f {READY}; ( {RECV} -r {READY} -o {OBJ} xdp vb 0 600 > /dev/null "
                 "2>&1 < /dev/null & )")
    receivers.wait_for(f"[ -e {READY} ]", 60, "the AF_XDP receiver to be ready")
    assert "xdpgeneric" in receivers.sh("ip link show dev vb")
    receivers.sh(f"kill -9 $(pidof {RECV.rsplit('/', 1)[1]})")
    receivers.wait_for("! ip link show dev vb | grep -q xdp", 30,
                       "the XDP program to go with its receiver")


@pytest.mark.parametrize(("args", "message", "dev"), [
    # a dummy device has no XDP in its driver: native mode cannot attach
    (f"-o {OBJ} xdp-native bd0", "attach in native (driver) mode", "bd0"),
    (f"-o {OBJ} xdp-native bd0", "use generic mode (xdp)", "bd0"),
    # veth has native XDP but no AF_XDP zero-copy
    (f"-o {OBJ} xdp-zerocopy vb", "zero-copy bind", "vb"),
    (f"-o {OBJ} xdp-zerocopy vb", "use copy mode (xdp)", "vb"),
    ("-o /tmp/tc_drop.bpf.o xdp vb", "has no program in section xdp", "vb"),
    ("-o /tmp/xdp_drop.bpf.o xdp vb", "has no XSKMAP named xsks_map", "vb"),
    ("-o /tmp/junk.bpf.o xdp vb", "cannot open the BPF object", "vb"),
    ("-o /tmp/unchecked.bpf.o xdp vb", "the kernel refused the BPF object", "vb"),
    ("-o /tmp/unchecked.bpf.o xdp vb", "invalid access to packet", "vb"),  # the verifier's
    (f"-o {OBJ} xdp nosuchdev", "no device nosuchdev", "vb"),
])
def test_af_xdp_bad_input_is_refused_with_nothing_attached(receivers: Guest, args: str,
                                                           message: str, dev: str) -> None:
    result = receivers.fails(f"{RECV} {args} 0 1")
    assert result.exit_code == 1, result
    assert message in result.stderr, result.stderr
    assert not _xdp_attached(receivers, dev)
    assert not receivers.sh("bpftool net show dev " + dev).count("xdp_xsk")
