// SPDX-License-Identifier: GPL-2.0
/*
 * fb_counter - counts packets and bytes that pass it.
 *
 * Each CPU counts into its own slot (no shared cache line on the packet
 * path); reading /proc/net/lana/fblock/<name> sums the slots and prints
 * "<packets> <bytes>\n".  Bytes are skb->len as seen in LANA, i.e. whole
 * Ethernet frames without FCS.
 *
 * With a port bound for the packet's direction the packet goes on there;
 * without one the counter is a sink and frees the packet after counting.
 *
 * Option: `fbctl set NAME reset=1` zeroes the counts.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/percpu.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <linux/u64_stats_sync.h>
#include <lana/lana.h>

struct fb_counter_cpu {
	u64_stats_t packets;
	u64_stats_t bytes;
	struct u64_stats_sync syncp;
};

struct fb_counter_priv {
	idp_t port[NUM_TYPES];
	struct fb_counter_cpu __percpu *cpu;
	/*
	 * reset=1 does not write into other CPUs' slots (that would race with
	 * their updates); it records the current totals and later reads
	 * subtract them.  Written only on the control path (core mutex).
	 */
	u64 base_packets;
	u64 base_bytes;
};

static int fb_counter_netrx(const struct fblock *fb, struct sk_buff *skb,
			    enum path_type *dir)
{
	struct fb_counter_priv *priv = fb->priv;
	struct fb_counter_cpu *c = this_cpu_ptr(priv->cpu);
	idp_t next = READ_ONCE(priv->port[*dir]);

	u64_stats_update_begin(&c->syncp);
	u64_stats_inc(&c->packets);
	u64_stats_add(&c->bytes, skb->len);
	u64_stats_update_end(&c->syncp);

	if (next == IDP_UNKNOWN) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

static void fb_counter_sum(const struct fb_counter_priv *priv, u64 *packets,
			   u64 *bytes)
{
	int cpu;

	*packets = 0;
	*bytes = 0;
	for_each_possible_cpu(cpu) {
		const struct fb_counter_cpu *c = per_cpu_ptr(priv->cpu, cpu);
		unsigned int start;
		u64 p, b;

		do {
			start = u64_stats_fetch_begin(&c->syncp);
			p = u64_stats_read(&c->packets);
			b = u64_stats_read(&c->bytes);
		} while (u64_stats_fetch_retry(&c->syncp, start));
		*packets += p;
		*bytes += b;
	}
}

static int fb_counter_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_counter_priv *priv = fb->priv;
	u64 packets, bytes;

	fb_counter_sum(priv, &packets, &bytes);
	seq_printf(m, "%llu %llu\n", packets - READ_ONCE(priv->base_packets),
		   bytes - READ_ONCE(priv->base_bytes));
	return 0;
}

static int fb_counter_set_opt(struct fb_counter_priv *priv, const char *opt,
			      struct netlink_ext_ack *extack)
{
	const char *val = strchr(opt, '=');
	u64 packets, bytes;
	bool reset;

	if (!val || val - opt != 5 || strncmp(opt, "reset", 5)) {
		NL_SET_ERR_MSG_MOD(extack, "unknown option; counter knows only reset=1");
		return -ENOENT;
	}
	if (kstrtobool(val + 1, &reset) || !reset) {
		NL_SET_ERR_MSG_MOD(extack, "bad value; use reset=1");
		return -EINVAL;
	}
	fb_counter_sum(priv, &packets, &bytes);
	WRITE_ONCE(priv->base_packets, packets);
	WRITE_ONCE(priv->base_bytes, bytes);
	return 0;
}

static int fb_counter_event(struct fblock *fb, unsigned long cmd, void *arg,
			    struct netlink_ext_ack *extack)
{
	struct fb_counter_priv *priv = fb->priv;
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
		return fb_counter_set_opt(priv, arg, extack);
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_counter_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	struct fb_counter_priv *priv = fb->priv;
	int cpu;

	priv->cpu = alloc_percpu(struct fb_counter_cpu);
	if (!priv->cpu) {
		NL_SET_ERR_MSG_MOD(extack, "out of memory for per-CPU counters");
		return -ENOMEM;
	}
	for_each_possible_cpu(cpu)
		u64_stats_init(&per_cpu_ptr(priv->cpu, cpu)->syncp);
	return 0;
}

static void fb_counter_destroy(struct fblock *fb)
{
	struct fb_counter_priv *priv = fb->priv;

	if (!priv)
		return;
	free_percpu(priv->cpu);
	priv->cpu = NULL;
}

static struct fblock_factory fb_counter_factory = {
	.type		= "counter",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_counter_priv),
	.init		= fb_counter_init,
	.destroy	= fb_counter_destroy,
	.netrx		= fb_counter_netrx,
	.event		= fb_counter_event,
	.proc_show	= fb_counter_proc_show,
};

static int __init fb_counter_module_init(void)
{
	return lana_register_fblock_type(&fb_counter_factory);
}

static void __exit fb_counter_module_exit(void)
{
	lana_unregister_fblock_type(&fb_counter_factory);
}

module_init(fb_counter_module_init);
module_exit(fb_counter_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA per-CPU packet and byte counter functional block");
MODULE_ALIAS("lana-fb-counter");
