// SPDX-License-Identifier: GPL-2.0
/*
 * lanagen - the receive-side traffic source of `lanalab bench`.
 *
 * A kernel thread builds every frame in a fresh skb and hands it to
 * netif_receive_skb() on a device, 64 frames per BH-off batch, as a NAPI
 * driver does with what its NIC received.  pktgen cannot stand in for
 * that: it holds a reference on each skb while the receive path runs, so
 * every frame arrives shared and whoever changes it (LANA's eth block,
 * like ip_rcv) must clone it first, a cost a real NIC never causes.
 *
 *   modprobe lanagen dev=vb len=60   start sending on vb (len without FCS)
 *   /sys/module/lanagen/parameters/sent   frames handed over so far
 *   rmmod lanagen                    stop
 *
 * The frames are pktgen's kind: IPv4/UDP 10.254.254.1 -> 10.254.254.254
 * port 9 to a foreign unicast MAC, so plain Linux drops them in ip_rcv as
 * PACKET_OTHERHOST.  dst_mac, dst_ip and dst_port address them to a local
 * socket instead (the device's own MAC and an address configured on it),
 * count=N stops after N frames.  If the device goes away, sending stops.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/netdevice.h>
#include <linux/etherdevice.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/rtnetlink.h>
#include <linux/inet.h>
#include <net/ip.h>
#include <net/net_namespace.h>

#define LANAGEN_BATCH	64	/* frames per BH-off section, a NAPI budget */

static char *gen_ifname = "vb";
module_param_named(dev, gen_ifname, charp, 0444);
MODULE_PARM_DESC(dev, "device the frames are received on (must be up)");

static uint frame_len = 60;
module_param_named(len, frame_len, uint, 0444);
MODULE_PARM_DESC(len, "frame length without FCS, 60..1514");

static char *dst_mac = "02:00:00:00:be:ef";
module_param(dst_mac, charp, 0444);
MODULE_PARM_DESC(dst_mac, "destination MAC (default a foreign one: Linux drops the frames)");

static char *dst_ip = "10.254.254.254";
module_param(dst_ip, charp, 0444);
MODULE_PARM_DESC(dst_ip, "destination IPv4 address");

static ushort dst_port = 9;
module_param(dst_port, ushort, 0444);
MODULE_PARM_DESC(dst_port, "destination UDP port");

static ulong count;
module_param(count, ulong, 0444);
MODULE_PARM_DESC(count, "frames to send, then stop (0: until rmmod)");

static ulong sent;
module_param(sent, ulong, 0444);
MODULE_PARM_DESC(sent, "frames handed to the receive path so far");

static u8 lanagen_dst[ETH_ALEN];
static __be32 lanagen_daddr;

/* Both changed only under rtnl (module init/exit, the netdev notifier). */
static struct net_device *gen_dev;
static struct task_struct *gen_task;
static u8 *gen_frame;

static void lanagen_fill(u8 *frame, const struct net_device *dev)
{
	struct ethhdr *eth = (struct ethhdr *)frame;
	struct iphdr *iph = (struct iphdr *)(eth + 1);
	struct udphdr *udph = (struct udphdr *)(iph + 1);
	u16 ip_len = frame_len - ETH_HLEN;

	ether_addr_copy(eth->h_dest, lanagen_dst);
	ether_addr_copy(eth->h_source, dev->dev_addr);
	eth->h_proto = htons(ETH_P_IP);
	iph->version = 4;
	iph->ihl = 5;
	iph->ttl = 64;
	iph->protocol = IPPROTO_UDP;
	iph->tot_len = htons(ip_len);
	iph->saddr = htonl(0x0afefe01);
	iph->daddr = lanagen_daddr;
	iph->check = ip_fast_csum(iph, iph->ihl);
	udph->source = htons(9);
	udph->dest = htons(dst_port);
	udph->len = htons(ip_len - sizeof(*iph));
}

