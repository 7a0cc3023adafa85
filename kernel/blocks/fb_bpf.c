// SPDX-License-Identifier: GPL-2.0
/*
 * fb_bpf - classic BPF packet filter.
 *
 * Write a program into /proc/net/lana/fblock/<name>:
 *
 *   bpfc ipv4.bpf > /proc/net/lana/fblock/fb3       lines "{ 0x28, 0, 0, 0x0000000c },"
 *   tcpdump -ddd ip > /proc/net/lana/fblock/fb3     count line, then "code jt jf k"
 *
 * (also accepted: `bpfc -f tcpdump` without the count line, and the
 * comma-separated one-line form of `bpfc -f xt_bpf`; blank lines and lines
 * starting with '#' or ';' are ignored).  The kernel's classic BPF checker
 * validates the program; a malformed or rejected program fails the write
 * with -EINVAL, logs one line saying why, and the old program stays.
 *
 * Packets run through the program with skb->data at the Ethernet header,
 * so `ldh [12]` and `ldh #proto` both see the EtherType.  Verdict 0 drops
 * the packet; anything else forwards it to the port for its direction.
 * Without a program every packet passes.  Reading the file prints the
 * loaded program in bpfc form, so it can be written back as is.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/filter.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/skbuff.h>
#include <lana/lana.h>
#include <lana/cbpf.h>

struct fb_bpf_priv {
	idp_t port[NUM_TYPES];
	struct lana_cbpf_filter __rcu *filter;
	struct mutex load_lock;		/* serialises program swaps */
};

static int fb_bpf_netrx(const struct fblock *fb, struct sk_buff *skb,
			enum path_type *dir)
{
	struct fb_bpf_priv *priv = fb->priv;
	struct lana_cbpf_filter *filter = rcu_dereference(priv->filter);
	idp_t next = READ_ONCE(priv->port[*dir]);

	if (next == IDP_UNKNOWN ||
	    (filter && bpf_prog_run_save_cb(filter->prog, skb) == 0)) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

/* The parser and checker are shared with fb_classify (lana/cbpf.h). */
static ssize_t fb_bpf_proc_write(struct fblock *fb, const char *buf,
				 size_t len)
{
	struct fb_bpf_priv *priv = fb->priv;
	struct lana_cbpf_filter *filter;
	unsigned int insns;

	filter = lana_cbpf_load("bpf", fb->name, buf, len);
	if (IS_ERR(filter))
		return PTR_ERR(filter);
	insns = filter->len;
	/* Packets still running the old program finish before it goes. */
	lana_cbpf_swap(&priv->filter, filter, &priv->load_lock);
	pr_info("bpf %s: loaded %u-instruction program\n", fb->name, insns);
	return len;
}

static int fb_bpf_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_bpf_priv *priv = fb->priv;

	lana_cbpf_show(m, &priv->filter);
	return 0;
}

/* ---- control path ------------------------------------------------------ */

static int fb_bpf_event(struct fblock *fb, unsigned long cmd, void *arg,
			struct netlink_ext_ack *extack)
{
	struct fb_bpf_priv *priv = fb->priv;
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
		if (msg->dir >= NUM_TYPES) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction");
			return -EINVAL;
		}
		if (READ_ONCE(priv->port[msg->dir]) != msg->idp) {
			NL_SET_ERR_MSG_MOD(extack,
					   "not bound to that block in this direction");
			return -ENOENT;
		}
		WRITE_ONCE(priv->port[msg->dir], IDP_UNKNOWN);
		return 0;
	case FBLOCK_SET_OPT:
		NL_SET_ERR_MSG_MOD(extack,
				   "bpf has no options; write the program into /proc/net/lana/fblock/<name>");
		return -ENOENT;
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_bpf_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	struct fb_bpf_priv *priv = fb->priv;

	mutex_init(&priv->load_lock);
	RCU_INIT_POINTER(priv->filter, NULL);
	return 0;
}

static void fb_bpf_destroy(struct fblock *fb)
{
	struct fb_bpf_priv *priv = fb->priv;

	if (!priv)
		return;
	/* After a grace period: no packet can still run the program. */
	lana_cbpf_free(rcu_dereference_protected(priv->filter, 1));
	RCU_INIT_POINTER(priv->filter, NULL);
	mutex_destroy(&priv->load_lock);
}

static struct fblock_factory fb_bpf_factory = {
	.type		= "bpf",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_bpf_priv),
	.init		= fb_bpf_init,
	.destroy	= fb_bpf_destroy,
	.netrx		= fb_bpf_netrx,
	.event		= fb_bpf_event,
	.proc_show	= fb_bpf_proc_show,
	.proc_write	= fb_bpf_proc_write,
};

static int __init fb_bpf_module_init(void)
{
	return lana_register_fblock_type(&fb_bpf_factory);
}

static void __exit fb_bpf_module_exit(void)
{
	lana_unregister_fblock_type(&fb_bpf_factory);
}

module_init(fb_bpf_module_init);
module_exit(fb_bpf_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA classic BPF filter functional block");
MODULE_ALIAS("lana-fb-bpf");
