/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the protocol blocks that answer for IPv4 addresses (fb_arp,
 * fb_icmp_echo) share besides their packet logic: one port per direction,
 * the address list (inet_addrs.h), the same five counts, and the same
 * settings (ip=A[,B...]|none, reset=1), bind/unbind, teardown and proc file.
 * A block's priv is a struct lana_responder; its netrx decides what to
 * answer and uses lana_responder_pass/drop for everything else.
 */
#ifndef _LANA_RESPONDER_H
#define _LANA_RESPONDER_H

#include <linux/atomic.h>
#include <linux/kernel.h>
#include <linux/skbuff.h>
#include <lana/lana.h>
#include <lana/inet_addrs.h>

enum lana_responder_stat {
	LANA_RSP_REQUESTS,	/* requests for our addresses */
	LANA_RSP_REPLIES,	/* replies sent down */
	LANA_RSP_MALFORMED,	/* failed the block's checks, dropped */
	LANA_RSP_PASSED,	/* handed up */
	LANA_RSP_DROPPED,	/* nothing on top, or a request not answerable */
	LANA_RSP_NSTATS,
};

struct lana_responder {
	idp_t port[NUM_TYPES];
	struct lana_inet_addrs __rcu *addrs;
	atomic64_t stats[LANA_RSP_NSTATS];
};

static inline void lana_responder_count(struct lana_responder *rsp,
					enum lana_responder_stat s)
{
	atomic64_inc(&rsp->stats[s]);
}

/* Hand the packet on to the port for dir, or drop it when none is bound. */
static inline int lana_responder_pass(struct lana_responder *rsp,
				      struct sk_buff *skb, enum path_type dir)
{
	idp_t next = READ_ONCE(rsp->port[dir]);

	if (next == IDP_UNKNOWN) {
		if (dir == TYPE_INGRESS)
			lana_responder_count(rsp, LANA_RSP_DROPPED);
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	if (dir == TYPE_INGRESS)
		lana_responder_count(rsp, LANA_RSP_PASSED);
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

static inline int lana_responder_drop(struct lana_responder *rsp,
				      struct sk_buff *skb,
				      enum lana_responder_stat s)
{
	lana_responder_count(rsp, s);
	kfree_skb(skb);
	return PPE_DROPPED;
}

/* Turn the answer in skb around: it goes down as egress. */
static inline int lana_responder_reply(struct lana_responder *rsp,
				       struct sk_buff *skb, idp_t down,
				       enum path_type *dir)
{
	skb->ip_summed = CHECKSUM_NONE;
	skb->pkt_type = PACKET_OUTGOING;
	lana_responder_count(rsp, LANA_RSP_REPLIES);
	*dir = TYPE_EGRESS;
	lana_skb_set_next(skb, down);
	return PPE_SUCCESS;
}

static inline int lana_responder_set_opt(struct lana_responder *rsp,
					 const char *opt,
					 struct netlink_ext_ack *extack)
{
	const char *val = strchr(opt, '=');
	bool reset;
	int i;

	if (val && val - opt == 2 && !strncmp(opt, "ip", 2))
		return lana_inet_addrs_set(&rsp->addrs, val + 1, extack);
	if (val && val - opt == 5 && !strncmp(opt, "reset", 5)) {
		if (kstrtobool(val + 1, &reset) || !reset) {
			NL_SET_ERR_MSG_MOD(extack, "bad value; use reset=1");
			return -EINVAL;
		}
		for (i = 0; i < LANA_RSP_NSTATS; i++)
			atomic64_set(&rsp->stats[i], 0);
		return 0;
	}
	NL_SET_ERR_MSG_MOD(extack,
			   "unknown option; this block knows ip=A.B.C.D[,...] and reset=1");
	return -ENOENT;
}

static inline int lana_responder_event(struct fblock *fb, unsigned long cmd,
				       void *arg,
				       struct netlink_ext_ack *extack)
{
	struct lana_responder *rsp = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
		if (msg->dir >= NUM_TYPES) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction");
			return -EINVAL;
		}
		if (READ_ONCE(rsp->port[msg->dir]) != IDP_UNKNOWN) {
			NL_SET_ERR_MSG_MOD(extack,
					   "port for this direction already bound; unbind it first");
			return -EBUSY;
		}
		WRITE_ONCE(rsp->port[msg->dir], msg->idp);
		return 0;
	case FBLOCK_UNBIND_IDP:
		if (msg->dir >= NUM_TYPES ||
		    READ_ONCE(rsp->port[msg->dir]) != msg->idp) {
			NL_SET_ERR_MSG_MOD(extack,
					   "not bound to that block in this direction");
			return -ENOENT;
		}
		WRITE_ONCE(rsp->port[msg->dir], IDP_UNKNOWN);
		return 0;
	case FBLOCK_SET_OPT:
		return lana_responder_set_opt(rsp, arg, extack);
	default:
		return -EOPNOTSUPP;
	}
}

static inline int lana_responder_init(struct fblock *fb,
				      struct netlink_ext_ack *extack)
{
	return 0;
}

static inline void lana_responder_destroy(struct fblock *fb)
{
	struct lana_responder *rsp = fb->priv;

	if (!rsp)
		return;
	/* after a grace period: no packet path reads the list any more */
	kfree(rcu_dereference_protected(rsp->addrs, 1));
	RCU_INIT_POINTER(rsp->addrs, NULL);
}

/* "ip A,B" then one "key count" line per count */
static inline int lana_responder_proc_show(struct seq_file *m,
					   struct fblock *fb)
{
	static const char * const names[LANA_RSP_NSTATS] = {
		"requests", "replies", "malformed", "passed", "dropped",
	};
	struct lana_responder *rsp = fb->priv;
	int i;

	rcu_read_lock();
	lana_inet_addrs_show(m, rcu_dereference(rsp->addrs));
	rcu_read_unlock();
	for (i = 0; i < LANA_RSP_NSTATS; i++)
		seq_printf(m, "%s %lld\n", names[i],
			   (long long)atomic64_read(&rsp->stats[i]));
	return 0;
}

/* The factory fields every responder block shares. */
#define LANA_RESPONDER_FACTORY(netrx_fn)			\
	.owner		= THIS_MODULE,				\
	.mode		= FB_MODE_DUAL,				\
	.priv_size	= sizeof(struct lana_responder),	\
	.init		= lana_responder_init,			\
	.destroy	= lana_responder_destroy,		\
	.netrx		= (netrx_fn),				\
	.event		= lana_responder_event,			\
	.proc_show	= lana_responder_proc_show

#endif /* _LANA_RESPONDER_H */
