// SPDX-License-Identifier: GPL-2.0
/*
 * filter.bpf.c: the XDP half of exercise 7, restricted C compiled with
 * clang -target bpf. Pass ARP and IPv4 UDP datagrams to destination port
 * UDP_PORT (see README: your parameters), drop everything else.
 *
 * Every read of the packet must be checked against data_end first, or the
 * kernel's verifier refuses the program when it is attached.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define UDP_PORT 5353	/* your variant's port */

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	/* TODO: ARP passes; IPv4 (struct iphdr after the Ethernet header) with
	 * protocol UDP (struct udphdr after the IPv4 header) and destination port
	 * UDP_PORT passes; everything else is dropped. */
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
