// SPDX-License-Identifier: GPL-2.0
/*
 * fb_eth - connects an Ethernet device to LANA (the virtual link layer).
 *
 * `vlink ethernet hook eth0` creates the instance "eth0" of type eth; the
 * instance name is the device name.  The block registers an rx handler on
 * the device, which runs in __netif_receive_skb before the Linux protocol
 * stack sees the frame:
 *
 *   ingress: rx handler -> push the MAC header back -> lana_process_packet
 *            with the ingress port.  mode=steal (default): LANA consumes
 *            the frame, Linux never sees it.  mode=observe: LANA gets a
 *            clone and Linux keeps the original.  No ingress port bound:
 *            frames pass to Linux untouched.
 *   egress:  the engine calls netrx with TYPE_EGRESS: the frame is
 *            transmitted on the device with dev_queue_xmit.
 *
 * eth is the bottom of a stack: it has one ingress port and no egress port.
 *
 * Events: LINK_DOWN when the device goes down or loses its carrier,
 * LINK_UP when it is up with a carrier again (value: the ifindex), from
 * the netdevice notifier (NETDEV_UP, NETDEV_DOWN, NETDEV_CHANGE), once per
 * change of that state.
 *
 * The rx handler gets the private area as rx_handler_data, never the
 * struct fblock: `fbctl replace` may hand priv (and the IDP) to another
 * instance, and the handler must keep working across that.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/netdevice.h>
#include <linux/etherdevice.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <net/net_namespace.h>
#include <lana/lana.h>

enum fb_eth_mode {
	FB_ETH_STEAL = 0,	/* LANA consumes ingress frames */
	FB_ETH_OBSERVE,		/* LANA sees clones, Linux keeps the frames */
};

struct fb_eth_priv {
	idp_t idp;			/* this instance's IDP, for messages */
	idp_t port_ingress;		/* block on top of us */
	int mode;			/* enum fb_eth_mode, READ_ONCE */
	bool promisc;			/* we hold a promiscuity count (rtnl) */
	/*
	 * The hooked device, with a reference held.  NULL once the device
	 * went away.  Changed only under rtnl; read locklessly on egress,
	 * where the notifier's synchronize_net() keeps it valid.
	 */
	struct net_device __rcu *dev;
	char ifname[IFNAMSIZ];		/* for messages after the device left */
	bool link_up;			/* IFF_UP and carrier, last seen (rtnl) */
};

static bool fb_eth_link_ok(const struct net_device *dev)
{
	return (dev->flags & IFF_UP) && netif_carrier_ok(dev);
}

static rx_handler_result_t fb_eth_handle_frame(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct fb_eth_priv *priv;
	idp_t next;

	if (unlikely(skb->pkt_type == PACKET_LOOPBACK))
		return RX_HANDLER_PASS;
	priv = rcu_dereference(skb->dev->rx_handler_data);
	if (unlikely(!priv))
		return RX_HANDLER_PASS;
	next = READ_ONCE(priv->port_ingress);
	if (next == IDP_UNKNOWN)
		return RX_HANDLER_PASS;
	if (unlikely(!skb_mac_header_was_set(skb)))
		return RX_HANDLER_PASS;

	if (READ_ONCE(priv->mode) == FB_ETH_OBSERVE) {
		struct sk_buff *copy = skb_clone(skb, GFP_ATOMIC);

		if (copy) {
			__skb_push(copy, copy->data - skb_mac_header(copy));
			lana_process_packet_from(copy, priv->idp, next,
						 TYPE_INGRESS);
		}
		return RX_HANDLER_PASS;
	}

	/* Taps (tcpdump) may hold a reference too: get our own skb head. */
	skb = skb_share_check(skb, GFP_ATOMIC);
	*pskb = skb;
	if (unlikely(!skb))
		return RX_HANDLER_CONSUMED;
	/* the MAC header is still in front of data: no headroom check */
	__skb_push(skb, skb->data - skb_mac_header(skb));
	lana_process_packet_from(skb, priv->idp, next, TYPE_INGRESS);
	return RX_HANDLER_CONSUMED;
}

/* netrx is only ever reached on the egress path: transmit the frame. */
static int fb_eth_netrx(const struct fblock *fb, struct sk_buff *skb,
			enum path_type *dir)
{
	struct fb_eth_priv *priv = fb->priv;
	struct net_device *dev = rcu_dereference(priv->dev);

	if (unlikely(*dir != TYPE_EGRESS || !dev || !(dev->flags & IFF_UP) ||
		     skb->len < ETH_HLEN)) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	skb->dev = dev;
	skb_reset_mac_header(skb);
	if (!skb->protocol)
		skb->protocol = eth_hdr(skb)->h_proto;
	dev_queue_xmit(skb);
	return PPE_HALT;
}

