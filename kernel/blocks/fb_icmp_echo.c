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
#include <lana/inet_addrs.h>

#define FB_ICMP_ECHO_TTL	64

enum fb_icmp_echo_stat {
	FB_ICMP_REQUESTS,
	FB_ICMP_REPLIES,
	FB_ICMP_MALFORMED,
	FB_ICMP_PASSED,
	FB_ICMP_DROPPED,
	FB_ICMP_NSTATS,
};

static const char * const fb_icmp_echo_stat_names[FB_ICMP_NSTATS] = {
	"requests", "replies", "malformed", "passed", "dropped",
};

struct fb_icmp_echo_priv {
	idp_t port[NUM_TYPES];
	struct lana_inet_addrs __rcu *addrs;
	atomic64_t stats[FB_ICMP_NSTATS];
};

static void fb_icmp_echo_count(struct fb_icmp_echo_priv *priv,
			       enum fb_icmp_echo_stat s)
{
	atomic64_inc(&priv->stats[s]);
}

static int fb_icmp_echo_pass(struct fb_icmp_echo_priv *priv,
			     struct sk_buff *skb, enum path_type dir)
{
	idp_t next = READ_ONCE(priv->port[dir]);

	if (next == IDP_UNKNOWN) {
		if (dir == TYPE_INGRESS)
			fb_icmp_echo_count(priv, FB_ICMP_DROPPED);
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	if (dir == TYPE_INGRESS)
		fb_icmp_echo_count(priv, FB_ICMP_PASSED);
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

static int fb_icmp_echo_drop(struct fb_icmp_echo_priv *priv,
			     struct sk_buff *skb, enum fb_icmp_echo_stat s)
{
	fb_icmp_echo_count(priv, s);
	kfree_skb(skb);
	return PPE_DROPPED;
}

/*
 * The IPv4 header checks.  On success *hlen and *tot_len are the header
 * and total lengths and the header is in the linear area.
 */
static bool fb_icmp_echo_ipv4_ok(struct sk_buff *skb, unsigned int *hlen,
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

static int fb_icmp_echo_netrx(const struct fblock *fb, struct sk_buff *skb,
			      enum path_type *dir)
{
	struct fb_icmp_echo_priv *priv = fb->priv;
	unsigned int hlen, tot_len, icmp_len;
	struct icmphdr *icmph;
	struct net_device *dev;
	struct ethhdr *eth;
	struct iphdr *iph;
	__be32 saddr;
	idp_t down;

	if (*dir != TYPE_INGRESS || !pskb_may_pull(skb, ETH_HLEN) ||
	    ((struct ethhdr *)skb->data)->h_proto != htons(ETH_P_IP))
		return fb_icmp_echo_pass(priv, skb, *dir);

	if (!fb_icmp_echo_ipv4_ok(skb, &hlen, &tot_len))
		return fb_icmp_echo_drop(priv, skb, FB_ICMP_MALFORMED);
	iph = (struct iphdr *)(skb->data + ETH_HLEN);
	if (iph->protocol != IPPROTO_ICMP || ip_is_fragment(iph) ||
	    !lana_inet_addrs_has(rcu_dereference(priv->addrs), iph->daddr))
		return fb_icmp_echo_pass(priv, skb, TYPE_INGRESS);

	icmp_len = tot_len - hlen;
	if (icmp_len < sizeof(struct icmphdr) ||
	    !pskb_may_pull(skb, ETH_HLEN + hlen + sizeof(struct icmphdr)))
		return fb_icmp_echo_drop(priv, skb, FB_ICMP_MALFORMED);
	icmph = (struct icmphdr *)(skb->data + ETH_HLEN + hlen);
	if (icmph->type != ICMP_ECHO)
		return fb_icmp_echo_pass(priv, skb, TYPE_INGRESS);
	if (csum_fold(skb_checksum(skb, ETH_HLEN + hlen, icmp_len, 0)))
		return fb_icmp_echo_drop(priv, skb, FB_ICMP_MALFORMED);

	fb_icmp_echo_count(priv, FB_ICMP_REQUESTS);
	iph = (struct iphdr *)(skb->data + ETH_HLEN);
	saddr = iph->saddr;
	dev = skb->dev;
	down = READ_ONCE(priv->port[TYPE_EGRESS]);
	/* no reply to broadcast or multicast senders, nor without a way down */
	if (down == IDP_UNKNOWN || !dev || dev->addr_len != ETH_ALEN ||
	    ipv4_is_multicast(saddr) || ipv4_is_lbcast(saddr) ||
	    ipv4_is_zeronet(saddr) ||
	    is_multicast_ether_addr(((struct ethhdr *)skb->data)->h_source) ||
	    pskb_trim(skb, ETH_HLEN + tot_len) ||
	    skb_ensure_writable(skb, ETH_HLEN + tot_len))
		return fb_icmp_echo_drop(priv, skb, FB_ICMP_DROPPED);

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

	skb->ip_summed = CHECKSUM_NONE;
	skb->pkt_type = PACKET_OUTGOING;
	skb_reset_mac_header(skb);
	skb_set_network_header(skb, ETH_HLEN);

	fb_icmp_echo_count(priv, FB_ICMP_REPLIES);
	*dir = TYPE_EGRESS;
	lana_skb_set_next(skb, down);
	return PPE_SUCCESS;
}

static int fb_icmp_echo_set_opt(struct fb_icmp_echo_priv *priv,
				const char *opt,
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
		for (i = 0; i < FB_ICMP_NSTATS; i++)
			atomic64_set(&priv->stats[i], 0);
		return 0;
	}
	NL_SET_ERR_MSG_MOD(extack,
			   "unknown option; icmp_echo knows ip=A.B.C.D[,...] and reset=1");
	return -ENOENT;
}

static int fb_icmp_echo_event(struct fblock *fb, unsigned long cmd, void *arg,
			      struct netlink_ext_ack *extack)
{
	struct fb_icmp_echo_priv *priv = fb->priv;
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
		return fb_icmp_echo_set_opt(priv, arg, extack);
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_icmp_echo_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	return 0;
}

static void fb_icmp_echo_destroy(struct fblock *fb)
{
	struct fb_icmp_echo_priv *priv = fb->priv;

	if (!priv)
		return;
	/* after a grace period: no packet path reads the list any more */
	kfree(rcu_dereference_protected(priv->addrs, 1));
	RCU_INIT_POINTER(priv->addrs, NULL);
}

static int fb_icmp_echo_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_icmp_echo_priv *priv = fb->priv;
	int i;

	rcu_read_lock();
	lana_inet_addrs_show(m, rcu_dereference(priv->addrs));
	rcu_read_unlock();
	for (i = 0; i < FB_ICMP_NSTATS; i++)
		seq_printf(m, "%s %lld\n", fb_icmp_echo_stat_names[i],
			   (long long)atomic64_read(&priv->stats[i]));
	return 0;
}

static struct fblock_factory fb_icmp_echo_factory = {
	.type		= "icmp_echo",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_icmp_echo_priv),
	.init		= fb_icmp_echo_init,
	.destroy	= fb_icmp_echo_destroy,
	.netrx		= fb_icmp_echo_netrx,
	.event		= fb_icmp_echo_event,
	.proc_show	= fb_icmp_echo_proc_show,
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
