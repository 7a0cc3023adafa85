// SPDX-License-Identifier: GPL-2.0
/*
 * fb_classify - a switch: a classic BPF program's verdict picks the block
 * bound on top that gets the frame.
 *
 *   fbctl add cl classify
 *   fbctl bind cl eth0
 *   fbctl bind cu cl; fbctl bind ci cl      (cu takes port 1, ci port 2)
 *   fbctl set cl port1=ci                   (ci to port 1, cu to port 2)
 *   bpfc prog.bpf > /proc/net/lana/fblock/cl
 *
 * Up to 8 blocks are bound on top, on ports 1..8: a bind takes the lowest
 * free port; `portK=NAME` moves the bound block NAME to port K (the block
 * on K, if any, takes NAME's old port).  The program is written into the
 * proc file as for fb_bpf (lana/cbpf.h: bpfc or tcpdump -ddd text, checked
 * by the kernel, old program kept on error) and runs with skb->data at the
 * Ethernet header.  Verdict 0 drops the frame (dropped); verdict K in 1..8
 * with a block on port K sends it there (counted for port K); any other
 * verdict, or a port with nothing bound, is counted as no_port and
 * dropped.  Without a program every frame gets verdict 1.  Egress packets
 * from above pass down unchanged (sent).
 *
 * /proc/net/lana/fblock/<name>: "portK NAME COUNT" for K = 1..8 (NAME none
 * when free), received, dropped, no_port, sent, then the program in bpfc
 * form (the "{" lines; `grep '^{'` gives text that can be written back).
 * `fbctl set NAME reset=1` zeroes the counts.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/atomic.h>
#include <linux/filter.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <lana/lana.h>
#include <lana/cbpf.h>

#define FB_CLASSIFY_PORTS	8

enum fb_classify_stat {
	FB_CL_RECEIVED,
	FB_CL_DROPPED,
	FB_CL_NO_PORT,
	FB_CL_SENT,
	FB_CL_NSTATS,
};

static const char * const fb_classify_stat_names[FB_CL_NSTATS] = {
	"received", "dropped", "no_port", "sent",
};

struct fb_classify_priv {
	idp_t down;				/* egress: the block below */
	idp_t port[FB_CLASSIFY_PORTS + 1];	/* 1..8; 0 unused */
	struct lana_cbpf_filter __rcu *filter;
	struct mutex load_lock;			/* serialises program swaps */
	atomic64_t stats[FB_CL_NSTATS];
	atomic64_t port_count[FB_CLASSIFY_PORTS + 1];
};

static int fb_classify_netrx(const struct fblock *fb, struct sk_buff *skb,
			     enum path_type *dir)
{
	struct fb_classify_priv *priv = fb->priv;
	struct lana_cbpf_filter *filter;
	u32 verdict = 1;
	idp_t next;

	if (*dir != TYPE_INGRESS) {
		next = READ_ONCE(priv->down);
		if (next == IDP_UNKNOWN) {
			kfree_skb(skb);
			return PPE_DROPPED;
		}
		atomic64_inc(&priv->stats[FB_CL_SENT]);
		lana_skb_set_next(skb, next);
		return PPE_SUCCESS;
	}

