// SPDX-License-Identifier: GPL-2.0
/*
 * fb_fwd - the forwarding ("dummy") functional block.
 *
 * This is the teaching template for LANA blocks: copy it, rename fwd to
 * your type, and change netrx.  It has one port per direction and passes
 * every packet, untouched, to the port bound for the packet's direction.
 *
 *   fbctl add f1 fwd
 *   fbctl bind f1 eth0        f1 on top of eth0: ingress eth0 -> f1
 *   fbctl bind c1 f1          c1 on top of f1:   ingress f1 -> c1
 *
 * See README.md in this folder for the walk-through.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/skbuff.h>
#include <linux/netlink.h>
#include <lana/lana.h>

/*
 * Everything an instance needs lives in its private area.  The core
 * allocates factory->priv_size bytes, zeroed, before init and frees them
 * after destroy, so a zeroed area must already be a valid "nothing bound"
 * state (IDP_UNKNOWN is 0).
 *
 * The port rule: a port is a plain idp_t, one aligned machine word.  The
 * control path (bind/unbind, serialised by the core's control mutex) writes
 * it with WRITE_ONCE; the packet path reads it with READ_ONCE.  That is all
 * the synchronisation a single word needs: the packet path sees either the
 * old or the new IDP, never a torn value, and takes no lock.
 */
struct fb_fwd_priv {
	idp_t port[NUM_TYPES];	/* where to send packets, per direction */
};

/*
 * netrx: the packet path.  Runs in softirq context with BH disabled and
 * rcu_read_lock held, so it must not sleep.  skb->data is at the Ethernet
 * header.  Either tell the engine where to go next (lana_skb_set_next and
 * PPE_SUCCESS), or free the skb and return PPE_DROPPED, or keep it and
 * return PPE_HALT.
 */
static int fb_fwd_netrx(const struct fblock *fb, struct sk_buff *skb,
			enum path_type *dir)
{
	struct fb_fwd_priv *priv = fb->priv;
	idp_t next = READ_ONCE(priv->port[*dir]);

	if (next == IDP_UNKNOWN) {
		/* Nobody bound for this direction: the packet ends here. */
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

/*
 * bind/unbind: `fbctl bind A B` sends A {TYPE_EGRESS, B.idp} and
 * B {TYPE_INGRESS, A.idp}.  We have one port per direction, so a second
 * bind in the same direction is -EBUSY; unbinding something we are not
 * bound to is -ENOENT.
 */
static int fb_fwd_bind(struct fb_fwd_priv *priv,
		       const struct fblock_bind_msg *msg,
		       struct netlink_ext_ack *extack)
{
	if (READ_ONCE(priv->port[msg->dir]) != IDP_UNKNOWN) {
		NL_SET_ERR_MSG_MOD(extack,
				   "port for this direction already bound; unbind it first");
		return -EBUSY;
	}
	WRITE_ONCE(priv->port[msg->dir], msg->idp);
	return 0;
}

static int fb_fwd_unbind(struct fb_fwd_priv *priv,
			 const struct fblock_bind_msg *msg,
			 struct netlink_ext_ack *extack)
{
	if (READ_ONCE(priv->port[msg->dir]) != msg->idp) {
		NL_SET_ERR_MSG_MOD(extack, "not bound to that block in this direction");
		return -ENOENT;
	}
	WRITE_ONCE(priv->port[msg->dir], IDP_UNKNOWN);
	return 0;
}

/*
 * event: the control path.  Process context, the core's control mutex is
 * held, so events of one instance never run concurrently.  Return -errno
 * and put a human-readable reason into extack; fbctl prints it.
 */
static int fb_fwd_event(struct fblock *fb, unsigned long cmd, void *arg,
			struct netlink_ext_ack *extack)
{
	struct fb_fwd_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
	case FBLOCK_UNBIND_IDP:
		if (msg->dir >= NUM_TYPES) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction");
			return -EINVAL;
		}
		if (cmd == FBLOCK_BIND_IDP)
			return fb_fwd_bind(priv, msg, extack);
		return fb_fwd_unbind(priv, msg, extack);
	case FBLOCK_SET_OPT:
		/* fwd has no options ("key=value" in arg). */
		NL_SET_ERR_MSG_MOD(extack, "fwd has no options");
		return -ENOENT;
	default:
		return -EOPNOTSUPP;
	}
}

/* init: process context, may sleep.  The zeroed priv is all we need. */
static int fb_fwd_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	return 0;
}

/*
 * destroy: called after an RCU grace period, so no packet can still be in
 * netrx.  Free what init allocated (nothing here); the core frees priv.
 */
static void fb_fwd_destroy(struct fblock *fb)
{
}

/* Optional: /proc/net/lana/fblock/<name> shows the bound ports. */
static int fb_fwd_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_fwd_priv *priv = fb->priv;

	seq_printf(m, "ingress %u\negress %u\n",
		   READ_ONCE(priv->port[TYPE_INGRESS]),
		   READ_ONCE(priv->port[TYPE_EGRESS]));
	return 0;
}

static struct fblock_factory fb_fwd_factory = {
	.type		= "fwd",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_fwd_priv),
	.init		= fb_fwd_init,
	.destroy	= fb_fwd_destroy,
	.netrx		= fb_fwd_netrx,
	.event		= fb_fwd_event,
	.proc_show	= fb_fwd_proc_show,
};

/* Loading the module makes the type known; instances come from fbctl add. */
static int __init fb_fwd_module_init(void)
{
	return lana_register_fblock_type(&fb_fwd_factory);
}

static void __exit fb_fwd_module_exit(void)
{
	lana_unregister_fblock_type(&fb_fwd_factory);
}

module_init(fb_fwd_module_init);
module_exit(fb_fwd_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA forwarding functional block (teaching template)");
MODULE_ALIAS("lana-fb-fwd");
