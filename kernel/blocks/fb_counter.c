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
 * Options: `fbctl set NAME reset=1` zeroes the counts.
 *
 * Rate events: with rate_high=N (packets per second) the counter measures
 * its packet rate every interval_ms (default 1000) and emits RATE_HIGH
 * once when the rate goes above N and RATE_NORMAL once when it is back at
 * or below rate_normal (default: rate_high, i.e. no hysteresis); the
 * event's value is the measured rate.  rate_high=0 turns it off (and emits
 * RATE_NORMAL if the rate was high, so no subscriber stays alarmed).
 *
 * The packet path stays as it was (a per-CPU increment): the rate is
 * evaluated in a timer, one per instance, armed only while rate_high is
 * set.  A timer rather than a check at interval boundaries on the packet
 * path because the end of a flood is the one moment no packet comes to
 * notice it.  The timer finds its instance through the IDP, never a
 * pointer (replace may hand priv to another instance).
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/percpu.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <linux/ctype.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/timer.h>
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

	/*
	 * Rate events.  Settings are written on the control path with the
	 * timer stopped (del_timer_sync), the measuring state only by the
	 * timer; so neither needs a lock.
	 */
	idp_t idp;			/* this instance, for the timer */
	struct timer_list timer;
	bool stopping;			/* destroy: do not re-arm */
	u32 rate_high;			/* pps; 0: no rate events */
	u32 rate_normal;		/* pps; 0: same as rate_high */
	u32 interval_ms;
	bool high;			/* RATE_HIGH sent, RATE_NORMAL not yet */
	u64 last_packets;		/* packets at the last measurement */
	u64 last_ns;			/* its ktime */
	u64 rate;			/* the last measured rate, pps */
};

#define FB_COUNTER_MAX_RATE		1000000000U
#define FB_COUNTER_DEFAULT_INTERVAL	1000U
#define FB_COUNTER_MIN_INTERVAL		10U
#define FB_COUNTER_MAX_INTERVAL		60000U

static int fb_counter_netrx(const struct fblock *fb, struct sk_buff *skb,
			    enum path_type *dir)
{
	struct fb_counter_priv *priv = fb->priv;
	struct fb_counter_cpu *c = this_cpu_ptr(priv->cpu);
	idp_t next = READ_ONCE(priv->port[*dir]);

	/* replace --drop-priv gave this priv a new IDP: tell the timer */
	if (unlikely(READ_ONCE(priv->idp) != fb->idp))
		WRITE_ONCE(priv->idp, fb->idp);

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

static u32 fb_counter_normal(const struct fb_counter_priv *priv)
{
	return priv->rate_normal ? priv->rate_normal : priv->rate_high;
}

/* Emit @code from this instance, found by IDP (timer or control path). */
static void fb_counter_emit(struct fb_counter_priv *priv, u32 code, u64 rate)
{
	const struct fblock *fb;

	rcu_read_lock();
	fb = lana_fblock_lookup_rcu(READ_ONCE(priv->idp));
	if (fb && READ_ONCE(fb->priv) == priv)
		lana_fblock_emit(fb, code, rate);
	rcu_read_unlock();
}

/* Timer (softirq): measure the rate over the last interval, compare. */
static void fb_counter_tick(struct timer_list *t)
{
	struct fb_counter_priv *priv = from_timer(priv, t, timer);
	u64 packets, bytes, now = ktime_get_ns();
	u64 elapsed = now - priv->last_ns;

	fb_counter_sum(priv, &packets, &bytes);
	/* the timer may fire late (a loaded host): divide by the real time */
	if (elapsed)
		WRITE_ONCE(priv->rate,
			   mul_u64_u64_div_u64(packets - priv->last_packets,
					       NSEC_PER_SEC, elapsed));
	priv->last_packets = packets;
	priv->last_ns = now;
	if (!priv->high && priv->rate > priv->rate_high) {
		WRITE_ONCE(priv->high, true);
		fb_counter_emit(priv, LANA_EV_RATE_HIGH, priv->rate);
	} else if (priv->high && priv->rate <= fb_counter_normal(priv)) {
		WRITE_ONCE(priv->high, false);
		fb_counter_emit(priv, LANA_EV_RATE_NORMAL, priv->rate);
	}
	if (!READ_ONCE(priv->stopping))
		mod_timer(&priv->timer,
			  jiffies + msecs_to_jiffies(priv->interval_ms));
}

/*
 * Control path: stop the timer before changing settings, then start a
 * fresh measurement (from now) if rate events are on.  A rate that was
 * high stays high across setting changes, except when turned off.
 */
static void fb_counter_rate_stop(struct fb_counter_priv *priv)
{
	del_timer_sync(&priv->timer);
}

static void fb_counter_rate_start(struct fb_counter_priv *priv)
{
	u64 bytes;

	if (!priv->rate_high) {
		if (priv->high) {
			priv->high = false;
			fb_counter_emit(priv, LANA_EV_RATE_NORMAL, 0);
		}
		priv->rate = 0;
		return;
	}
	fb_counter_sum(priv, &priv->last_packets, &bytes);
	priv->last_ns = ktime_get_ns();
	mod_timer(&priv->timer, jiffies + msecs_to_jiffies(priv->interval_ms));
}

static int fb_counter_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_counter_priv *priv = fb->priv;
	u64 packets, bytes;

