// SPDX-License-Identifier: GPL-2.0
/*
 * fb_ethvlink - virtual Ethernet devices for LANA-tagged frames.
 *
 * `vlink ethernet add vl10 eth0 10` creates the instance "vl10" of type
 * ethvlink (setup string "carrier=eth0 id=10") and with it the network
 * device vl10, visible to ip and ethtool.  The device carries the frames
 * whose EtherType is 0xAC00|ID over the carrier device eth0:
 *
 *   ingress: an rx handler on the carrier (one per carrier, shared by all
 *            its vlinks) takes frames of EtherType 0xACxx, counts them on
 *            the virtual device and, if a block is bound on top of the
 *            instance, runs them through LANA (ingress port); otherwise
 *            Linux receives them on the virtual device (tcpdump -i vl10).
 *            Other EtherTypes, and IDs nobody added, pass to Linux on the
 *            carrier untouched.
 *   egress:  frames coming down from LANA, and frames Linux sends on the
 *            virtual device, get EtherType 0xAC00|ID and leave on the
 *            carrier; the virtual device counts them as transmitted.
 *
 * ethvlink is the bottom of a stack: one ingress port, no egress port.
 * `vlink ethernet rm vl10` (or fbctl rm vl10) removes instance and device;
 * `ip link del vl10` is refused (the device belongs to the instance).
 * If the carrier goes away the instance and its device stay, idle.
 *
 * Packet-path state is reached through the private area (rx_handler_data
 * points to the carrier table, which points to privs), never through a
 * struct fblock.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/netdevice.h>
#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/net_namespace.h>
#include <lana/lana.h>

#define EVL_ETHERTYPE_BASE	0xAC00
#define EVL_IDS			256

struct evl_carrier;

struct fb_ethvlink_priv {
	idp_t port_ingress;			/* block on top of us */
	u8 id;					/* EtherType 0xAC00|id */
	struct net_device *vdev;		/* our device, rtnl */
	struct evl_carrier __rcu *carrier;	/* NULL once it left */
	char carrier_name[IFNAMSIZ];
	atomic64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	atomic64_t rx_dropped, tx_dropped;
};

/* One per carrier device: the rx handler's data.  Changed under rtnl. */
struct evl_carrier {
	struct list_head node;			/* evl_carriers, rtnl */
	struct net_device *dev;			/* reference held */
	unsigned int users;
	struct fb_ethvlink_priv __rcu *ids[EVL_IDS];
};

/* netdev_priv of a virtual device */
struct evl_vdev {
	struct fb_ethvlink_priv *priv;
};

static LIST_HEAD(evl_carriers);

static void evl_count(atomic64_t *packets, atomic64_t *bytes, unsigned int len)
{
	atomic64_inc(packets);
	atomic64_add(len, bytes);
}

/* Tag the frame and send it on the carrier.  rcu_read_lock held. */
static void evl_xmit(struct fb_ethvlink_priv *priv, struct sk_buff *skb)
{
	struct evl_carrier *c = rcu_dereference(priv->carrier);
	struct net_device *dev = c ? c->dev : NULL;

	if (unlikely(!dev || !(dev->flags & IFF_UP) || skb->len < ETH_HLEN ||
		     skb_ensure_writable(skb, ETH_HLEN))) {
		atomic64_inc(&priv->tx_dropped);
		kfree_skb(skb);
		return;
	}
	skb_reset_mac_header(skb);
	eth_hdr(skb)->h_proto = htons(EVL_ETHERTYPE_BASE | priv->id);
	skb->protocol = eth_hdr(skb)->h_proto;
	evl_count(&priv->tx_packets, &priv->tx_bytes, skb->len);
	skb->dev = dev;
	dev_queue_xmit(skb);
}

/* ---- the carrier's rx handler ----------------------------------------- */

