// SPDX-License-Identifier: GPL-2.0
/*
 * fb_xconnect - a cross-connect: what arrives from one lower block leaves
 * through the other, like a cable patched between two ports.
 *
 *   vlink ethernet hook eth0
 *   vlink ethernet hook eth1
 *   fbctl add x xconnect
 *   fbctl bind x eth0         frames from eth0 leave through eth1,
 *   fbctl bind x eth1         and frames from eth1 through eth0
 *
 * It sits on top of exactly two blocks (two egress ports) and nothing sits
 * on top of it.  The engine tells it where a packet came from
 * (lana_skb_from), so it needs no per-packet lookups: the packet turns
 * around to egress and goes down the other port.  With one port bound,
 * packets are dropped.  The frames are not changed.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/skbuff.h>
#include <linux/netlink.h>
#include <linux/seq_file.h>
#include <lana/lana.h>

struct fb_xconnect_priv {
	idp_t side[2];	/* the two blocks we sit on (READ_ONCE/WRITE_ONCE) */
};

static int fb_xconnect_netrx(const struct fblock *fb, struct sk_buff *skb,
			     enum path_type *dir)
{
	struct fb_xconnect_priv *priv = fb->priv;
	idp_t from = lana_skb_from(skb);
	idp_t a = READ_ONCE(priv->side[0]);
	idp_t b = READ_ONCE(priv->side[1]);
	idp_t out = IDP_UNKNOWN;

	if (*dir == TYPE_INGRESS && a != IDP_UNKNOWN && b != IDP_UNKNOWN) {
		if (from == a)
			out = b;
		else if (from == b)
			out = a;
	}
	if (out == IDP_UNKNOWN) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	*dir = TYPE_EGRESS;
	lana_skb_set_next(skb, out);
	return PPE_SUCCESS;
}

static int fb_xconnect_bind(struct fb_xconnect_priv *priv,
			    const struct fblock_bind_msg *msg,
			    struct netlink_ext_ack *extack)
{
	int i;

	if (msg->dir != TYPE_EGRESS) {
		NL_SET_ERR_MSG_MOD(extack,
				   "xconnect is the top of a stack: nothing can be bound on top of it");
		return -EBUSY;
	}
	for (i = 0; i < 2; i++) {
		if (READ_ONCE(priv->side[i]) == IDP_UNKNOWN) {
			WRITE_ONCE(priv->side[i], msg->idp);
			return 0;
		}
	}
	NL_SET_ERR_MSG_MOD(extack, "xconnect already sits on two blocks");
	return -EBUSY;
}

static int fb_xconnect_unbind(struct fb_xconnect_priv *priv,
			      const struct fblock_bind_msg *msg,
			      struct netlink_ext_ack *extack)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (msg->dir == TYPE_EGRESS &&
		    READ_ONCE(priv->side[i]) == msg->idp) {
			WRITE_ONCE(priv->side[i], IDP_UNKNOWN);
			return 0;
		}
	}
	NL_SET_ERR_MSG_MOD(extack, "xconnect does not sit on that block");
	return -ENOENT;
}

static int fb_xconnect_event(struct fblock *fb, unsigned long cmd, void *arg,
			     struct netlink_ext_ack *extack)
{
	struct fb_xconnect_priv *priv = fb->priv;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
		return fb_xconnect_bind(priv, arg, extack);
	case FBLOCK_UNBIND_IDP:
		return fb_xconnect_unbind(priv, arg, extack);
	case FBLOCK_SET_OPT:
		NL_SET_ERR_MSG_MOD(extack, "xconnect has no options");
		return -ENOENT;
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_xconnect_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	return 0;
}

static void fb_xconnect_destroy(struct fblock *fb)
{
}

static int fb_xconnect_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_xconnect_priv *priv = fb->priv;

	seq_printf(m, "sides %u %u\n", READ_ONCE(priv->side[0]),
		   READ_ONCE(priv->side[1]));
	return 0;
}

static struct fblock_factory fb_xconnect_factory = {
	.type		= "xconnect",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_xconnect_priv),
	.init		= fb_xconnect_init,
	.destroy	= fb_xconnect_destroy,
	.netrx		= fb_xconnect_netrx,
	.event		= fb_xconnect_event,
	.proc_show	= fb_xconnect_proc_show,
};

static int __init fb_xconnect_module_init(void)
{
	return lana_register_fblock_type(&fb_xconnect_factory);
}

static void __exit fb_xconnect_module_exit(void)
{
	lana_unregister_fblock_type(&fb_xconnect_factory);
}

module_init(fb_xconnect_module_init);
module_exit(fb_xconnect_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA cross-connect functional block: patches two lower blocks together");
MODULE_ALIAS("lana-fb-xconnect");
