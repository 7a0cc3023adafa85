// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_xsk - hand every frame to the AF_XDP socket of its receive queue.
 *
 * Loaded by lab/bench/receivers.c (libbpf, statically linked): the receiver
 * opens its AF_XDP socket, stores its fd in xsks_map at its queue id, and
 * attaches this program to the device through a bpf_link, so the program
 * goes away with the receiver.  A queue without a socket passes its frames
 * to the stack (the flags argument of bpf_redirect_map).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

SEC("xdp")
int xdp_xsk(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
