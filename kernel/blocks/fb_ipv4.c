// SPDX-License-Identifier: GPL-2.0
/*
 * fb_ipv4 - IPv4 input of a LANA-only host stack: header checks, the
 * destination check against the block's addresses, and demultiplexing by
 * IP protocol number to the blocks bound on top.
 *
 *   fbctl add ip0 ipv4
 *   fbctl set ip0 ip=10.0.0.50            (or ip=A,B...; ip=none)
 *   fbctl bind ip0 arp0                   (on top of arp, on eth0)
 *   fbctl bind ping0 ip0; fbctl set ip0 proto=1:ping0
 *   fbctl bind u7 ip0;    fbctl set ip0 proto=17:u7
 *   fbctl set ip0 default=NAME            (unmapped protocols; default=none)
 *
 * Up to 8 blocks can be bound on top (ingress ports, in bind order); a
 * protocol is mapped to one of them by name.  Unbinding a block removes the
 * mappings (and the default) that named it.
 *
 * Every ingress frame is counted as received and ends in exactly one of
 * these counts: not_ipv4 (another EtherType), bad_length (no room for a
 * 20-byte header, total length below the header or beyond the frame),
 * bad_version, bad_ihl (below 5 or beyond the frame), bad_checksum (header
 * checksum), not_for_us (destination not one of our addresses),
 * ttl_expired (not for us and TTL 0 or 1: it could not be forwarded
 * either; this block does not forward), fragment (for us, but a fragment:
 * no reassembly), no_upper (no mapping for the protocol and no default),
 * delivered (handed to the mapped upper, or the default; also counted per
 * protocol).  All but delivered are dropped.  Packets for us are delivered
 * whatever their TTL, as a host does.  Delivered packets go up unchanged
 * (skb->data at the Ethernet header, padding kept).
 *
 * Egress packets from above pass down unchanged (the uppers build complete
 * IPv4 headers, checksum included) and are counted as sent.
 *
 * /proc/net/lana/fblock/<name>: "ip A,B", "uppers NAME,..." (or none),
 * "default NAME" (or none), one "proto N NAME DELIVERED" line per mapped
 * protocol or protocol with deliveries (NAME none when unmapped), then
 * "key count" lines.  `fbctl set NAME reset=1` zeroes the counts.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/atomic.h>
#include <linux/ctype.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <net/ip.h>
#include <lana/lana.h>
#include <lana/ipv4.h>
#include <lana/inet_addrs.h>

#define FB_IPV4_UPPERS	8
#define FB_IPV4_PROTOS	256

enum fb_ipv4_stat {
	FB_IPV4_RECEIVED,
	FB_IPV4_DELIVERED,
	FB_IPV4_NOT_IPV4,
	FB_IPV4_BAD_LENGTH,
	FB_IPV4_BAD_VERSION,
	FB_IPV4_BAD_IHL,
	FB_IPV4_BAD_CHECKSUM,
	FB_IPV4_NOT_FOR_US,
	FB_IPV4_TTL_EXPIRED,
	FB_IPV4_FRAGMENT,
	FB_IPV4_NO_UPPER,
	FB_IPV4_SENT,
	FB_IPV4_NSTATS,
};

static const char * const fb_ipv4_stat_names[FB_IPV4_NSTATS] = {
	"received", "delivered", "not_ipv4", "bad_length", "bad_version",
	"bad_ihl", "bad_checksum", "not_for_us", "ttl_expired", "fragment",
	"no_upper", "sent",
};

struct fb_ipv4_priv {
	idp_t down;				/* egress: the block below */
	idp_t upper[FB_IPV4_UPPERS];		/* bound on top, bind order */
	idp_t proto[FB_IPV4_PROTOS];		/* protocol -> upper */
	idp_t deflt;				/* unmapped protocols */
	struct lana_inet_addrs __rcu *addrs;
	atomic64_t stats[FB_IPV4_NSTATS];
	atomic64_t delivered[FB_IPV4_PROTOS];
};

static int fb_ipv4_drop(struct fb_ipv4_priv *priv, struct sk_buff *skb,
			enum fb_ipv4_stat s)
{
	atomic64_inc(&priv->stats[s]);
	kfree_skb(skb);
	return PPE_DROPPED;
}

