// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_cbpf - the bench's classic-BPF filter (lab/bench/udp_port9.bpf: IPv4 UDP to
 * destination port 9, any IPv4 header length) as XDP.  The kernel cannot load a
 * classic BPF program at the XDP hook (cBPF is translated to eBPF only for socket
 * filters, seccomp and the like), so this is the same test written again in
 * restricted C, instruction by instruction:
 *
 *   ldh [12]; jne #0x800, drop        EtherType IPv4
 *   ldb [23]; jne #17, drop           IPv4 protocol UDP
 *   ldh [20]; jset #0x1fff, drop      not a later fragment
 *   ldxb 4*([14]&0xf)                 X = IPv4 header length
 *   ldh [x + 16]; jne #9, drop        UDP destination port 9
 *
 * A cBPF load beyond the frame's end returns 0 (drop); here every load is
 * preceded by the bounds check the verifier demands, which drops as well.
 * What the filter passes is counted in a pinned map and dropped (LANA's
 * bpf-block point passes it to a counter that frees it); what it refuses is
 * dropped uncounted (the bpf block frees it).
 *
 *   ip link set dev vb xdpgeneric obj xdp_cbpf.bpf.o sec xdp
 *   cat /sys/fs/bpf/xdp/globals/cbpf_xdp_cnt
 */
#include "drops.bpf.h"

#define CBPF_UDP_PORT 9

LANA_DROPS_MAP(cbpf_xdp_cnt);

SEC("xdp")
int xdp_cbpf(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	unsigned char *l4;
	__u32 x;

	if (data + 24 > end)			/* ldb [23] is the farthest fixed load */
		return XDP_DROP;
	if (data[12] != 0x08 || data[13] != 0x00)
		return XDP_DROP;
	if (data[23] != 17)
		return XDP_DROP;
	if ((data[20] & 0x1f) || data[21])
		return XDP_DROP;
	x = (data[14] & 0xf) * 4;
	l4 = data + 14 + x;
	if (l4 + 4 > end)
		return XDP_DROP;
	if (((l4[2] << 8) | l4[3]) != CBPF_UDP_PORT)
		return XDP_DROP;
	lana_count_drop(&cbpf_xdp_cnt);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
