/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The IPv4 header checks of an IP input, for blocks that read IPv4 packets
 * (fb_icmp_echo, fb_udp): version 4, header length at least 20 bytes and within the
 * packet, header checksum, total length at least the header and not beyond
 * the frame.  skb->data is at the Ethernet header.
 */
#ifndef _LANA_IPV4_H
#define _LANA_IPV4_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/skbuff.h>
#include <net/ip.h>

/*
 * On success *hlen and *tot_len are the header and total lengths and the
 * IPv4 header is in the linear area.
 */
static inline bool lana_ipv4_ok(struct sk_buff *skb, unsigned int *hlen,
				unsigned int *tot_len)
{
	const struct iphdr *iph;

	if (!pskb_may_pull(skb, ETH_HLEN + sizeof(struct iphdr)))
		return false;
	iph = (const struct iphdr *)(skb->data + ETH_HLEN);
	if (iph->version != 4 || iph->ihl < 5)
		return false;
	*hlen = iph->ihl * 4;
	if (!pskb_may_pull(skb, ETH_HLEN + *hlen))
		return false;
	iph = (const struct iphdr *)(skb->data + ETH_HLEN);
	if (ip_fast_csum(iph, iph->ihl))
		return false;
	*tot_len = ntohs(iph->tot_len);
	return *tot_len >= *hlen && *tot_len <= skb->len - ETH_HLEN;
}

#endif /* _LANA_IPV4_H */