static const enum fb_ipv4_stat fb_ipv4_check_stat[] = {
	[LANA_IPV4_BAD_LENGTH]		= FB_IPV4_BAD_LENGTH,
	[LANA_IPV4_BAD_VERSION]		= FB_IPV4_BAD_VERSION,
	[LANA_IPV4_BAD_IHL]		= FB_IPV4_BAD_IHL,
	[LANA_IPV4_BAD_CHECKSUM]	= FB_IPV4_BAD_CHECKSUM,
};

static int fb_ipv4_netrx(const struct fblock *fb, struct sk_buff *skb,
			 enum path_type *dir)
{
	struct fb_ipv4_priv *priv = fb->priv;
	enum lana_ipv4_verdict verdict;
	unsigned int hlen, tot_len;
	const struct iphdr *iph;
	idp_t next;
	u8 proto;

	if (*dir != TYPE_INGRESS) {
		next = READ_ONCE(priv->down);
		if (next == IDP_UNKNOWN) {
			kfree_skb(skb);
			return PPE_DROPPED;
		}
		atomic64_inc(&priv->stats[FB_IPV4_SENT]);
		lana_skb_set_next(skb, next);
		return PPE_SUCCESS;
	}

	atomic64_inc(&priv->stats[FB_IPV4_RECEIVED]);
	if (!pskb_may_pull(skb, ETH_HLEN) ||
	    ((struct ethhdr *)skb->data)->h_proto != htons(ETH_P_IP))
		return fb_ipv4_drop(priv, skb, FB_IPV4_NOT_IPV4);
	verdict = lana_ipv4_check(skb, &hlen, &tot_len);
	if (verdict != LANA_IPV4_OK)
		return fb_ipv4_drop(priv, skb, fb_ipv4_check_stat[verdict]);

	iph = (const struct iphdr *)(skb->data + ETH_HLEN);
	if (!lana_inet_addrs_has(rcu_dereference(priv->addrs), iph->daddr))
		return fb_ipv4_drop(priv, skb, iph->ttl <= 1 ?
				    FB_IPV4_TTL_EXPIRED : FB_IPV4_NOT_FOR_US);
	if (ip_is_fragment(iph))
		return fb_ipv4_drop(priv, skb, FB_IPV4_FRAGMENT);

	proto = iph->protocol;
	next = READ_ONCE(priv->proto[proto]);
	if (next == IDP_UNKNOWN)
		next = READ_ONCE(priv->deflt);
	if (next == IDP_UNKNOWN)
		return fb_ipv4_drop(priv, skb, FB_IPV4_NO_UPPER);
	atomic64_inc(&priv->stats[FB_IPV4_DELIVERED]);
	atomic64_inc(&priv->delivered[proto]);
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

/* ---- control path ------------------------------------------------------ */

/* The bound upper called name, or IDP_UNKNOWN. */
static idp_t fb_ipv4_upper_by_name(struct fb_ipv4_priv *priv,
				   const char *name)
{
	idp_t found = IDP_UNKNOWN;
	struct fblock *up;
	int i;

	rcu_read_lock();
	for (i = 0; i < FB_IPV4_UPPERS && found == IDP_UNKNOWN; i++) {
		idp_t idp = READ_ONCE(priv->upper[i]);

		if (idp == IDP_UNKNOWN)
			continue;
		up = lana_fblock_lookup_rcu(idp);
		if (up && !strcmp(up->name, name))
			found = idp;
	}
	rcu_read_unlock();
	return found;
}

/* "NAME" of a bound upper, or "none": the idp to store in *target. */
static int fb_ipv4_parse_upper(struct fb_ipv4_priv *priv, const char *name,
			       idp_t *target, struct netlink_ext_ack *extack)
{
	if (!strcmp(name, "none")) {
		*target = IDP_UNKNOWN;
		return 0;
	}
	*target = fb_ipv4_upper_by_name(priv, name);
	if (*target == IDP_UNKNOWN) {
		NL_SET_ERR_MSG_MOD(extack,
				   "no block of that name is bound on top of this one; bind it first (fbctl bind NAME <this block>), or use none");
		return -EINVAL;
	}
	return 0;
}

/* "N:NAME" or "N:none", N a decimal protocol number 0..255 */
static int fb_ipv4_set_proto(struct fb_ipv4_priv *priv, const char *val,
			     struct netlink_ext_ack *extack)
{
	const char *colon = strchr(val, ':');
	unsigned int proto = 0;
	const char *c;
	idp_t idp;
	int err;

