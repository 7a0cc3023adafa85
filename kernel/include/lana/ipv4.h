/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The IPv4 header checks of an IP input, for blocks that read IPv4 packets
 * (fb_icmp_echo, fb_udp, fb_ipv4): version 4, header length at least 20
 * bytes and within the packet, header checksum, total length at least the
 * header and not beyond the frame.  skb->data is at the Ethernet header.
 */
#ifndef _LANA_IPV4_H
#define _LANA_IPV4_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/skbuff.h>
#include <net/ip.h>

enum lana_ipv4_verdict {
	LANA_IPV4_OK = 0,
	LANA_IPV4_BAD_LENGTH,	/* no room for 20 bytes, or total length off */
	LANA_IPV4_BAD_VERSION,	/* version is not 4 */
	LANA_IPV4_BAD_IHL,	/* header length below 20 or beyond the frame */
	LANA_IPV4_BAD_CHECKSUM,	/* header checksum wrong */
};

/*
 * The checks of lana_ipv4_ok, saying which one failed first.  On
 * LANA_IPV4_OK *hlen and *tot_len are the header and total lengths and the
 * IPv4 header is in the linear area.
 */
static inline enum lana_ipv4_verdict
lana_ipv4_check(struct sk_buff *skb, unsigned int *hlen, unsigned int *tot_len)
{
	const struct iphdr *iph;

	if (!pskb_may_pull(skb, ETH_HLEN + sizeof(struct iphdr)))
		return LANA_IPV4_BAD_LENGTH;
	iph = (const struct iphdr *)(skb->data + ETH_HLEN);
	if (iph->version != 4)
		return LANA_IPV4_BAD_VERSION;
	if (iph->ihl < 5)
		return LANA_IPV4_BAD_IHL;
	*hlen = iph->ihl * 4;
	if (!pskb_may_pull(skb, ETH_HLEN + *hlen))
		return LANA_IPV4_BAD_IHL;
	iph = (const struct iphdr *)(skb->data + ETH_HLEN);
	if (ip_fast_csum(iph, iph->ihl))
		return LANA_IPV4_BAD_CHECKSUM;
	*tot_len = ntohs(iph->tot_len);
	if (*tot_len < *hlen || *tot_len > skb->len - ETH_HLEN)
		return LANA_IPV4_BAD_LENGTH;
	return LANA_IPV4_OK;
}

/*
 * On success *hlen and *tot_len are the header and total lengths and the
 * IPv4 header is in the linear area.
 */
static inline bool lana_ipv4_ok(struct sk_buff *skb, unsigned int *hlen,
				unsigned int *tot_len)
{
	return lana_ipv4_check(skb, hlen, tot_len) == LANA_IPV4_OK;
}

#endif /* _LANA_IPV4_H */
