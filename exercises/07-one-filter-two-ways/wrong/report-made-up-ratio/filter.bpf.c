// SPDX-License-Identifier: GPL-2.0
/*
 * filter.bpf.c - exercise 7, the XDP half: pass ARP and IPv4 UDP to destination port
 * 5353 (the default variant), drop everything else.
 *
 * XDP runs before the kernel takes an 802.1Q tag off, so a tagged frame shows 0x8100
 * at offset 12 here: it is neither ARP nor IPv4, and is dropped.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define UDP_PORT 5353

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct udphdr *udph;

	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_DROP;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > end || iph->version != 4 || iph->ihl < 5)
		return XDP_DROP;
	if (iph->protocol != IPPROTO_UDP)
		return XDP_DROP;
	if (iph->frag_off & bpf_htons(0x1fff))	/* only first fragments carry ports */
		return XDP_DROP;
	udph = (void *)iph + iph->ihl * 4;	/* IPv4 options: the header may be longer */
	if ((void *)(udph + 1) > end)
		return XDP_DROP;
	if (udph->dest != bpf_htons(UDP_PORT))
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
