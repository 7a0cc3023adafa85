// SPDX-License-Identifier: GPL-2.0
/*
 * fb_ratelimit - a token-bucket rate limiter.
 *
 *   fbctl add r0 ratelimit
 *   fbctl set r0 rate=100                 (packets per second, 1..1000000000)
 *   fbctl set r0 burst=10                 (bucket size, 1..1000000)
 *   fbctl bind r0 eth0; fbctl bind c0 r0
 *
 * Ingress packets take one token each from a bucket of `burst` tokens that
 * refills at `rate` tokens per second; a packet that finds no whole token
 * is dropped and counted.  The bucket starts full, and every rate= or
 * burst= setting fills it again.  A new instance has no rate (rate=none):
 * everything passes.  Egress packets from above pass down unlimited.
 *
 * The bucket is kept in nanotokens (one token is NSEC_PER_SEC of them), so
 * t nanoseconds add t * rate and no division is needed on the packet path.
 * No timer: the bucket is refilled from the ktime elapsed when a packet
 * arrives.  A spinlock (BH-safe) guards it: packets on several CPUs and
 * the control path.
 *
 * /proc/net/lana/fblock/<name>: rate, burst, then passed and dropped
 * (ingress packets).  `fbctl set NAME reset=1` zeroes the counts.
 *
 * Events: LIMIT_DROPPING when the limiter drops a packet after a quiet
 * time (value: drops so far), LIMIT_IDLE when it has not dropped for
 * idle_ms (default 1000; value: drops so far).  The first drop takes a
 * spinlock and arms a timer once; later drops only store the time of the
 * last drop.  The timer ends the dropping state, or re-arms itself for
 * the rest of idle_ms after that last drop.
 *
 * Reacting to events: with arm=on_event the limiter passes everything
 * until a block it listens to (bound to it, or `fbctl subscribe`d) emits
 * RATE_HIGH, limits from then on, and passes everything again after
 * RATE_NORMAL.  arm=always (the default) limits all the time.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/atomic.h>
#include <linux/ctype.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/jiffies.h>
#include <linux/timer.h>
#include <lana/lana.h>

#define FB_RL_MAX_RATE		1000000000U
#define FB_RL_MAX_BURST		1000000U
#define FB_RL_DEFAULT_BURST	1U
#define FB_RL_DEFAULT_IDLE_MS	1000U
#define FB_RL_MIN_IDLE_MS	10U
#define FB_RL_MAX_IDLE_MS	60000U

struct fb_ratelimit_priv {
	idp_t port[NUM_TYPES];
	spinlock_t lock;	/* the bucket: the fields below up to stats */
	u32 rate;		/* tokens per second; 0: no limit */
	u32 burst;		/* bucket size in tokens */
	u64 cap;		/* burst * NSEC_PER_SEC nanotokens */
	u64 full_ns;		/* an empty bucket is full again after this */
	u64 tokens;		/* nanotokens */
	u64 last;		/* ktime (ns) of the last refill */
	atomic64_t passed, dropped;

	/* events */
	idp_t idp;		/* this instance, for the timer */
	spinlock_t ev_lock;	/* dropping's transitions and their events */
	int dropping;		/* LIMIT_DROPPING sent, LIMIT_IDLE not yet */
	unsigned long last_drop;	/* jiffies */
	u32 idle_ms;
	struct timer_list timer;
	bool stopping;		/* destroy: the timer must not re-arm */

	/* arm=on_event: limit only between RATE_HIGH and RATE_NORMAL */
	bool on_event;
	bool armed;
	atomic64_t arms;	/* RATE_HIGH events that armed it */
};

/* Bucket lock held. */
static void fb_ratelimit_fill(struct fb_ratelimit_priv *priv)
{
	priv->cap = (u64)priv->burst * NSEC_PER_SEC;
	priv->full_ns = priv->rate ? div_u64(priv->cap, priv->rate) + 1 : 0;
	priv->tokens = priv->cap;
	priv->last = ktime_get_ns();
}

/* Packet path: may one more packet pass now? */
static bool fb_ratelimit_take(struct fb_ratelimit_priv *priv)
{
	bool ok = true;
	u64 now, elapsed;

	spin_lock(&priv->lock);
	if (priv->rate) {
		now = ktime_get_ns();
		elapsed = now - priv->last;
		priv->last = now;
		/* elapsed < full_ns: elapsed * rate < cap + rate, no overflow */
		if (elapsed >= priv->full_ns)
			priv->tokens = priv->cap;
		else
			priv->tokens = min(priv->cap,
					   priv->tokens + elapsed * priv->rate);
		if (priv->tokens >= NSEC_PER_SEC)
			priv->tokens -= NSEC_PER_SEC;
		else
			ok = false;
	}
	spin_unlock(&priv->lock);
	return ok;
}