	if (!colon || colon == val || colon - val > 3)
		goto bad;
	for (c = val; c < colon; c++) {
		if (!isdigit(*c))
			goto bad;
		proto = proto * 10 + (*c - '0');
	}
	if (proto >= FB_IPV4_PROTOS || !colon[1])
		goto bad;
	err = fb_ipv4_parse_upper(priv, colon + 1, &idp, extack);
	if (err)
		return err;
	WRITE_ONCE(priv->proto[proto], idp);
	return 0;
bad:
	NL_SET_ERR_MSG_MOD(extack,
			   "bad protocol mapping; use proto=N:NAME with N a decimal IP protocol number 0..255 (1 ICMP, 6 TCP, 17 UDP) and NAME a block bound on top, or proto=N:none");
	return -EINVAL;
}

static int fb_ipv4_set_opt(struct fb_ipv4_priv *priv, const char *opt,
			   struct netlink_ext_ack *extack)
{
	const char *val = strchr(opt, '=');
	size_t klen = val ? val - opt : 0;
	bool reset;
	idp_t idp;
	int i, err;

	if (!val)
		goto unknown;
	val++;
	if (klen == 2 && !strncmp(opt, "ip", 2))
		return lana_inet_addrs_set(&priv->addrs, val, extack);
	if (klen == 5 && !strncmp(opt, "proto", 5))
		return fb_ipv4_set_proto(priv, val, extack);
	if (klen == 7 && !strncmp(opt, "default", 7)) {
		if (!*val) {
			NL_SET_ERR_MSG_MOD(extack,
					   "bad default; use default=NAME (a block bound on top) or default=none");
			return -EINVAL;
		}
		err = fb_ipv4_parse_upper(priv, val, &idp, extack);
		if (err)
			return err;
		WRITE_ONCE(priv->deflt, idp);
		return 0;
	}
	if (klen == 5 && !strncmp(opt, "reset", 5)) {
		if (kstrtobool(val, &reset) || !reset) {
			NL_SET_ERR_MSG_MOD(extack, "bad value; use reset=1");
			return -EINVAL;
		}
		for (i = 0; i < FB_IPV4_NSTATS; i++)
			atomic64_set(&priv->stats[i], 0);
		for (i = 0; i < FB_IPV4_PROTOS; i++)
			atomic64_set(&priv->delivered[i], 0);
		return 0;
	}
unknown:
	NL_SET_ERR_MSG_MOD(extack,
			   "unknown option; ipv4 knows ip=A.B.C.D[,...], proto=N:NAME, default=NAME (none to clear either) and reset=1");
	return -ENOENT;
}

static int fb_ipv4_bind(struct fb_ipv4_priv *priv,
			const struct fblock_bind_msg *msg,
			struct netlink_ext_ack *extack)
{
	int i;

	if (msg->dir == TYPE_EGRESS) {
		if (READ_ONCE(priv->down) != IDP_UNKNOWN) {
			NL_SET_ERR_MSG_MOD(extack,
					   "already bound on top of a block; unbind it first");
			return -EBUSY;
		}
		WRITE_ONCE(priv->down, msg->idp);
		return 0;
	}
	for (i = 0; i < FB_IPV4_UPPERS; i++) {
		if (READ_ONCE(priv->upper[i]) == msg->idp) {
			NL_SET_ERR_MSG_MOD(extack, "that block is already bound on top");
			return -EEXIST;
		}
	}
	for (i = 0; i < FB_IPV4_UPPERS; i++) {
		if (READ_ONCE(priv->upper[i]) == IDP_UNKNOWN) {
			WRITE_ONCE(priv->upper[i], msg->idp);
			return 0;
		}
	}
	NL_SET_ERR_MSG_MOD(extack,
			   "all 8 ports on top are bound; unbind a block first");
	return -EBUSY;
}

static int fb_ipv4_unbind(struct fb_ipv4_priv *priv,
			  const struct fblock_bind_msg *msg,
			  struct netlink_ext_ack *extack)
{
	int i, p;