	atomic64_inc(&priv->stats[FB_CL_RECEIVED]);
	filter = rcu_dereference(priv->filter);
	if (filter)
		verdict = bpf_prog_run_save_cb(filter->prog, skb);
	if (verdict == 0) {
		atomic64_inc(&priv->stats[FB_CL_DROPPED]);
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	next = verdict <= FB_CLASSIFY_PORTS ?
		READ_ONCE(priv->port[verdict]) : IDP_UNKNOWN;
	if (next == IDP_UNKNOWN) {
		atomic64_inc(&priv->stats[FB_CL_NO_PORT]);
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	atomic64_inc(&priv->port_count[verdict]);
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

static ssize_t fb_classify_proc_write(struct fblock *fb, const char *buf,
				      size_t len)
{
	struct fb_classify_priv *priv = fb->priv;
	struct lana_cbpf_filter *filter;
	unsigned int insns;

	filter = lana_cbpf_load("classify", fb->name, buf, len);
	if (IS_ERR(filter))
		return PTR_ERR(filter);
	insns = filter->len;
	lana_cbpf_swap(&priv->filter, filter, &priv->load_lock);
	pr_info("classify %s: loaded %u-instruction program\n", fb->name,
		insns);
	return len;
}

/* The name of the instance at idp, or "none"; caller holds rcu_read_lock. */
static const char *fb_classify_name(idp_t idp)
{
	struct fblock *fb;

	if (idp == IDP_UNKNOWN)
		return "none";
	fb = lana_fblock_lookup_rcu(idp);
	return fb ? fb->name : "none";
}

static int fb_classify_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_classify_priv *priv = fb->priv;
	int i;

	rcu_read_lock();
	for (i = 1; i <= FB_CLASSIFY_PORTS; i++)
		seq_printf(m, "port%d %s %lld\n", i,
			   fb_classify_name(READ_ONCE(priv->port[i])),
			   (long long)atomic64_read(&priv->port_count[i]));
	rcu_read_unlock();
	for (i = 0; i < FB_CL_NSTATS; i++)
		seq_printf(m, "%s %lld\n", fb_classify_stat_names[i],
			   (long long)atomic64_read(&priv->stats[i]));
	lana_cbpf_show(m, &priv->filter);
	return 0;
}

/* ---- control path ------------------------------------------------------ */

/* The port (1..8) of the bound block called name, or 0. */
static int fb_classify_port_of(struct fb_classify_priv *priv, const char *name)
{
	struct fblock *up;
	int i, found = 0;

	rcu_read_lock();
	for (i = 1; i <= FB_CLASSIFY_PORTS && !found; i++) {
		idp_t idp = READ_ONCE(priv->port[i]);

		if (idp == IDP_UNKNOWN)
			continue;
		up = lana_fblock_lookup_rcu(idp);
		if (up && !strcmp(up->name, name))
			found = i;
	}
	rcu_read_unlock();
	return found;
}

/* "portK=NAME": key is "portK" (klen chars), val NAME */
static int fb_classify_set_port(struct fb_classify_priv *priv,
				const char *key, size_t klen, const char *val,
				struct netlink_ext_ack *extack)
{
	int k, from;
	idp_t moved;

	if (klen != 5 || key[4] < '1' || key[4] > '0' + FB_CLASSIFY_PORTS) {
		NL_SET_ERR_MSG_MOD(extack,
				   "bad port number; use portK=NAME with K from 1 to 8");
		return -EINVAL;
	}
	k = key[4] - '0';
	from = fb_classify_port_of(priv, val);
	if (!from) {
		NL_SET_ERR_MSG_MOD(extack,
				   "no block of that name is bound on top of this one; bind it first (fbctl bind NAME <this block>)");
		return -EINVAL;
	}
	if (from == k)
		return 0;
	/* swap: a frame in flight may see the moved block on both ports */
	moved = READ_ONCE(priv->port[from]);
	WRITE_ONCE(priv->port[from], READ_ONCE(priv->port[k]));
	WRITE_ONCE(priv->port[k], moved);
	return 0;
}

static int fb_classify_set_opt(struct fb_classify_priv *priv, const char *opt,
			       struct netlink_ext_ack *extack)
{
	const char *val = strchr(opt, '=');
	size_t klen = val ? val - opt : 0;
	bool reset;
	int i;

	if (val && klen >= 4 && !strncmp(opt, "port", 4))
		return fb_classify_set_port(priv, opt, klen, val + 1, extack);
	if (val && klen == 5 && !strncmp(opt, "reset", 5)) {
		if (kstrtobool(val + 1, &reset) || !reset) {
			NL_SET_ERR_MSG_MOD(extack, "bad value; use reset=1");
			return -EINVAL;
		}
		for (i = 0; i < FB_CL_NSTATS; i++)
			atomic64_set(&priv->stats[i], 0);
		for (i = 0; i <= FB_CLASSIFY_PORTS; i++)
			atomic64_set(&priv->port_count[i], 0);
		return 0;
	}
	NL_SET_ERR_MSG_MOD(extack,
			   "unknown option; classify knows portK=NAME (K 1..8) and reset=1; write the program into /proc/net/lana/fblock/<name>");
	return -ENOENT;
}

static int fb_classify_bind(struct fb_classify_priv *priv,
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
	for (i = 1; i <= FB_CLASSIFY_PORTS; i++) {
		if (READ_ONCE(priv->port[i]) == msg->idp) {
			NL_SET_ERR_MSG_MOD(extack, "that block is already bound on top");
			return -EEXIST;
		}
	}
	for (i = 1; i <= FB_CLASSIFY_PORTS; i++) {
		if (READ_ONCE(priv->port[i]) == IDP_UNKNOWN) {
			WRITE_ONCE(priv->port[i], msg->idp);
			return 0;
		}
	}
	NL_SET_ERR_MSG_MOD(extack,
			   "all 8 ports on top are bound; unbind a block first");
	return -EBUSY;
}

static int fb_classify_unbind(struct fb_classify_priv *priv,
			      const struct fblock_bind_msg *msg,
			      struct netlink_ext_ack *extack)
{
	int i;

	if (msg->dir == TYPE_EGRESS) {
		if (READ_ONCE(priv->down) == msg->idp) {
			WRITE_ONCE(priv->down, IDP_UNKNOWN);
			return 0;
		}
	} else {
		for (i = 1; i <= FB_CLASSIFY_PORTS; i++) {
			if (READ_ONCE(priv->port[i]) == msg->idp) {
				WRITE_ONCE(priv->port[i], IDP_UNKNOWN);
				return 0;
			}
		}
	}
	NL_SET_ERR_MSG_MOD(extack, "not bound to that block in this direction");
	return -ENOENT;
}

static int fb_classify_event(struct fblock *fb, unsigned long cmd, void *arg,
			     struct netlink_ext_ack *extack)
{
	struct fb_classify_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
	case FBLOCK_UNBIND_IDP:
		if (msg->dir >= NUM_TYPES || msg->idp == IDP_UNKNOWN) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction or IDP");
			return -EINVAL;
		}
		if (cmd == FBLOCK_BIND_IDP)
			return fb_classify_bind(priv, msg, extack);
		return fb_classify_unbind(priv, msg, extack);
	case FBLOCK_SET_OPT:
		return fb_classify_set_opt(priv, arg, extack);
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_classify_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	struct fb_classify_priv *priv = fb->priv;

	mutex_init(&priv->load_lock);
	RCU_INIT_POINTER(priv->filter, NULL);
	return 0;
}

static void fb_classify_destroy(struct fblock *fb)
{
	struct fb_classify_priv *priv = fb->priv;

	if (!priv)
		return;
	/* After a grace period: no packet can still run the program. */
	lana_cbpf_free(rcu_dereference_protected(priv->filter, 1));
	RCU_INIT_POINTER(priv->filter, NULL);
	mutex_destroy(&priv->load_lock);
}

static struct fblock_factory fb_classify_factory = {
	.type		= "classify",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_classify_priv),
	.init		= fb_classify_init,
	.destroy	= fb_classify_destroy,
	.netrx		= fb_classify_netrx,
	.event		= fb_classify_event,
	.proc_show	= fb_classify_proc_show,
	.proc_write	= fb_classify_proc_write,
};

static int __init fb_classify_module_init(void)
{
	return lana_register_fblock_type(&fb_classify_factory);
}

static void __exit fb_classify_module_exit(void)
{
	lana_unregister_fblock_type(&fb_classify_factory);
}

module_init(fb_classify_module_init);
module_exit(fb_classify_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA classifier functional block: a classic BPF verdict picks the upper port");
MODULE_ALIAS("lana-fb-classify");