/* The first drop after a quiet time: LIMIT_DROPPING, and watch for idle. */
static void fb_ratelimit_start_dropping(const struct fblock *fb,
					struct fb_ratelimit_priv *priv,
					u64 dropped)
{
	spin_lock(&priv->ev_lock);
	if (!priv->dropping) {
		WRITE_ONCE(priv->dropping, 1);
		lana_fblock_emit(fb, LANA_EV_LIMIT_DROPPING, dropped);
		mod_timer(&priv->timer, READ_ONCE(priv->last_drop) +
			  msecs_to_jiffies(READ_ONCE(priv->idle_ms)));
	}
	spin_unlock(&priv->ev_lock);
}

/* Timer (softirq): idle_ms without a drop ends the dropping state. */
static void fb_ratelimit_tick(struct timer_list *t)
{
	struct fb_ratelimit_priv *priv = from_timer(priv, t, timer);
	unsigned long idle = msecs_to_jiffies(READ_ONCE(priv->idle_ms));
	unsigned long until = READ_ONCE(priv->last_drop) + idle;
	const struct fblock *fb;

	spin_lock(&priv->ev_lock);
	if (time_before(jiffies, until)) {
		if (!READ_ONCE(priv->stopping))
			mod_timer(&priv->timer, until);
	} else if (priv->dropping) {
		WRITE_ONCE(priv->dropping, 0);
		rcu_read_lock();
		fb = lana_fblock_lookup_rcu(READ_ONCE(priv->idp));
		if (fb && READ_ONCE(fb->priv) == priv)
			lana_fblock_emit(fb, LANA_EV_LIMIT_IDLE,
					 atomic64_read(&priv->dropped));
		rcu_read_unlock();
	}
	spin_unlock(&priv->ev_lock);
}

static int fb_ratelimit_netrx(const struct fblock *fb, struct sk_buff *skb,
			      enum path_type *dir)
{
	struct fb_ratelimit_priv *priv = fb->priv;
	idp_t next = READ_ONCE(priv->port[*dir]);

