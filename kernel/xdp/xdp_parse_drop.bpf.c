// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_parse_drop - parse Ethernet, IPv4 and UDP with bounds checks, then drop
 * IPv4/UDP frames (counting them) and pass everything else: what LANA's 1-FB
 * chain does with the bench's frames (a block takes the frame, the chain's end
 * drops it), in restricted C at the XDP hook.
 *
 *   ip link set dev vb xdpgeneric obj xdp_parse_drop.bpf.o sec xdp
 *   cat /sys/fs/bpf/xdp/globals/xdp_parse_cnt
 */
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "drops.bpf.h"

LANA_DROPS_MAP(xdp_parse_cnt);

SEC("xdp")
int xdp_parse_drop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct udphdr *udph;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > end || iph->version != 4 || iph->ihl < 5)
		return XDP_PASS;
	if (iph->protocol != IPPROTO_UDP)
		return XDP_PASS;
	udph = (void *)iph + iph->ihl * 4;
	if ((void *)(udph + 1) > end)
		return XDP_PASS;
	if (bpf_ntohs(udph->len) < sizeof(*udph))
		return XDP_PASS;
	lana_count_drop(&xdp_parse_cnt);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
