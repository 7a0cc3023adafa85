// SPDX-License-Identifier: GPL-2.0
/*
 * fb_mirror - sends every frame back where it came from.
 *
 *   vlink ethernet hook eth0
 *   fbctl add m1 mirror
 *   fbctl bind m1 eth0        frames arriving on eth0 go back out of eth0
 *
 * The smallest block that turns a packet around: it swaps the Ethernet
 * source and destination addresses, switches the packet's direction to
 * egress (*dir) and hands it to the block below it.  It shows the two
 * things fb_fwd does not: writing into a packet (which may be shared with
 * a tee's clone or a tcpdump, so make it writable first) and changing the
 * direction.  It is the top of a stack: nothing can be bound on top of it.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/etherdevice.h>
#include <linux/if_ether.h>
#include <linux/skbuff.h>
#include <lana/lana.h>

struct fb_mirror_priv {
	idp_t down;	/* egress port: the block we sit on */
};

static int fb_mirror_netrx(const struct fblock *fb, struct sk_buff *skb,
			   enum path_type *dir)
{
	struct fb_mirror_priv *priv = fb->priv;
	idp_t next = READ_ONCE(priv->down);
	struct ethhdr *eth;
	u8 addr[ETH_ALEN];

	/* Unshare the header bytes before writing: others may see them. */
	if (next == IDP_UNKNOWN || skb_ensure_writable(skb, ETH_HLEN)) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	eth = (struct ethhdr *)skb->data;
	ether_addr_copy(addr, eth->h_dest);
	ether_addr_copy(eth->h_dest, eth->h_source);
	ether_addr_copy(eth->h_source, addr);

	*dir = TYPE_EGRESS;
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

static int fb_mirror_event(struct fblock *fb, unsigned long cmd, void *arg,
			   struct netlink_ext_ack *extack)
{
	struct fb_mirror_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
		if (msg->dir != TYPE_EGRESS) {
			NL_SET_ERR_MSG_MOD(extack,
					   "mirror is the top of a stack: nothing can be bound on top of it");
			return -EBUSY;
		}
		if (READ_ONCE(priv->down) != IDP_UNKNOWN) {
			NL_SET_ERR_MSG_MOD(extack,
					   "mirror already sits on a block; unbind it first");
			return -EBUSY;
		}
		WRITE_ONCE(priv->down, msg->idp);
		return 0;
	case FBLOCK_UNBIND_IDP:
		if (msg->dir != TYPE_EGRESS || READ_ONCE(priv->down) != msg->idp) {
			NL_SET_ERR_MSG_MOD(extack,
					   "not bound to that block in this direction");
			return -ENOENT;
		}
		WRITE_ONCE(priv->down, IDP_UNKNOWN);
		return 0;
	case FBLOCK_SET_OPT:
		NL_SET_ERR_MSG_MOD(extack, "mirror has no options");
		return -ENOENT;
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_mirror_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	return 0;
}

static void fb_mirror_destroy(struct fblock *fb)
{
}

static struct fblock_factory fb_mirror_factory = {
	.type		= "mirror",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_SINK,
	.priv_size	= sizeof(struct fb_mirror_priv),
	.init		= fb_mirror_init,
	.destroy	= fb_mirror_destroy,
	.netrx		= fb_mirror_netrx,
	.event		= fb_mirror_event,
};

static int __init fb_mirror_module_init(void)
{
	return lana_register_fblock_type(&fb_mirror_factory);
}

static void __exit fb_mirror_module_exit(void)
{
	lana_unregister_fblock_type(&fb_mirror_factory);
}

module_init(fb_mirror_module_init);
module_exit(fb_mirror_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA mirror functional block: sends frames back out");
MODULE_ALIAS("lana-fb-mirror");