/* Caller holds rtnl.  Unhook from the device and drop our reference. */
static void fb_eth_release_dev(struct fb_eth_priv *priv)
{
	struct net_device *dev = rtnl_dereference(priv->dev);

	if (!dev)
		return;
	if (priv->promisc) {
		dev_set_promiscuity(dev, -1);
		priv->promisc = false;
	}
	/* Waits (synchronize_net) until no rx handler still runs. */
	netdev_rx_handler_unregister(dev);
	RCU_INIT_POINTER(priv->dev, NULL);
	/* Egress readers that still saw dev finish before the ref goes. */
	synchronize_net();
	dev_put(dev);
}

/* rtnl held: emit LINK_DOWN/LINK_UP if the device's link state changed. */
static void fb_eth_link_changed(struct fb_eth_priv *priv,
				struct net_device *dev)
{
	bool up = fb_eth_link_ok(dev);
	const struct fblock *fb;

	if (up == priv->link_up)
		return;
	priv->link_up = up;
	rcu_read_lock();
	fb = lana_fblock_lookup_rcu(priv->idp);
	if (fb && READ_ONCE(fb->priv) == priv)
		lana_fblock_emit(fb, up ? LANA_EV_LINK_UP : LANA_EV_LINK_DOWN,
				 dev->ifindex);
	rcu_read_unlock();
}

static int fb_eth_netdev_event(struct notifier_block *nb, unsigned long event,
			       void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct fb_eth_priv *priv;

	if (event != NETDEV_UNREGISTER && event != NETDEV_UP &&
	    event != NETDEV_DOWN && event != NETDEV_CHANGE)
		return NOTIFY_DONE;
	if (rtnl_dereference(dev->rx_handler) != fb_eth_handle_frame)
		return NOTIFY_DONE;
	priv = rtnl_dereference(dev->rx_handler_data);
	if (event != NETDEV_UNREGISTER) {
		fb_eth_link_changed(priv, dev);
		return NOTIFY_DONE;
	}
	pr_info("eth %s: device is going away; instance stays, unhook it with `vlink ethernet unhook %s`\n",
		priv->ifname, priv->ifname);
	fb_eth_release_dev(priv);
	return NOTIFY_OK;
}

static struct notifier_block fb_eth_netdev_notifier = {
	.notifier_call = fb_eth_netdev_event,
};

static int fb_eth_set_mode(struct fb_eth_priv *priv, const char *val,
			   struct netlink_ext_ack *extack)
{
	if (!strcmp(val, "steal")) {
		WRITE_ONCE(priv->mode, FB_ETH_STEAL);
	} else if (!strcmp(val, "observe")) {
		WRITE_ONCE(priv->mode, FB_ETH_OBSERVE);
	} else {
		NL_SET_ERR_MSG_MOD(extack, "bad mode; use mode=steal or mode=observe");
		return -EINVAL;
	}
	return 0;
}

/*
 * promisc=1 makes the device hand up frames for other MAC addresses too
 * (an emulated NIC filters them otherwise), as a block that forwards or
 * patches links through (xconnect) needs.  Counted like a bridge port does.
 */
static int fb_eth_set_promisc(struct fb_eth_priv *priv, const char *val,
			      struct netlink_ext_ack *extack)
{
	struct net_device *dev;
	bool on;
	int err = 0;

	if (kstrtobool(val, &on)) {
		NL_SET_ERR_MSG_MOD(extack, "bad value; use promisc=1 or promisc=0");
		return -EINVAL;
	}
	rtnl_lock();
	dev = rtnl_dereference(priv->dev);
	if (!dev) {
		NL_SET_ERR_MSG_MOD(extack, "the hooked device is gone");
		err = -ENODEV;
	} else if (on != priv->promisc) {
		err = dev_set_promiscuity(dev, on ? 1 : -1);
		if (!err)
			priv->promisc = on;
	}
	rtnl_unlock();
	return err;
}

static int fb_eth_set_opt(struct fb_eth_priv *priv, const char *opt,
			  struct netlink_ext_ack *extack)
{
	const char *val = strchr(opt, '=');

	if (val && val - opt == 4 && !strncmp(opt, "mode", 4))
		return fb_eth_set_mode(priv, val + 1, extack);
	if (val && val - opt == 7 && !strncmp(opt, "promisc", 7))
		return fb_eth_set_promisc(priv, val + 1, extack);
	NL_SET_ERR_MSG_MOD(extack,
			   "unknown option; eth knows mode=steal|observe and promisc=0|1");
	return -ENOENT;
}

