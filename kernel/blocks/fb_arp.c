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
#include <lana/inet_addrs.h>

enum fb_arp_stat {
	FB_ARP_REQUESTS,
	FB_ARP_REPLIES,
	FB_ARP_MALFORMED,
	FB_ARP_PASSED,
	FB_ARP_DROPPED,
	FB_ARP_NSTATS,
};

static const char * const fb_arp_stat_names[FB_ARP_NSTATS] = {
	"requests", "replies", "malformed", "passed", "dropped",
};

/* An Ethernet/IPv4 ARP packet: the fixed header and its four addresses. */
struct fb_arp_eth_ipv4 {
	struct arphdr hdr;
	u8 sha[ETH_ALEN];
	__be32 sip;
	u8 tha[ETH_ALEN];
	__be32 tip;
} __packed;

struct fb_arp_priv {
	idp_t port[NUM_TYPES];
	struct lana_inet_addrs __rcu *addrs;
	atomic64_t stats[FB_ARP_NSTATS];
};

static void fb_arp_count(struct fb_arp_priv *priv, enum fb_arp_stat s)
{
	atomic64_inc(&priv->stats[s]);
}

/* Hand the packet on to the port for dir, or drop it when none is bound. */
static int fb_arp_pass(struct fb_arp_priv *priv, struct sk_buff *skb,
		       enum path_type dir)
{
	idp_t next = READ_ONCE(priv->port[dir]);

	if (next == IDP_UNKNOWN) {
		if (dir == TYPE_INGRESS)
			fb_arp_count(priv, FB_ARP_DROPPED);
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	if (dir == TYPE_INGRESS)
		fb_arp_count(priv, FB_ARP_PASSED);
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

static int fb_arp_drop(struct fb_arp_priv *priv, struct sk_buff *skb,
		       enum fb_arp_stat s)
{
	fb_arp_count(priv, s);
	kfree_skb(skb);
	return PPE_DROPPED;
}

static int fb_arp_netrx(const struct fblock *fb, struct sk_buff *skb,
			enum path_type *dir)
{
	struct fb_arp_priv *priv = fb->priv;
	const unsigned int len = ETH_HLEN + sizeof(struct fb_arp_eth_ipv4);
	struct fb_arp_eth_ipv4 *arp;
	struct net_device *dev;
	struct ethhdr *eth;
	idp_t down;
	__be32 sip;

	if (*dir != TYPE_INGRESS || !pskb_may_pull(skb, ETH_HLEN) ||
	    ((struct ethhdr *)skb->data)->h_proto != htons(ETH_P_ARP))
		return fb_arp_pass(priv, skb, *dir);

	if (!pskb_may_pull(skb, len))
		return fb_arp_drop(priv, skb, FB_ARP_MALFORMED);
	arp = (struct fb_arp_eth_ipv4 *)(skb->data + ETH_HLEN);
	if (arp->hdr.ar_hrd != htons(ARPHRD_ETHER) ||
	    arp->hdr.ar_pro != htons(ETH_P_IP) ||
	    arp->hdr.ar_hln != ETH_ALEN || arp->hdr.ar_pln != 4)
		return fb_arp_drop(priv, skb, FB_ARP_MALFORMED);
	if (arp->hdr.ar_op != htons(ARPOP_REQUEST) ||
	    !lana_inet_addrs_has(rcu_dereference(priv->addrs), arp->tip))
		return fb_arp_pass(priv, skb, TYPE_INGRESS);

	fb_arp_count(priv, FB_ARP_REQUESTS);
	dev = skb->dev;
	down = READ_ONCE(priv->port[TYPE_EGRESS]);
	/* a reply needs a way down and our own MAC address */
	if (down == IDP_UNKNOWN || !dev || dev->addr_len != ETH_ALEN ||
	    is_multicast_ether_addr(arp->sha) || pskb_trim(skb, len) ||
	    skb_ensure_writable(skb, len))
		return fb_arp_drop(priv, skb, FB_ARP_DROPPED);

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
	skb->ip_summed = CHECKSUM_NONE;
	skb->pkt_type = PACKET_OUTGOING;

	fb_arp_count(priv, FB_ARP_REPLIES);
	*dir = TYPE_EGRESS;
	lana_skb_set_next(skb, down);
	return PPE_SUCCESS;
}

static int fb_arp_set_opt(struct fb_arp_priv *priv, const char *opt,
			  struct netlink_ext_ack *extack)
{
	const char *val = strchr(opt, '=');
	bool reset;
	int i;

	if (val && val - opt == 2 && !strncmp(opt, "ip", 2))
		return lana_inet_addrs_set(&priv->addrs, val + 1, extack);
	if (val && val - opt == 5 && !strncmp(opt, "reset", 5)) {
		if (kstrtobool(val + 1, &reset) || !reset) {
			NL_SET_ERR_MSG_MOD(extack, "bad value; use reset=1");
			return -EINVAL;
		}
		for (i = 0; i < FB_ARP_NSTATS; i++)
			atomic64_set(&priv->stats[i], 0);
		return 0;
	}
	NL_SET_ERR_MSG_MOD(extack,
			   "unknown option; arp knows ip=A.B.C.D[,...] and reset=1");
	return -ENOENT;
}

static int fb_arp_event(struct fblock *fb, unsigned long cmd, void *arg,
			struct netlink_ext_ack *extack)
{
	struct fb_arp_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
		if (msg->dir >= NUM_TYPES) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction");
			return -EINVAL;
		}
		if (READ_ONCE(priv->port[msg->dir]) != IDP_UNKNOWN) {
			NL_SET_ERR_MSG_MOD(extack,
					   "port for this direction already bound; unbind it first");
			return -EBUSY;
		}
		WRITE_ONCE(priv->port[msg->dir], msg->idp);
		return 0;
	case FBLOCK_UNBIND_IDP:
		if (msg->dir >= NUM_TYPES ||
		    READ_ONCE(priv->port[msg->dir]) != msg->idp) {
			NL_SET_ERR_MSG_MOD(extack,
					   "not bound to that block in this direction");
			return -ENOENT;
		}
		WRITE_ONCE(priv->port[msg->dir], IDP_UNKNOWN);
		return 0;
	case FBLOCK_SET_OPT:
		return fb_arp_set_opt(priv, arg, extack);
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_arp_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	return 0;
}

static void fb_arp_destroy(struct fblock *fb)
{
	struct fb_arp_priv *priv = fb->priv;

	if (!priv)
		return;
	/* after a grace period: no packet path reads the list any more */
	kfree(rcu_dereference_protected(priv->addrs, 1));
	RCU_INIT_POINTER(priv->addrs, NULL);
}

static int fb_arp_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_arp_priv *priv = fb->priv;
	int i;

	rcu_read_lock();
	lana_inet_addrs_show(m, rcu_dereference(priv->addrs));
	rcu_read_unlock();
	for (i = 0; i < FB_ARP_NSTATS; i++)
		seq_printf(m, "%s %lld\n", fb_arp_stat_names[i],
			   (long long)atomic64_read(&priv->stats[i]));
	return 0;
}

static struct fblock_factory fb_arp_factory = {
	.type		= "arp",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_arp_priv),
	.init		= fb_arp_init,
	.destroy	= fb_arp_destroy,
	.netrx		= fb_arp_netrx,
	.event		= fb_arp_event,
	.proc_show	= fb_arp_proc_show,
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