	if (msg->dir == TYPE_EGRESS) {
		if (READ_ONCE(priv->down) != msg->idp)
			goto none;
		WRITE_ONCE(priv->down, IDP_UNKNOWN);
		return 0;
	}
	for (i = 0; i < FB_IPV4_UPPERS; i++) {
		if (READ_ONCE(priv->upper[i]) != msg->idp)
			continue;
		/* the mappings first: no new packet picks the block up */
		for (p = 0; p < FB_IPV4_PROTOS; p++)
			if (READ_ONCE(priv->proto[p]) == msg->idp)
				WRITE_ONCE(priv->proto[p], IDP_UNKNOWN);
		if (READ_ONCE(priv->deflt) == msg->idp)
			WRITE_ONCE(priv->deflt, IDP_UNKNOWN);
		WRITE_ONCE(priv->upper[i], IDP_UNKNOWN);
		return 0;
	}
none:
	NL_SET_ERR_MSG_MOD(extack, "not bound to that block in this direction");
	return -ENOENT;
}

static int fb_ipv4_event(struct fblock *fb, unsigned long cmd, void *arg,
			 struct netlink_ext_ack *extack)
{
	struct fb_ipv4_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
	case FBLOCK_UNBIND_IDP:
		if (msg->dir >= NUM_TYPES || msg->idp == IDP_UNKNOWN) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction or IDP");
			return -EINVAL;
		}
		if (cmd == FBLOCK_BIND_IDP)
			return fb_ipv4_bind(priv, msg, extack);
		return fb_ipv4_unbind(priv, msg, extack);
	case FBLOCK_SET_OPT:
		return fb_ipv4_set_opt(priv, arg, extack);
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_ipv4_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	return 0;
}

static void fb_ipv4_destroy(struct fblock *fb)
{
	struct fb_ipv4_priv *priv = fb->priv;

	if (!priv)
		return;
	/* after a grace period: no packet path reads the list any more */
	kfree(rcu_dereference_protected(priv->addrs, 1));
	RCU_INIT_POINTER(priv->addrs, NULL);
}

/* The name of the instance at idp, or "none"; caller holds rcu_read_lock. */
static const char *fb_ipv4_name(idp_t idp)
{
	struct fblock *fb;

	if (idp == IDP_UNKNOWN)
		return "none";
	fb = lana_fblock_lookup_rcu(idp);
	return fb ? fb->name : "none";
}

static int fb_ipv4_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_ipv4_priv *priv = fb->priv;
	bool any = false;
	int i;

	rcu_read_lock();
	lana_inet_addrs_show(m, rcu_dereference(priv->addrs));
	seq_puts(m, "uppers ");
	for (i = 0; i < FB_IPV4_UPPERS; i++) {
		idp_t idp = READ_ONCE(priv->upper[i]);

		if (idp == IDP_UNKNOWN)
			continue;
		seq_printf(m, "%s%s", any ? "," : "", fb_ipv4_name(idp));
		any = true;
	}
	seq_printf(m, "%s\ndefault %s\n", any ? "" : "none",
		   fb_ipv4_name(READ_ONCE(priv->deflt)));
	for (i = 0; i < FB_IPV4_PROTOS; i++) {
		idp_t idp = READ_ONCE(priv->proto[i]);
		s64 n = atomic64_read(&priv->delivered[i]);

		if (idp != IDP_UNKNOWN || n)
			seq_printf(m, "proto %d %s %lld\n", i, fb_ipv4_name(idp),
				   (long long)n);
	}
	rcu_read_unlock();
	for (i = 0; i < FB_IPV4_NSTATS; i++)
		seq_printf(m, "%s %lld\n", fb_ipv4_stat_names[i],
			   (long long)atomic64_read(&priv->stats[i]));
	return 0;
}

static struct fblock_factory fb_ipv4_factory = {
	.type		= "ipv4",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_ipv4_priv),
	.init		= fb_ipv4_init,
	.destroy	= fb_ipv4_destroy,
	.netrx		= fb_ipv4_netrx,
	.event		= fb_ipv4_event,
	.proc_show	= fb_ipv4_proc_show,
};

static int __init fb_ipv4_module_init(void)
{
	return lana_register_fblock_type(&fb_ipv4_factory);
}

static void __exit fb_ipv4_module_exit(void)
{
	lana_unregister_fblock_type(&fb_ipv4_factory);
}

module_init(fb_ipv4_module_init);
module_exit(fb_ipv4_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA IPv4 input functional block: checks, demultiplexing by protocol");
MODULE_ALIAS("lana-fb-ipv4");