	fb_counter_sum(priv, &packets, &bytes);
	seq_printf(m, "%llu %llu\n", packets - READ_ONCE(priv->base_packets),
		   bytes - READ_ONCE(priv->base_bytes));
	/* only with rate events on: parsers of the first line stay unaffected */
	if (priv->rate_high)
		seq_printf(m, "rate_high %u\nrate_normal %u\ninterval_ms %u\nrate %llu\nstate %s\n",
			   priv->rate_high, fb_counter_normal(priv),
			   priv->interval_ms, READ_ONCE(priv->rate),
			   READ_ONCE(priv->high) ? "high" : "normal");
	return 0;
}

/* "N" with N <= max, decimal digits only */
static int fb_counter_parse(const char *val, u32 max, u32 *out)
{
	unsigned int v;

	if (!isdigit(*val) || kstrtouint(val, 10, &v) || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int fb_counter_set_rate(struct fb_counter_priv *priv, const char *opt,
			       size_t klen, const char *val,
			       struct netlink_ext_ack *extack)
{
	u32 high = priv->rate_high, normal = priv->rate_normal;
	u32 interval = priv->interval_ms;
	u32 v;

	if (klen == 9 && !strncmp(opt, "rate_high", 9)) {
		if (fb_counter_parse(val, FB_COUNTER_MAX_RATE, &v)) {
			NL_SET_ERR_MSG_MOD(extack,
					   "bad rate_high; use rate_high=N packets per second, N from 1 to 1000000000, or rate_high=0 (off)");
			return -EINVAL;
		}
		high = v;
	} else if (klen == 11 && !strncmp(opt, "rate_normal", 11)) {
		if (fb_counter_parse(val, FB_COUNTER_MAX_RATE, &v)) {
			NL_SET_ERR_MSG_MOD(extack,
					   "bad rate_normal; use rate_normal=N packets per second, N from 0 (same as rate_high) up to rate_high");
			return -EINVAL;
		}
		normal = v;
	} else {
		if (fb_counter_parse(val, FB_COUNTER_MAX_INTERVAL, &v) ||
		    v < FB_COUNTER_MIN_INTERVAL) {
			NL_SET_ERR_MSG_MOD(extack,
					   "bad interval_ms; use interval_ms=N milliseconds, N from 10 to 60000");
			return -EINVAL;
		}
		interval = v;
	}
	if (high && normal > high) {
		NL_SET_ERR_MSG_MOD(extack,
				   "rate_normal must not be above rate_high (the rate falls back below rate_normal after going above rate_high); lower rate_normal or raise rate_high first");
		return -EINVAL;
	}
	fb_counter_rate_stop(priv);
	priv->rate_high = high;
	priv->rate_normal = normal;
	priv->interval_ms = interval;
	fb_counter_rate_start(priv);
	return 0;
}

static int fb_counter_set_opt(struct fb_counter_priv *priv, const char *opt,
			      struct netlink_ext_ack *extack)
{
	const char *val = strchr(opt, '=');
	size_t klen = val ? val - opt : 0;
	u64 packets, bytes;
	bool reset;

	if ((klen == 9 && !strncmp(opt, "rate_high", 9)) ||
	    (klen == 11 && !strncmp(opt, "rate_normal", 11)) ||
	    (klen == 11 && !strncmp(opt, "interval_ms", 11)))
		return fb_counter_set_rate(priv, opt, klen, val + 1, extack);
	if (klen != 5 || strncmp(opt, "reset", 5)) {
		NL_SET_ERR_MSG_MOD(extack,
				   "unknown option; counter knows reset=1, rate_high=N, rate_normal=N and interval_ms=N");
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
	priv->idp = fb->idp;
	priv->interval_ms = FB_COUNTER_DEFAULT_INTERVAL;
	timer_setup(&priv->timer, fb_counter_tick, 0);
	return 0;
}

static void fb_counter_destroy(struct fblock *fb)
{
	struct fb_counter_priv *priv = fb->priv;

	if (!priv)
		return;
	if (priv->cpu) {
		/* the tick re-arms itself unless told not to */
		WRITE_ONCE(priv->stopping, true);
		del_timer_sync(&priv->timer);
	}
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
