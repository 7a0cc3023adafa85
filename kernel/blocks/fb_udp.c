// SPDX-License-Identifier: GPL-2.0
/*
 * fb_udp - UDP demultiplexing by destination port.
 *
 *   fbctl add u7 udp
 *   fbctl set u7 port=7                   (1..65535, or port=none)
 *   fbctl bind u7 ping0                   (on top of icmp_echo, arp, eth0)
 *   fbctl bind echo7 u7                   (the application: a PF_LANA socket)
 *   fbctl add u9 udp; fbctl set u9 port=9
 *   fbctl bind u9 u7                      (the next link of the chain)
 *
 * A block claims one UDP port.  An ingress IPv4/UDP datagram to that port
 * goes up to the block bound on top (the application), trimmed to the IPv4
 * total length.  Everything else (other ports, other protocols, fragments,
 * non-IPv4 frames) goes to the next link: another udp block bound on top
 * of this one.  So a chain of udp blocks, each bound on top of the one
 * before, demultiplexes several ports; the last link drops what nobody
 * claimed.  Which of the two ingress ports a binding takes is decided by
 * the type of the block bound on top: a udp block is the next link, any
 * other block is the application.
 *
 * IPv4 packets are checked as an IP input would (lana/ipv4.h); a UDP
 * packet also needs its 8-byte header, a UDP length of at least 8 and not
 * beyond the IPv4 payload, and, when it is for our port, a correct
 * checksum (0: none; not checked when the device or a local sender's
 * offload vouches for it).  A packet that fails is malformed and dropped,
 * whoever it is for.  Egress packets from above pass down unchanged.
 *
 * /proc/net/lana/fblock/<name>: "port N" (or "port none"), then "key count"
 * lines: matched (datagrams for our port), other (not for our port),
 * malformed (failed the checks, dropped), dropped (matched with nothing on
 * top, other with no next link).  `fbctl set NAME reset=1` zeroes them.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/atomic.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <linux/udp.h>
#include <net/checksum.h>
#include <net/ip.h>
#include <lana/lana.h>
#include <lana/ipv4.h>

enum fb_udp_stat {
	FB_UDP_MATCHED,
	FB_UDP_OTHER,
	FB_UDP_MALFORMED,
	FB_UDP_DROPPED,
	FB_UDP_NSTATS,
};

struct fb_udp_priv {
	idp_t port[NUM_TYPES];	/* ingress: the application; egress: below */
	idp_t next;		/* ingress: the next udp block of the chain */
	u16 udp_port;		/* host order; 0: none claimed */
	atomic64_t stats[FB_UDP_NSTATS];
};

static struct fblock_factory fb_udp_factory;