static rx_handler_result_t evl_handle_frame(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct fb_ethvlink_priv *priv;
	struct evl_carrier *c;
	u16 proto = ntohs(skb->protocol);
	idp_t next;

	if ((proto & 0xff00) != EVL_ETHERTYPE_BASE ||
	    unlikely(skb->pkt_type == PACKET_LOOPBACK))
		return RX_HANDLER_PASS;
	c = rcu_dereference(skb->dev->rx_handler_data);
	if (unlikely(!c))
		return RX_HANDLER_PASS;
	priv = rcu_dereference(c->ids[proto & 0xff]);
	if (!priv || unlikely(!skb_mac_header_was_set(skb)))
		return RX_HANDLER_PASS;

	skb = skb_share_check(skb, GFP_ATOMIC);
	*pskb = skb;
	if (unlikely(!skb)) {
		atomic64_inc(&priv->rx_dropped);
		return RX_HANDLER_CONSUMED;
	}
	evl_count(&priv->rx_packets, &priv->rx_bytes,
		  skb->len + (skb->data - skb_mac_header(skb)));
	skb->dev = priv->vdev;
	next = READ_ONCE(priv->port_ingress);
	if (next == IDP_UNKNOWN)
		return RX_HANDLER_ANOTHER;	/* Linux gets it on the vdev */
	skb_push(skb, skb->data - skb_mac_header(skb));
	lana_process_packet(skb, next, TYPE_INGRESS);
	return RX_HANDLER_CONSUMED;
}

/* ---- the virtual device ------------------------------------------------ */

static netdev_tx_t evl_vdev_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct evl_vdev *v = netdev_priv(dev);

	rcu_read_lock();
	evl_xmit(v->priv, skb);
	rcu_read_unlock();
	return NETDEV_TX_OK;
}

static void evl_vdev_stats(struct net_device *dev,
			   struct rtnl_link_stats64 *s)
{
	struct fb_ethvlink_priv *priv = ((struct evl_vdev *)netdev_priv(dev))->priv;

	s->rx_packets = atomic64_read(&priv->rx_packets);
	s->rx_bytes = atomic64_read(&priv->rx_bytes);
	s->tx_packets = atomic64_read(&priv->tx_packets);
	s->tx_bytes = atomic64_read(&priv->tx_bytes);
	s->rx_dropped = atomic64_read(&priv->rx_dropped);
	s->tx_dropped = atomic64_read(&priv->tx_dropped);
}

static int evl_vdev_open(struct net_device *dev)
{
	return 0;
}

static const struct net_device_ops evl_vdev_ops = {
	.ndo_open		= evl_vdev_open,
	.ndo_stop		= evl_vdev_open,
	.ndo_start_xmit		= evl_vdev_xmit,
	.ndo_get_stats64	= evl_vdev_stats,
	.ndo_set_mac_address	= eth_mac_addr,
	.ndo_validate_addr	= eth_validate_addr,
};

static void evl_get_drvinfo(struct net_device *dev,
			    struct ethtool_drvinfo *info)
{
	struct fb_ethvlink_priv *priv = ((struct evl_vdev *)netdev_priv(dev))->priv;

	strscpy(info->driver, "lana-ethvlink", sizeof(info->driver));
	snprintf(info->bus_info, sizeof(info->bus_info), "%s:0x%04x",
		 priv->carrier_name, EVL_ETHERTYPE_BASE | priv->id);
}

static const struct ethtool_ops evl_ethtool_ops = {
	.get_drvinfo	= evl_get_drvinfo,
	.get_link	= ethtool_op_get_link,
};

static void evl_vdev_setup(struct net_device *dev)
{
	ether_setup(dev);
	dev->netdev_ops = &evl_vdev_ops;
	dev->ethtool_ops = &evl_ethtool_ops;
	dev->priv_flags |= IFF_NO_QUEUE;
	/* the carrier and the instance live in the initial namespace */
	dev->features |= NETIF_F_NETNS_LOCAL;
	dev->needs_free_netdev = true;
	eth_hw_addr_random(dev);
}

/* ---- the block --------------------------------------------------------- */

/* Caller holds rtnl.  Detach @c from its device and free it. */
static void evl_carrier_release(struct evl_carrier *c)
{
	netdev_rx_handler_unregister(c->dev);	/* waits for running handlers */
	list_del(&c->node);
	dev_put(c->dev);
	kfree(c);
}

/* Caller holds rtnl.  The carrier table for @dev, made if needed. */
static struct evl_carrier *evl_carrier_get(struct net_device *dev,
					   struct netlink_ext_ack *extack,
					   int *err)
{
	struct evl_carrier *c;

	list_for_each_entry(c, &evl_carriers, node)
		if (c->dev == dev)
			return c;
	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = netdev_rx_handler_register(dev, evl_handle_frame, c);
	if (*err) {
		NL_SET_ERR_MSG_MOD(extack,
				   "carrier already has an rx handler (hooked with vlink ethernet hook, or a bridge/bond port?); release it first");
		kfree(c);
		return NULL;
	}
	dev_hold(dev);
	c->dev = dev;
	list_add(&c->node, &evl_carriers);
	return c;
}