static int fb_eth_event(struct fblock *fb, unsigned long cmd, void *arg,
			struct netlink_ext_ack *extack)
{
	struct fb_eth_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
		if (msg->dir == TYPE_EGRESS) {
			NL_SET_ERR_MSG_MOD(extack,
					   "eth has no egress port: it is the bottom of a stack; bind other blocks on top of it");
			return -EBUSY;
		}
		if (msg->dir != TYPE_INGRESS) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction");
			return -EINVAL;
		}
		if (READ_ONCE(priv->port_ingress) != IDP_UNKNOWN) {
			NL_SET_ERR_MSG_MOD(extack,
					   "ingress port already bound; unbind it first (or put a tee on top)");
			return -EBUSY;
		}
		WRITE_ONCE(priv->port_ingress, msg->idp);
		return 0;
	case FBLOCK_UNBIND_IDP:
		if (msg->dir != TYPE_INGRESS ||
		    READ_ONCE(priv->port_ingress) != msg->idp) {
			NL_SET_ERR_MSG_MOD(extack,
					   "not bound to that block in this direction");
			return -ENOENT;
		}
		WRITE_ONCE(priv->port_ingress, IDP_UNKNOWN);
		return 0;
	case FBLOCK_SET_OPT:
		return fb_eth_set_opt(priv, arg, extack);
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_eth_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	struct fb_eth_priv *priv = fb->priv;
	struct net_device *dev;
	int err;

	priv->idp = fb->idp;
	priv->mode = FB_ETH_STEAL;
	strscpy(priv->ifname, fb->name, sizeof(priv->ifname));

	rtnl_lock();
	dev = __dev_get_by_name(&init_net, fb->name);
	if (!dev) {
		NL_SET_ERR_MSG_MOD(extack,
				   "no network device of that name in the initial namespace; check `ip link`");
		err = -ENODEV;
		goto out;
	}
	if (dev->type != ARPHRD_ETHER || dev->addr_len != ETH_ALEN) {
		NL_SET_ERR_MSG_MOD(extack, "not an Ethernet device");
		err = -EINVAL;
		goto out;
	}
	dev_hold(dev);
	rcu_assign_pointer(priv->dev, dev);
	priv->link_up = fb_eth_link_ok(dev);
	err = netdev_rx_handler_register(dev, fb_eth_handle_frame, priv);
	if (err) {
		NL_SET_ERR_MSG_MOD(extack,
				   "device already has an rx handler (bridge/bond/macvlan port?); release it first");
		pr_info("eth %s: cannot hook, device already has an rx handler (err %d)\n",
			fb->name, err);
		RCU_INIT_POINTER(priv->dev, NULL);
		dev_put(dev);
		goto out;
	}
	pr_info("eth %s: hooked (IDP %u), mode steal\n", fb->name, fb->idp);
out:
	rtnl_unlock();
	return err;
}

static void fb_eth_destroy(struct fblock *fb)
{
	struct fb_eth_priv *priv = fb->priv;

	if (!priv)
		return;
	rtnl_lock();
	fb_eth_release_dev(priv);
	rtnl_unlock();
}

static int fb_eth_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_eth_priv *priv = fb->priv;
	bool attached;

	rcu_read_lock();
	attached = rcu_dereference(priv->dev) != NULL;
	rcu_read_unlock();
	seq_printf(m, "dev %s%s\nmode %s\ningress %u\npromisc %d\n", priv->ifname,
		   attached ? "" : " (gone)",
		   READ_ONCE(priv->mode) == FB_ETH_OBSERVE ? "observe" : "steal",
		   READ_ONCE(priv->port_ingress), priv->promisc);
	return 0;
}

static struct fblock_factory fb_eth_factory = {
	.type		= "eth",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_SOURCE,
	.priv_size	= sizeof(struct fb_eth_priv),
	.init		= fb_eth_init,
	.destroy	= fb_eth_destroy,
	.netrx		= fb_eth_netrx,
	.event		= fb_eth_event,
	.proc_show	= fb_eth_proc_show,
};

static int __init fb_eth_module_init(void)
{
	int err;

	err = register_netdevice_notifier(&fb_eth_netdev_notifier);
	if (err)
		return err;
	err = lana_register_fblock_type(&fb_eth_factory);
	if (err)
		unregister_netdevice_notifier(&fb_eth_netdev_notifier);
	return err;
}

static void __exit fb_eth_module_exit(void)
{
	lana_unregister_fblock_type(&fb_eth_factory);
	unregister_netdevice_notifier(&fb_eth_netdev_notifier);
}

module_init(fb_eth_module_init);
module_exit(fb_eth_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA Ethernet functional block: hooks a netdevice into LANA");
MODULE_ALIAS("lana-fb-eth");