static int fb_udp_hand_on(struct fb_udp_priv *priv, struct sk_buff *skb,
			  idp_t next)
{
	if (next == IDP_UNKNOWN) {
		atomic64_inc(&priv->stats[FB_UDP_DROPPED]);
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

static int fb_udp_other(struct fb_udp_priv *priv, struct sk_buff *skb)
{
	atomic64_inc(&priv->stats[FB_UDP_OTHER]);
	return fb_udp_hand_on(priv, skb, READ_ONCE(priv->next));
}

static int fb_udp_malformed(struct fb_udp_priv *priv, struct sk_buff *skb)
{
	atomic64_inc(&priv->stats[FB_UDP_MALFORMED]);
	kfree_skb(skb);
	return PPE_DROPPED;
}

static int fb_udp_netrx(const struct fblock *fb, struct sk_buff *skb,
			enum path_type *dir)
{
	struct fb_udp_priv *priv = fb->priv;
	unsigned int hlen, tot_len, ulen;
	const struct iphdr *iph;
	const struct udphdr *uh;
	u16 claimed;

	if (*dir != TYPE_INGRESS) {
		idp_t down = READ_ONCE(priv->port[TYPE_EGRESS]);

		if (down == IDP_UNKNOWN) {
			kfree_skb(skb);
			return PPE_DROPPED;
		}
		lana_skb_set_next(skb, down);
		return PPE_SUCCESS;
	}

	if (!pskb_may_pull(skb, ETH_HLEN) ||
	    ((struct ethhdr *)skb->data)->h_proto != htons(ETH_P_IP))
		return fb_udp_other(priv, skb);
	if (!lana_ipv4_ok(skb, &hlen, &tot_len))
		return fb_udp_malformed(priv, skb);
	iph = (const struct iphdr *)(skb->data + ETH_HLEN);
	if (iph->protocol != IPPROTO_UDP || ip_is_fragment(iph))
		return fb_udp_other(priv, skb);

	if (tot_len - hlen < sizeof(struct udphdr) ||
	    !pskb_may_pull(skb, ETH_HLEN + hlen + sizeof(struct udphdr)))
		return fb_udp_malformed(priv, skb);
	iph = (const struct iphdr *)(skb->data + ETH_HLEN);
	uh = (const struct udphdr *)(skb->data + ETH_HLEN + hlen);
	ulen = ntohs(uh->len);
	if (ulen < sizeof(struct udphdr) || ulen > tot_len - hlen)
		return fb_udp_malformed(priv, skb);

	claimed = READ_ONCE(priv->udp_port);
	if (!claimed || uh->dest != htons(claimed))
		return fb_udp_other(priv, skb);
	/*
	 * CHECKSUM_PARTIAL: a local sender (a namespace or VM on the host)
	 * left the checksum to offload, the field holds only the pseudo
	 * header's sum; CHECKSUM_UNNECESSARY: the NIC checked it.
	 */
	if (uh->check && skb->ip_summed != CHECKSUM_PARTIAL &&
	    skb->ip_summed != CHECKSUM_UNNECESSARY &&
	    csum_tcpudp_magic(iph->saddr, iph->daddr, ulen, IPPROTO_UDP,
			      skb_checksum(skb, ETH_HLEN + hlen, ulen, 0)))
		return fb_udp_malformed(priv, skb);

	atomic64_inc(&priv->stats[FB_UDP_MATCHED]);
	/* the application gets the datagram without Ethernet padding */
	if (pskb_trim(skb, ETH_HLEN + tot_len)) {
		atomic64_inc(&priv->stats[FB_UDP_DROPPED]);
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	return fb_udp_hand_on(priv, skb, READ_ONCE(priv->port[TYPE_INGRESS]));
}

static int fb_udp_set_opt(struct fb_udp_priv *priv, const char *opt,
			  struct netlink_ext_ack *extack)
{
	const char *val = strchr(opt, '=');
	unsigned int port;
	bool reset;
	int i;

	if (val && val - opt == 4 && !strncmp(opt, "port", 4)) {
		val++;
		if (!strcmp(val, "none")) {
			WRITE_ONCE(priv->udp_port, 0);
			return 0;
		}
		if (kstrtouint(val, 10, &port) || port < 1 || port > 65535) {
			NL_SET_ERR_MSG_MOD(extack,
					   "bad port; use port=N with N a decimal number from 1 to 65535, or port=none");
			return -EINVAL;
		}
		WRITE_ONCE(priv->udp_port, port);
		return 0;
	}
	if (val && val - opt == 5 && !strncmp(opt, "reset", 5)) {
		if (kstrtobool(val + 1, &reset) || !reset) {
			NL_SET_ERR_MSG_MOD(extack, "bad value; use reset=1");
			return -EINVAL;
		}
		for (i = 0; i < FB_UDP_NSTATS; i++)
			atomic64_set(&priv->stats[i], 0);
		return 0;
	}
	NL_SET_ERR_MSG_MOD(extack,
			   "unknown option; udp knows port=N (1..65535, or none) and reset=1");
	return -ENOENT;
}

/* The ingress slot a block bound on top takes: udp blocks chain. */
static idp_t *fb_udp_ingress_slot(struct fb_udp_priv *priv, idp_t idp)
{
	struct fblock *up;
	bool chained;

	rcu_read_lock();
	up = lana_fblock_lookup_rcu(idp);
	chained = up && up->factory == &fb_udp_factory;
	rcu_read_unlock();
	return chained ? &priv->next : &priv->port[TYPE_INGRESS];
}

static int fb_udp_event(struct fblock *fb, unsigned long cmd, void *arg,
			struct netlink_ext_ack *extack)
{
	struct fb_udp_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;
	idp_t *slot;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
		if (msg->dir >= NUM_TYPES) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction");
			return -EINVAL;
		}
		if (msg->dir == TYPE_EGRESS)
			slot = &priv->port[TYPE_EGRESS];
		else
			slot = fb_udp_ingress_slot(priv, msg->idp);
		if (READ_ONCE(*slot) != IDP_UNKNOWN) {
			if (slot == &priv->next)
				NL_SET_ERR_MSG_MOD(extack,
						   "a udp block (the next link of the chain) is already bound on top; unbind it first");
			else if (slot == &priv->port[TYPE_INGRESS])
				NL_SET_ERR_MSG_MOD(extack,
						   "an application is already bound on top for this port; unbind it first");
			else
				NL_SET_ERR_MSG_MOD(extack,
						   "already bound on top of a block; unbind it first");
			return -EBUSY;
		}
		WRITE_ONCE(*slot, msg->idp);
		return 0;
	case FBLOCK_UNBIND_IDP:
		if (msg->dir == TYPE_EGRESS &&
		    READ_ONCE(priv->port[TYPE_EGRESS]) == msg->idp)
			slot = &priv->port[TYPE_EGRESS];
		else if (msg->dir == TYPE_INGRESS &&
			 READ_ONCE(priv->port[TYPE_INGRESS]) == msg->idp)
			slot = &priv->port[TYPE_INGRESS];
		else if (msg->dir == TYPE_INGRESS &&
			 READ_ONCE(priv->next) == msg->idp)
			slot = &priv->next;
		else {
			NL_SET_ERR_MSG_MOD(extack,
					   "not bound to that block in this direction");
			return -ENOENT;
		}
		WRITE_ONCE(*slot, IDP_UNKNOWN);
		return 0;
	case FBLOCK_SET_OPT:
		return fb_udp_set_opt(priv, arg, extack);
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_udp_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	return 0;
}

static void fb_udp_destroy(struct fblock *fb)
{
	/* nothing allocated */
}

static int fb_udp_proc_show(struct seq_file *m, struct fblock *fb)
{
	static const char * const names[FB_UDP_NSTATS] = {
		"matched", "other", "malformed", "dropped",
	};
	struct fb_udp_priv *priv = fb->priv;
	u16 port = READ_ONCE(priv->udp_port);
	int i;

	if (port)
		seq_printf(m, "port %u\n", port);
	else
		seq_puts(m, "port none\n");
	for (i = 0; i < FB_UDP_NSTATS; i++)
		seq_printf(m, "%s %lld\n", names[i],
			   (long long)atomic64_read(&priv->stats[i]));
	return 0;
}

static struct fblock_factory fb_udp_factory = {
	.type		= "udp",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_udp_priv),
	.init		= fb_udp_init,
	.destroy	= fb_udp_destroy,
	.netrx		= fb_udp_netrx,
	.event		= fb_udp_event,
	.proc_show	= fb_udp_proc_show,
};

static int __init fb_udp_module_init(void)
{
	return lana_register_fblock_type(&fb_udp_factory);
}

static void __exit fb_udp_module_exit(void)
{
	lana_unregister_fblock_type(&fb_udp_factory);
}

module_init(fb_udp_module_init);
module_exit(fb_udp_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA UDP port demultiplexing functional block");
MODULE_ALIAS("lana-fb-udp");