static int lanagen_thread(void *data)
{
	struct net_device *dev = data;

	while (!kthread_should_stop()) {
		unsigned int i, batch = LANAGEN_BATCH;

		if (count && count - sent < batch)
			batch = count - sent;
		if (!batch) {
			/* count reached: wait for rmmod */
			set_current_state(TASK_INTERRUPTIBLE);
			if (!kthread_should_stop())
				schedule();
			__set_current_state(TASK_RUNNING);
			continue;
		}
		local_bh_disable();
		for (i = 0; i < batch; i++) {
			struct sk_buff *skb = netdev_alloc_skb(dev, frame_len);

			if (unlikely(!skb))
				break;
			skb_put_data(skb, gen_frame, frame_len);
			skb->protocol = eth_type_trans(skb, dev);
			netif_receive_skb(skb);
		}
		local_bh_enable();
		WRITE_ONCE(sent, sent + i);
		cond_resched();
	}
	return 0;
}

/* Caller holds rtnl. */
static void lanagen_stop(void)
{
	if (!gen_task)
		return;
	kthread_stop(gen_task);
	gen_task = NULL;
	dev_put(gen_dev);
	gen_dev = NULL;
}

static int lanagen_netdev_event(struct notifier_block *nb,
				unsigned long event, void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);

	if (dev == gen_dev &&
	    (event == NETDEV_GOING_DOWN || event == NETDEV_UNREGISTER)) {
		pr_info("lanagen: %s goes away, stopped after %lu frames\n",
			dev->name, READ_ONCE(sent));
		lanagen_stop();
	}
	return NOTIFY_DONE;
}

static struct notifier_block lanagen_notifier = {
	.notifier_call = lanagen_netdev_event,
};

static int __init lanagen_init(void)
{
	struct net_device *dev;
	int ret;

	if (frame_len < ETH_ZLEN || frame_len > ETH_FRAME_LEN) {
		pr_err("lanagen: len=%u is out of 60..1514\n", frame_len);
		return -EINVAL;
	}
	if (!mac_pton(dst_mac, lanagen_dst)) {
		pr_err("lanagen: dst_mac=%s is not a MAC address\n", dst_mac);
		return -EINVAL;
	}
	if (!in4_pton(dst_ip, -1, (u8 *)&lanagen_daddr, -1, NULL)) {
		pr_err("lanagen: dst_ip=%s is not an IPv4 address\n", dst_ip);
		return -EINVAL;
	}
	gen_frame = kzalloc(frame_len, GFP_KERNEL);
	if (!gen_frame)
		return -ENOMEM;
	ret = register_netdevice_notifier(&lanagen_notifier);
	if (ret)
		goto err_free;

	rtnl_lock();
	dev = __dev_get_by_name(&init_net, gen_ifname);
	if (!dev || !(dev->flags & IFF_UP)) {
		pr_err("lanagen: no device %s that is up\n", gen_ifname);
		ret = -ENODEV;
		goto err_unlock;
	}
	lanagen_fill(gen_frame, dev);
	dev_hold(dev);
	gen_task = kthread_run(lanagen_thread, dev, "lanagen/%s", dev->name);
	if (IS_ERR(gen_task)) {
		ret = PTR_ERR(gen_task);
		gen_task = NULL;
		dev_put(dev);
		goto err_unlock;
	}
	gen_dev = dev;
	rtnl_unlock();
	return 0;

err_unlock:
	rtnl_unlock();
	unregister_netdevice_notifier(&lanagen_notifier);
err_free:
	kfree(gen_frame);
	return ret;
}

static void __exit lanagen_exit(void)
{
	rtnl_lock();
	lanagen_stop();
	rtnl_unlock();
	unregister_netdevice_notifier(&lanagen_notifier);
	kfree(gen_frame);
}

module_init(lanagen_init);
module_exit(lanagen_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA lab: receive-side frame source for benchmarks");