static int evl_parse(const char *opt, char *carrier, unsigned int *id,
		     struct netlink_ext_ack *extack)
{
	char fmt[32];

	snprintf(fmt, sizeof(fmt), "carrier=%%%ds id=%%u", IFNAMSIZ - 1);
	if (!opt || sscanf(opt, fmt, carrier, id) != 2) {
		NL_SET_ERR_MSG_MOD(extack,
				   "ethvlink needs a carrier and an ID: use vlink ethernet add NAME CARRIER ID");
		return -EINVAL;
	}
	if (*id >= EVL_IDS) {
		NL_SET_ERR_MSG_MOD(extack, "ID must be 0..255 (EtherType 0xAC00|ID)");
		return -EINVAL;
	}
	return 0;
}

static int fb_ethvlink_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	struct fb_ethvlink_priv *priv = fb->priv;
	struct net_device *carrier, *vdev;
	char cname[IFNAMSIZ];
	struct evl_carrier *c;
	unsigned int id;
	int err;

	err = evl_parse(lana_fblock_init_opt(), cname, &id, extack);
	if (err)
		return err;
	if (strlen(fb->name) >= IFNAMSIZ || !dev_valid_name(fb->name)) {
		NL_SET_ERR_MSG_MOD(extack,
				   "the name is also the device name: at most 15 characters, no '/' or ':'");
		return -EINVAL;
	}
	vdev = alloc_netdev(sizeof(struct evl_vdev), fb->name, NET_NAME_USER,
			    evl_vdev_setup);
	if (!vdev)
		return -ENOMEM;
	((struct evl_vdev *)netdev_priv(vdev))->priv = priv;
	priv->id = id;
	priv->vdev = vdev;
	strscpy(priv->carrier_name, cname, sizeof(priv->carrier_name));

	rtnl_lock();
	carrier = __dev_get_by_name(&init_net, cname);
	if (!carrier) {
		NL_SET_ERR_MSG_MOD(extack,
				   "no carrier device of that name in the initial namespace; check `ip link`");
		err = -ENODEV;
		goto out_free;
	}
	if (carrier->type != ARPHRD_ETHER || carrier->addr_len != ETH_ALEN ||
	    carrier->netdev_ops == &evl_vdev_ops) {
		NL_SET_ERR_MSG_MOD(extack,
				   "the carrier must be a real Ethernet device (not a vlink device)");
		err = -EINVAL;
		goto out_free;
	}
	if (__dev_get_by_name(&init_net, fb->name)) {
		NL_SET_ERR_MSG_MOD(extack,
				   "a network device of that name exists already; pick another name");
		err = -EEXIST;
		goto out_free;
	}
	c = evl_carrier_get(carrier, extack, &err);
	if (!c)
		goto out_free;
	if (rtnl_dereference(c->ids[id])) {
		NL_SET_ERR_MSG_MOD(extack,
				   "that carrier already has a vlink device with this ID; pick another ID");
		err = -EEXIST;
		goto out_carrier;
	}
	vdev->mtu = carrier->mtu;
	vdev->max_mtu = carrier->max_mtu;
	err = register_netdevice(vdev);
	if (err) {
		NL_SET_ERR_MSG_MOD(extack, "cannot register the virtual device");
		goto out_carrier;
	}
	c->users++;
	rcu_assign_pointer(priv->carrier, c);
	rcu_assign_pointer(c->ids[id], priv);
	rtnl_unlock();
	pr_info("ethvlink %s: EtherType 0x%04x on %s (IDP %u)\n", fb->name,
		EVL_ETHERTYPE_BASE | id, cname, fb->idp);
	return 0;

out_carrier:
	if (!c->users)
		evl_carrier_release(c);
out_free:
	rtnl_unlock();
	priv->vdev = NULL;
	free_netdev(vdev);
	return err;
}

static void fb_ethvlink_destroy(struct fblock *fb)
{
	struct fb_ethvlink_priv *priv = fb->priv;
	struct evl_carrier *c;

	if (!priv || !priv->vdev)
		return;
	rtnl_lock();
	c = rtnl_dereference(priv->carrier);
	if (c) {
		RCU_INIT_POINTER(c->ids[priv->id], NULL);
		RCU_INIT_POINTER(priv->carrier, NULL);
		if (!--c->users)
			evl_carrier_release(c);
	}
	/* the rx handler and xmit may still see priv: wait for them */
	synchronize_net();
	unregister_netdevice(priv->vdev);	/* freed by the core later */
	priv->vdev = NULL;
	rtnl_unlock();
}

