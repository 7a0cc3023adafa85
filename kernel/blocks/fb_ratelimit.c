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
#include <lana/lana.h>

#define FB_RL_MAX_RATE		1000000000U
#define FB_RL_MAX_BURST		1000000U
#define FB_RL_DEFAULT_BURST	1U

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

static int fb_ratelimit_netrx(const struct fblock *fb, struct sk_buff *skb,
			      enum path_type *dir)
{
	struct fb_ratelimit_priv *priv = fb->priv;
	idp_t next = READ_ONCE(priv->port[*dir]);

	if (*dir == TYPE_INGRESS) {
		if (!fb_ratelimit_take(priv)) {
			atomic64_inc(&priv->dropped);
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
	if (klen == 5 && !strncmp(opt, "reset", 5)) {
		if (kstrtobool(val + 1, &reset) || !reset) {
			NL_SET_ERR_MSG_MOD(extack, "bad value; use reset=1");
			return -EINVAL;
		}
		atomic64_set(&priv->passed, 0);
		atomic64_set(&priv->dropped, 0);
		return 0;
	}
	NL_SET_ERR_MSG_MOD(extack,
			   "unknown option; ratelimit knows rate=N (packets/s, or none), burst=N and reset=1");
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
	priv->burst = FB_RL_DEFAULT_BURST;
	fb_ratelimit_fill(priv);
	return 0;
}

static void fb_ratelimit_destroy(struct fblock *fb)
{
	/* nothing allocated */
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