	/* replace --drop-priv gave this priv a new IDP: tell the timer */
	if (unlikely(READ_ONCE(priv->idp) != fb->idp))
		WRITE_ONCE(priv->idp, fb->idp);
	if (*dir == TYPE_INGRESS) {
		bool limit = !READ_ONCE(priv->on_event) ||
			     READ_ONCE(priv->armed);

		if (limit && !fb_ratelimit_take(priv)) {
			u64 dropped = atomic64_inc_return(&priv->dropped);

			WRITE_ONCE(priv->last_drop, jiffies);
			if (unlikely(!READ_ONCE(priv->dropping)))
				fb_ratelimit_start_dropping(fb, priv, dropped);
			kfree_skb(skb);
			return PPE_DROPPED;
		}
		atomic64_inc(&priv->passed);
	}
	if (next == IDP_UNKNOWN) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

/* "N" with 1 <= N <= max, decimal digits only */
static int fb_ratelimit_parse(const char *val, u32 max, u32 *out)
{
	unsigned int v;

	if (!isdigit(*val) || kstrtouint(val, 10, &v) || v < 1 || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int fb_ratelimit_set_opt(struct fb_ratelimit_priv *priv,
				const char *opt,
				struct netlink_ext_ack *extack)
{
	const char *val = strchr(opt, '=');
	size_t klen = val ? val - opt : 0;
	bool reset;
	u32 v;

	if (klen == 4 && !strncmp(opt, "rate", 4)) {
		if (!strcmp(val + 1, "none")) {
			v = 0;
		} else if (fb_ratelimit_parse(val + 1, FB_RL_MAX_RATE, &v)) {
			NL_SET_ERR_MSG_MOD(extack,
					   "bad rate; use rate=N packets per second, N from 1 to 1000000000, or rate=none (no limit)");
			return -EINVAL;
		}
		spin_lock_bh(&priv->lock);
		priv->rate = v;
		fb_ratelimit_fill(priv);
		spin_unlock_bh(&priv->lock);
		return 0;
	}
	if (klen == 5 && !strncmp(opt, "burst", 5)) {
		if (fb_ratelimit_parse(val + 1, FB_RL_MAX_BURST, &v)) {
			NL_SET_ERR_MSG_MOD(extack,
					   "bad burst; use burst=N packets, N from 1 to 1000000");
			return -EINVAL;
		}
		spin_lock_bh(&priv->lock);
		priv->burst = v;
		fb_ratelimit_fill(priv);
		spin_unlock_bh(&priv->lock);
		return 0;
	}
	if (klen == 7 && !strncmp(opt, "idle_ms", 7)) {
		if (fb_ratelimit_parse(val + 1, FB_RL_MAX_IDLE_MS, &v) ||
		    v < FB_RL_MIN_IDLE_MS) {
			NL_SET_ERR_MSG_MOD(extack,
					   "bad idle_ms; use idle_ms=N milliseconds without a drop before LIMIT_IDLE, N from 10 to 60000");
			return -EINVAL;
		}
		WRITE_ONCE(priv->idle_ms, v);
		return 0;
	}
	if (klen == 3 && !strncmp(opt, "arm", 3)) {
		if (!strcmp(val + 1, "always")) {
			WRITE_ONCE(priv->on_event, false);
		} else if (!strcmp(val + 1, "on_event")) {
			/* pass everything until the next RATE_HIGH */
			WRITE_ONCE(priv->armed, false);
			WRITE_ONCE(priv->on_event, true);
		} else {
			NL_SET_ERR_MSG_MOD(extack,
					   "bad arm; use arm=always (limit all the time) or arm=on_event (limit between a RATE_HIGH and a RATE_NORMAL of a block it listens to)");
			return -EINVAL;
		}
		return 0;
	}
	if (klen == 5 && !strncmp(opt, "reset", 5)) {
		if (kstrtobool(val + 1, &reset) || !reset) {
			NL_SET_ERR_MSG_MOD(extack, "bad value; use reset=1");
			return -EINVAL;
		}
		atomic64_set(&priv->passed, 0);
		atomic64_set(&priv->dropped, 0);
		atomic64_set(&priv->arms, 0);
		return 0;
	}
	NL_SET_ERR_MSG_MOD(extack,
			   "unknown option; ratelimit knows rate=N (packets/s, or none), burst=N, idle_ms=N, arm=always|on_event and reset=1");
	return -ENOENT;
}

static int fb_ratelimit_event(struct fblock *fb, unsigned long cmd, void *arg,
			      struct netlink_ext_ack *extack)
{
	struct fb_ratelimit_priv *priv = fb->priv;
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
		if (msg->dir >= NUM_TYPES ||
		    READ_ONCE(priv->port[msg->dir]) != msg->idp) {
			NL_SET_ERR_MSG_MOD(extack,
					   "not bound to that block in this direction");
			return -ENOENT;
		}
		WRITE_ONCE(priv->port[msg->dir], IDP_UNKNOWN);
		return 0;
	case FBLOCK_SET_OPT:
		return fb_ratelimit_set_opt(priv, arg, extack);
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_ratelimit_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	struct fb_ratelimit_priv *priv = fb->priv;

	spin_lock_init(&priv->lock);
	spin_lock_init(&priv->ev_lock);
	priv->burst = FB_RL_DEFAULT_BURST;
	fb_ratelimit_fill(priv);
	priv->idp = fb->idp;
	priv->idle_ms = FB_RL_DEFAULT_IDLE_MS;
	timer_setup(&priv->timer, fb_ratelimit_tick, 0);
	return 0;
}

static void fb_ratelimit_destroy(struct fblock *fb)
{
	struct fb_ratelimit_priv *priv = fb->priv;

	if (!priv)
		return;
	/* no packet runs netrx any more (grace period): only the timer */
	WRITE_ONCE(priv->stopping, true);
	del_timer_sync(&priv->timer);
}

/* An event of a block this one listens to (atomic context). */
static void fb_ratelimit_notify(struct fblock *fb, idp_t from,
				unsigned long cmd, void *arg)
{
	struct fb_ratelimit_priv *priv = fb->priv;
	const struct fblock_event *ev = arg;

	if (cmd != FBLOCK_NOTIFY_EVENT)
		return;
	if (ev->code == LANA_EV_RATE_HIGH) {
		if (!READ_ONCE(priv->armed) && READ_ONCE(priv->on_event))
			atomic64_inc(&priv->arms);
		WRITE_ONCE(priv->armed, true);
	} else if (ev->code == LANA_EV_RATE_NORMAL) {
		WRITE_ONCE(priv->armed, false);
	}
}

static int fb_ratelimit_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_ratelimit_priv *priv = fb->priv;
	u32 rate, burst;

	spin_lock_bh(&priv->lock);
	rate = priv->rate;
	burst = priv->burst;
	spin_unlock_bh(&priv->lock);
	if (rate)
		seq_printf(m, "rate %u\n", rate);
	else
		seq_puts(m, "rate none\n");
	seq_printf(m, "burst %u\npassed %lld\ndropped %lld\n", burst,
		   (long long)atomic64_read(&priv->passed),
		   (long long)atomic64_read(&priv->dropped));
	/* only when set: parsers of the four lines above stay unaffected */
	if (READ_ONCE(priv->idle_ms) != FB_RL_DEFAULT_IDLE_MS)
		seq_printf(m, "idle_ms %u\n", READ_ONCE(priv->idle_ms));
	if (READ_ONCE(priv->on_event))
		seq_printf(m, "arm on_event\narmed %d\narms %lld\n",
			   READ_ONCE(priv->armed),
			   (long long)atomic64_read(&priv->arms));
	return 0;
}

static struct fblock_factory fb_ratelimit_factory = {
	.type		= "ratelimit",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_ratelimit_priv),
	.init		= fb_ratelimit_init,
	.destroy	= fb_ratelimit_destroy,
	.netrx		= fb_ratelimit_netrx,
	.event		= fb_ratelimit_event,
	.notify		= fb_ratelimit_notify,
	.proc_show	= fb_ratelimit_proc_show,
};

static int __init fb_ratelimit_module_init(void)
{
	return lana_register_fblock_type(&fb_ratelimit_factory);
}

static void __exit fb_ratelimit_module_exit(void)
{
	lana_unregister_fblock_type(&fb_ratelimit_factory);
}

module_init(fb_ratelimit_module_init);
module_exit(fb_ratelimit_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA token-bucket rate limiter functional block");
MODULE_ALIAS("lana-fb-ratelimit");
