// SPDX-License-Identifier: GPL-2.0
/*
 * fb_tee - duplicates packets.
 *
 * Two ports per direction.  With both bound, the packet goes on to port 0
 * and a clone (skb_clone: new skb head, shared data) is queued for port 1
 * through the engine's backlog, which runs it after the current packet.
 * With one port bound the tee just forwards; with none it drops.
 *
 * Blocks behind a tee see shared packet data: one that wants to write into
 * the packet must skb_unshare()/skb_cow() first.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/skbuff.h>
#include <lana/lana.h>

#define FB_TEE_PORTS 2

struct fb_tee_priv {
	idp_t port[NUM_TYPES][FB_TEE_PORTS];
};

static int fb_tee_netrx(const struct fblock *fb, struct sk_buff *skb,
			enum path_type *dir)
{
	struct fb_tee_priv *priv = fb->priv;
	idp_t first = READ_ONCE(priv->port[*dir][0]);
	idp_t second = READ_ONCE(priv->port[*dir][1]);

	if (first == IDP_UNKNOWN) {
		/* Only port 1 (or nothing) bound: plain forwarding. */
		first = second;
		second = IDP_UNKNOWN;
	}
	if (first == IDP_UNKNOWN) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	if (second != IDP_UNKNOWN) {
		struct sk_buff *copy = skb_clone(skb, GFP_ATOMIC);

		/* Out of memory: the original still goes on, the copy is lost. */
		if (copy)
			lana_backlog_tail(copy, second, *dir);
	}
	lana_skb_set_next(skb, first);
	return PPE_SUCCESS;
}

static int fb_tee_bind(struct fb_tee_priv *priv,
		       const struct fblock_bind_msg *msg,
		       struct netlink_ext_ack *extack)
{
	int i;

	for (i = 0; i < FB_TEE_PORTS; i++) {
		if (READ_ONCE(priv->port[msg->dir][i]) == msg->idp) {
			NL_SET_ERR_MSG_MOD(extack,
					   "already bound to that block in this direction");
			return -EEXIST;
		}
	}
	for (i = 0; i < FB_TEE_PORTS; i++) {
		if (READ_ONCE(priv->port[msg->dir][i]) == IDP_UNKNOWN) {
			WRITE_ONCE(priv->port[msg->dir][i], msg->idp);
			return 0;
		}
	}
	NL_SET_ERR_MSG_MOD(extack,
			   "both tee ports for this direction are bound; unbind one first");
	return -EBUSY;
}

static int fb_tee_unbind(struct fb_tee_priv *priv,
			 const struct fblock_bind_msg *msg,
			 struct netlink_ext_ack *extack)
{
	int i;

	for (i = 0; i < FB_TEE_PORTS; i++) {
		if (READ_ONCE(priv->port[msg->dir][i]) == msg->idp) {
			WRITE_ONCE(priv->port[msg->dir][i], IDP_UNKNOWN);
			return 0;
		}
	}
	NL_SET_ERR_MSG_MOD(extack, "not bound to that block in this direction");
	return -ENOENT;
}

static int fb_tee_event(struct fblock *fb, unsigned long cmd, void *arg,
			struct netlink_ext_ack *extack)
{
	struct fb_tee_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
	case FBLOCK_UNBIND_IDP:
		if (msg->dir >= NUM_TYPES || msg->idp == IDP_UNKNOWN) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction or IDP");
			return -EINVAL;
		}
		if (cmd == FBLOCK_BIND_IDP)
			return fb_tee_bind(priv, msg, extack);
		return fb_tee_unbind(priv, msg, extack);
	case FBLOCK_SET_OPT:
		NL_SET_ERR_MSG_MOD(extack, "tee has no options");
		return -ENOENT;
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_tee_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	return 0;
}

static void fb_tee_destroy(struct fblock *fb)
{
}

static int fb_tee_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_tee_priv *priv = fb->priv;

	seq_printf(m, "ingress %u %u\negress %u %u\n",
		   READ_ONCE(priv->port[TYPE_INGRESS][0]),
		   READ_ONCE(priv->port[TYPE_INGRESS][1]),
		   READ_ONCE(priv->port[TYPE_EGRESS][0]),
		   READ_ONCE(priv->port[TYPE_EGRESS][1]));
	return 0;
}

static struct fblock_factory fb_tee_factory = {
	.type		= "tee",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_tee_priv),
	.init		= fb_tee_init,
	.destroy	= fb_tee_destroy,
	.netrx		= fb_tee_netrx,
	.event		= fb_tee_event,
	.proc_show	= fb_tee_proc_show,
};

static int __init fb_tee_module_init(void)
{
	return lana_register_fblock_type(&fb_tee_factory);
}

static void __exit fb_tee_module_exit(void)
{
	lana_unregister_fblock_type(&fb_tee_factory);
}

module_init(fb_tee_module_init);
module_exit(fb_tee_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA tee functional block: duplicates packets to two ports");
MODULE_ALIAS("lana-fb-tee");
