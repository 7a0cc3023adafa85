// SPDX-License-Identifier: GPL-2.0
/*
 * fb_arp - answers ARP requests for its IPv4 addresses.
 *
 *   vlink ethernet hook eth0
 *   fbctl add arp0 arp
 *   fbctl set arp0 ip=10.0.0.50          (or ip=10.0.0.50,10.0.0.51; ip=none)
 *   fbctl bind arp0 eth0
 *
 * An Ethernet ARP request (hardware type 1, protocol 0x0800) whose target
 * is one of the block's addresses is turned into the reply in place and
 * sent back down as egress: the sender learns the MAC address of the
 * device the request came in on.  An ARP frame too short for an Ethernet/
 * IPv4 ARP packet, or with other address sizes, is counted as malformed
 * and dropped.  Every other frame (other EtherTypes, replies, requests for
 * other addresses) goes up to the block bound on top, or is dropped when
 * there is none.  Egress packets from above pass down unchanged.
 *
 * /proc/net/lana/fblock/<name>: the addresses, then one "key count" line
 * each: requests (for our addresses), replies (sent), malformed, passed
 * (handed up), dropped.  `fbctl set NAME reset=1` zeroes the counts.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/atomic.h>
#include <linux/etherdevice.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <lana/lana.h>
#include <lana/responder.h>

/* An Ethernet/IPv4 ARP packet: the fixed header and its four addresses. */
struct fb_arp_eth_ipv4 {
	struct arphdr hdr;
	u8 sha[ETH_ALEN];
	__be32 sip;
	u8 tha[ETH_ALEN];
	__be32 tip;
} __packed;

static int fb_arp_netrx(const struct fblock *fb, struct sk_buff *skb,
			enum path_type *dir)
{
	struct lana_responder *rsp = fb->priv;
	const unsigned int len = ETH_HLEN + sizeof(struct fb_arp_eth_ipv4);
	struct fb_arp_eth_ipv4 *arp;
	struct net_device *dev;
	struct ethhdr *eth;
	idp_t down;
	__be32 sip;

	if (*dir != TYPE_INGRESS || !pskb_may_pull(skb, ETH_HLEN) ||
	    ((struct ethhdr *)skb->data)->h_proto != htons(ETH_P_ARP))
		return lana_responder_pass(rsp, skb, *dir);

	if (!pskb_may_pull(skb, len))
		return lana_responder_drop(rsp, skb, LANA_RSP_MALFORMED);
	arp = (struct fb_arp_eth_ipv4 *)(skb->data + ETH_HLEN);
	if (arp->hdr.ar_hrd != htons(ARPHRD_ETHER) ||
	    arp->hdr.ar_pro != htons(ETH_P_IP) ||
	    arp->hdr.ar_hln != ETH_ALEN || arp->hdr.ar_pln != 4)
		return lana_responder_drop(rsp, skb, LANA_RSP_MALFORMED);
	if (arp->hdr.ar_op != htons(ARPOP_REQUEST) ||
	    !lana_inet_addrs_has(rcu_dereference(rsp->addrs), arp->tip))
		return lana_responder_pass(rsp, skb, TYPE_INGRESS);

	lana_responder_count(rsp, LANA_RSP_REQUESTS);
	dev = skb->dev;
	down = READ_ONCE(rsp->port[TYPE_EGRESS]);
	/* a reply needs a way down and our own MAC address */
	if (down == IDP_UNKNOWN || !dev || dev->addr_len != ETH_ALEN ||
	    is_multicast_ether_addr(arp->sha) || pskb_trim(skb, len) ||
	    skb_ensure_writable(skb, len))
		return lana_responder_drop(rsp, skb, LANA_RSP_DROPPED);

	eth = (struct ethhdr *)skb->data;
	arp = (struct fb_arp_eth_ipv4 *)(skb->data + ETH_HLEN);
	sip = arp->sip;
	arp->hdr.ar_op = htons(ARPOP_REPLY);
	ether_addr_copy(arp->tha, arp->sha);
	arp->sip = arp->tip;
	arp->tip = sip;
	ether_addr_copy(arp->sha, dev->dev_addr);
	ether_addr_copy(eth->h_dest, arp->tha);
	ether_addr_copy(eth->h_source, dev->dev_addr);
	return lana_responder_reply(rsp, skb, down, dir);
}

static struct fblock_factory fb_arp_factory = {
	.type		= "arp",
	LANA_RESPONDER_FACTORY(fb_arp_netrx),
};

static int __init fb_arp_module_init(void)
{
	return lana_register_fblock_type(&fb_arp_factory);
}

static void __exit fb_arp_module_exit(void)
{
	lana_unregister_fblock_type(&fb_arp_factory);
}

module_init(fb_arp_module_init);
module_exit(fb_arp_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA ARP responder functional block");
MODULE_ALIAS("lana-fb-arp");