static int fb_ethvlink_netrx(const struct fblock *fb, struct sk_buff *skb,
			     enum path_type *dir)
{
	if (unlikely(*dir != TYPE_EGRESS)) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	evl_xmit(fb->priv, skb);
	return PPE_HALT;
}

static int fb_ethvlink_event(struct fblock *fb, unsigned long cmd, void *arg,
			     struct netlink_ext_ack *extack)
{
	struct fb_ethvlink_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
		if (msg->dir != TYPE_INGRESS) {
			NL_SET_ERR_MSG_MOD(extack,
					   "ethvlink has no egress port: it is the bottom of a stack; bind other blocks on top of it");
			return -EBUSY;
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
		NL_SET_ERR_MSG_MOD(extack,
				   "ethvlink has no options; remove and add it again to change carrier or ID");
		return -ENOENT;
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_ethvlink_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_ethvlink_priv *priv = fb->priv;
	bool attached;

	rcu_read_lock();
	attached = rcu_dereference(priv->carrier) != NULL;
	rcu_read_unlock();
	seq_printf(m, "dev %s\ncarrier %s%s\nid %u\nethertype 0x%04x\ningress %u\n",
		   priv->vdev ? netdev_name(priv->vdev) : "?",
		   priv->carrier_name, attached ? "" : " (gone)", priv->id,
		   EVL_ETHERTYPE_BASE | priv->id, READ_ONCE(priv->port_ingress));
	seq_printf(m, "rx %lld %lld\ntx %lld %lld\n",
		   (long long)atomic64_read(&priv->rx_packets),
		   (long long)atomic64_read(&priv->rx_bytes),
		   (long long)atomic64_read(&priv->tx_packets),
		   (long long)atomic64_read(&priv->tx_bytes));
	return 0;
}

/* The carrier left: every vlink on it goes idle, instances stay. */
static int evl_netdev_event(struct notifier_block *nb, unsigned long event,
			    void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct fb_ethvlink_priv *priv;
	struct evl_carrier *c;
	int i;

	if (event != NETDEV_UNREGISTER ||
	    rtnl_dereference(dev->rx_handler) != evl_handle_frame)
		return NOTIFY_DONE;
	c = rtnl_dereference(dev->rx_handler_data);
	for (i = 0; i < EVL_IDS; i++) {
		priv = rtnl_dereference(c->ids[i]);
		if (!priv)
			continue;
		pr_info("ethvlink %s: carrier %s is going away; remove it with `vlink ethernet rm %s`\n",
			netdev_name(priv->vdev), dev->name,
			netdev_name(priv->vdev));
		RCU_INIT_POINTER(priv->carrier, NULL);
		RCU_INIT_POINTER(c->ids[i], NULL);
	}
	synchronize_net();
	evl_carrier_release(c);
	return NOTIFY_OK;
}

static struct notifier_block evl_netdev_notifier = {
	.notifier_call = evl_netdev_event,
};

static struct fblock_factory fb_ethvlink_factory = {
	.type		= "ethvlink",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_SOURCE,
	.priv_size	= sizeof(struct fb_ethvlink_priv),
	.init		= fb_ethvlink_init,
	.destroy	= fb_ethvlink_destroy,
	.netrx		= fb_ethvlink_netrx,
	.event		= fb_ethvlink_event,
	.proc_show	= fb_ethvlink_proc_show,
};

static int __init fb_ethvlink_module_init(void)
{
	int err;

	err = register_netdevice_notifier(&evl_netdev_notifier);
	if (err)
		return err;
	err = lana_register_fblock_type(&fb_ethvlink_factory);
	if (err)
		unregister_netdevice_notifier(&evl_netdev_notifier);
	return err;
}

static void __exit fb_ethvlink_module_exit(void)
{
	lana_unregister_fblock_type(&fb_ethvlink_factory);
	unregister_netdevice_notifier(&evl_netdev_notifier);
}

module_init(fb_ethvlink_module_init);
module_exit(fb_ethvlink_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA Ethernet vlink block: virtual devices for 0xACxx-tagged frames");
MODULE_ALIAS("lana-fb-ethvlink");
