// SPDX-License-Identifier: GPL-2.0
/*
 * fb_sampler - passes one packet in N (reference solution of exercise 4).
 *
 *   fbctl add s1 sampler
 *   fbctl set s1 n=5          pass the 5th, 10th, 15th, ... packet; drop the others
 *   fbctl bind s1 eth0
 *
 * Packets of both directions share one count; setting n starts the count afresh.
 */
#include <linux/atomic.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/netlink.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <lana/lana.h>

#define SAMPLER_MAX_N 1000000

struct fb_sampler_priv {
	idp_t port[NUM_TYPES];
	u32 n;			/* pass one packet in n; 0 (zeroed priv) means 1 */
	atomic_t seen;		/* packets since the last `set n=` */
};

static int fb_sampler_netrx(const struct fblock *fb, struct sk_buff *skb,
			    enum path_type *dir)
{
	struct fb_sampler_priv *priv = fb->priv;
	idp_t next = READ_ONCE(priv->port[*dir]);
	u32 n = READ_ONCE(priv->n) ?: 1;
	u32 seen = (u32)atomic_inc_return(&priv->seen);

	if (next == IDP_UNKNOWN || seen % n != 0) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

static int fb_sampler_bind(struct fb_sampler_priv *priv,
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

static int fb_sampler_unbind(struct fb_sampler_priv *priv,
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

static int fb_sampler_set(struct fb_sampler_priv *priv, const char *opt,
			  struct netlink_ext_ack *extack)
{
	const char *val;
	unsigned int n;

	if (strncmp(opt, "n=", 2)) {
		NL_SET_ERR_MSG_MOD(extack, "unknown option; sampler knows only n=N");
		return -ENOENT;
	}
	val = opt + 2;
	if (kstrtouint(val, 10, &n) || n < 1 || n > SAMPLER_MAX_N) {
		NL_SET_ERR_MSG_MOD(extack, "n must be a number from 1 to 1000000");
		return -EINVAL;
	}
	WRITE_ONCE(priv->n, n);
	atomic_set(&priv->seen, 0);
	return 0;
}

static int fb_sampler_event(struct fblock *fb, unsigned long cmd, void *arg,
			    struct netlink_ext_ack *extack)
{
	struct fb_sampler_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
	case FBLOCK_UNBIND_IDP:
		if (msg->dir >= NUM_TYPES) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction");
			return -EINVAL;
		}
		if (cmd == FBLOCK_BIND_IDP)
			return fb_sampler_bind(priv, msg, extack);
		return fb_sampler_unbind(priv, msg, extack);
	case FBLOCK_SET_OPT:
		return fb_sampler_set(priv, arg, extack);
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_sampler_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	struct fb_sampler_priv *priv = fb->priv;

	priv->n = 1;
	atomic_set(&priv->seen, 0);
	return 0;
}

static void fb_sampler_destroy(struct fblock *fb)
{
}

static int fb_sampler_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_sampler_priv *priv = fb->priv;

	seq_printf(m, "n %u\nseen %u\n", READ_ONCE(priv->n) ?: 1,
		   (u32)atomic_read(&priv->seen));
	return 0;
}

static struct fblock_factory fb_sampler_factory = {
	.type		= "sampler",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_sampler_priv),
	.init		= fb_sampler_init,
	.destroy	= fb_sampler_destroy,
	.netrx		= fb_sampler_netrx,
	.event		= fb_sampler_event,
	.proc_show	= fb_sampler_proc_show,
};

static int __init fb_sampler_module_init(void)
{
	return lana_register_fblock_type(&fb_sampler_factory);
}

static void __exit fb_sampler_module_exit(void)
{
	lana_unregister_fblock_type(&fb_sampler_factory);
}

module_init(fb_sampler_module_init);
module_exit(fb_sampler_module_exit);
MODULE_DESCRIPTION("LANA sampler functional block: passes one packet in N");
MODULE_ALIAS("lana-fb-sampler");
