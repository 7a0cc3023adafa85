// SPDX-License-Identifier: GPL-2.0
/*
 * fb_icmp_echo - answers ICMP echo requests (ping) for its IPv4 addresses.
 *
 *   fbctl add ping0 icmp_echo
 *   fbctl set ping0 ip=10.0.0.50          (or ip=10.0.0.50,10.0.0.51; ip=none)
 *   fbctl bind ping0 arp0                 (on top of an arp block, on eth0)
 *
 * Every IPv4 packet is checked first, as an IPv4 input would: version 4,
 * header length at least 20 bytes and within the packet, header checksum,
 * total length at least the header and not beyond the frame.  A packet
 * that fails is counted as malformed and dropped, whoever it is for.
 *
 * An unfragmented ICMP echo request (type 8) to one of the block's
 * addresses, with a correct ICMP checksum, from a unicast source, is
 * turned into the reply in place: Ethernet addresses swapped (the source
 * is the ingress device's MAC), IP addresses swapped, TTL 64, IP options
 * removed, ICMP type 0, both checksums computed afresh.  The identifier,
 * sequence number and data come back unchanged.  The reply goes down as
 * egress.  Every other packet goes up to the block bound on top, or is
 * dropped when there is none.  Egress packets from above pass down.
 *
 * /proc/net/lana/fblock/<name>: the addresses, then "key count" lines:
 * requests (echo requests for our addresses), replies (sent), malformed
 * (failed the checks, dropped), passed (handed up), dropped (nothing on
 * top, or a request that could not be answered).  `fbctl set NAME
 * reset=1` zeroes the counts.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/atomic.h>
#include <linux/etherdevice.h>
#include <linux/icmp.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <net/checksum.h>
#include <net/ip.h>
#include <lana/lana.h>
#include <lana/ipv4.h>
#include <lana/responder.h>

#define FB_ICMP_ECHO_TTL	64

static int fb_icmp_echo_netrx(const struct fblock *fb, struct sk_buff *skb,
			      enum path_type *dir)
{
	struct lana_responder *rsp = fb->priv;
	unsigned int hlen, tot_len, icmp_len;
	struct icmphdr *icmph;
	struct net_device *dev;
	struct ethhdr *eth;
	struct iphdr *iph;
	__be32 saddr;
	idp_t down;

	if (*dir != TYPE_INGRESS || !pskb_may_pull(skb, ETH_HLEN) ||
	    ((struct ethhdr *)skb->data)->h_proto != htons(ETH_P_IP))
		return lana_responder_pass(rsp, skb, *dir);

	if (!lana_ipv4_ok(skb, &hlen, &tot_len))
		return lana_responder_drop(rsp, skb, LANA_RSP_MALFORMED);
	iph = (struct iphdr *)(skb->data + ETH_HLEN);
	if (iph->protocol != IPPROTO_ICMP || ip_is_fragment(iph) ||
	    !lana_inet_addrs_has(rcu_dereference(rsp->addrs), iph->daddr))
		return lana_responder_pass(rsp, skb, TYPE_INGRESS);

	icmp_len = tot_len - hlen;
	if (icmp_len < sizeof(struct icmphdr) ||
	    !pskb_may_pull(skb, ETH_HLEN + hlen + sizeof(struct icmphdr)))
		return lana_responder_drop(rsp, skb, LANA_RSP_MALFORMED);
	icmph = (struct icmphdr *)(skb->data + ETH_HLEN + hlen);
	if (icmph->type != ICMP_ECHO)
		return lana_responder_pass(rsp, skb, TYPE_INGRESS);
	if (csum_fold(skb_checksum(skb, ETH_HLEN + hlen, icmp_len, 0)))
		return lana_responder_drop(rsp, skb, LANA_RSP_MALFORMED);

	lana_responder_count(rsp, LANA_RSP_REQUESTS);
	iph = (struct iphdr *)(skb->data + ETH_HLEN);
	saddr = iph->saddr;
	dev = skb->dev;
	down = READ_ONCE(rsp->port[TYPE_EGRESS]);
	/* no reply to broadcast or multicast senders, nor without a way down */
	if (down == IDP_UNKNOWN || !dev || dev->addr_len != ETH_ALEN ||
	    ipv4_is_multicast(saddr) || ipv4_is_lbcast(saddr) ||
	    ipv4_is_zeronet(saddr) ||
	    is_multicast_ether_addr(((struct ethhdr *)skb->data)->h_source) ||
	    pskb_trim(skb, ETH_HLEN + tot_len) ||
	    skb_ensure_writable(skb, ETH_HLEN + tot_len))
		return lana_responder_drop(rsp, skb, LANA_RSP_DROPPED);

	/* Drop IP options: move the Ethernet and base IP headers forward. */
	if (hlen > sizeof(struct iphdr)) {
		unsigned int optlen = hlen - sizeof(struct iphdr);

		memmove(skb->data + optlen, skb->data,
			ETH_HLEN + sizeof(struct iphdr));
		__skb_pull(skb, optlen);
		hlen = sizeof(struct iphdr);
		tot_len -= optlen;
	}

	eth = (struct ethhdr *)skb->data;
	ether_addr_copy(eth->h_dest, eth->h_source);
	ether_addr_copy(eth->h_source, dev->dev_addr);

	iph = (struct iphdr *)(skb->data + ETH_HLEN);
	iph->ihl = 5;
	iph->tot_len = htons(tot_len);
	iph->frag_off = 0;
	iph->ttl = FB_ICMP_ECHO_TTL;
	iph->saddr = iph->daddr;
	iph->daddr = saddr;
	ip_send_check(iph);

	icmph = (struct icmphdr *)(skb->data + ETH_HLEN + hlen);
	icmph->type = ICMP_ECHOREPLY;
	icmph->code = 0;
	icmph->checksum = 0;
	icmph->checksum = csum_fold(csum_partial(icmph, tot_len - hlen, 0));

	skb_reset_mac_header(skb);
	skb_set_network_header(skb, ETH_HLEN);
	return lana_responder_reply(rsp, skb, down, dir);
}

static struct fblock_factory fb_icmp_echo_factory = {
	.type		= "icmp_echo",
	LANA_RESPONDER_FACTORY(fb_icmp_echo_netrx),
};

static int __init fb_icmp_echo_module_init(void)
{
	return lana_register_fblock_type(&fb_icmp_echo_factory);
}

static void __exit fb_icmp_echo_module_exit(void)
{
	lana_unregister_fblock_type(&fb_icmp_echo_factory);
}

module_init(fb_icmp_echo_module_init);
module_exit(fb_icmp_echo_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA ICMP echo responder functional block");
MODULE_ALIAS("lana-fb-icmp_echo");
