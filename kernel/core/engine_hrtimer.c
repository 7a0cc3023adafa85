// SPDX-License-Identifier: GPL-2.0
/*
 * Engine model "hrtimer": thesis 6.5, fig. 6.12's "kthr ksirq-hrt" (the
 * engine run in ksoftirqd's context through a high-resolution timer).
 *
 * The entry point puts the packet on its own CPU's queue and makes sure a
 * per-CPU hrtimer is pending; the timer expires in softirq context
 * (HRTIMER_MODE_REL_PINNED_SOFT: HRTIMER_SOFTIRQ, on the same CPU), takes
 * everything queued and runs it through the blocks.  So LANA runs in
 * softirq context, as the final model does, but one timer period after
 * the packet arrived, and in batches the timer decides.
 *
 * The thesis found that this needs an adaptive algorithm to pick the next
 * expiry from the load.  Ours aims at LANA_HRT_TARGET packets per expiry:
 * more than twice that waiting halves the period, fewer than half of it
 * doubles the period (between LANA_HRT_MIN_NS and LANA_HRT_MAX_NS).  The
 * timer re-arms itself while packets keep coming, and is left idle on an
 * empty queue; the next packet arms it again.  The thesis measured no gain
 * over kthr cs with it, though the context switches went down.
 */
#include <linux/kernel.h>
#include <linux/hrtimer.h>
#include <linux/percpu.h>
#include <linux/skbuff.h>
#include "internal.h"

#define LANA_HRT_TARGET		64		/* packets per expiry */
#define LANA_HRT_MIN_NS		(5 * NSEC_PER_USEC)
#define LANA_HRT_MAX_NS		NSEC_PER_MSEC
#define LANA_HRT_START_NS	(50 * NSEC_PER_USEC)

struct lana_hrt_cpu {
	struct sk_buff_head queue;
	struct hrtimer timer;
	u64 period_ns;			/* touched on this CPU only, BH off */
};

static struct lana_hrt_cpu __percpu *lana_hrt;

static enum hrtimer_restart lana_hrt_expire(struct hrtimer *timer)
{
	struct lana_hrt_cpu *h = container_of(timer, struct lana_hrt_cpu, timer);
	struct sk_buff_head batch;
	struct sk_buff *skb;
	unsigned long flags;
	unsigned int n;

	__skb_queue_head_init(&batch);
	spin_lock_irqsave(&h->queue.lock, flags);
	skb_queue_splice_init(&h->queue, &batch);
	spin_unlock_irqrestore(&h->queue.lock, flags);
	n = skb_queue_len(&batch);
	while ((skb = __skb_dequeue(&batch)) != NULL)
		lana_engine_run_queued(skb);

	if (n > 2 * LANA_HRT_TARGET)
		h->period_ns = max_t(u64, h->period_ns / 2, LANA_HRT_MIN_NS);
	else if (n < LANA_HRT_TARGET / 2)
		h->period_ns = min_t(u64, h->period_ns * 2, LANA_HRT_MAX_NS);

	if (skb_queue_empty_lockless(&h->queue))
		return HRTIMER_NORESTART;
	hrtimer_forward_now(timer, ns_to_ktime(h->period_ns));
	return HRTIMER_RESTART;
}

static void lana_hrt_enqueue(struct sk_buff *skb)
{
	struct lana_hrt_cpu *h = this_cpu_ptr(lana_hrt);

	if (!lana_engine_admit(&h->queue, skb))
		return;
	/* not from inside the expiry: a block's packet goes to the backlog */
	if (!hrtimer_is_queued(&h->timer))
		hrtimer_start(&h->timer, ns_to_ktime(h->period_ns),
			      HRTIMER_MODE_REL_PINNED_SOFT);
}

static int lana_hrt_start(void)
{
	int cpu;

	lana_hrt = alloc_percpu(struct lana_hrt_cpu);
	if (!lana_hrt)
		return -ENOMEM;
	for_each_possible_cpu(cpu) {
		struct lana_hrt_cpu *h = per_cpu_ptr(lana_hrt, cpu);

		skb_queue_head_init(&h->queue);
		hrtimer_init(&h->timer, CLOCK_MONOTONIC,
			     HRTIMER_MODE_REL_PINNED_SOFT);
		h->timer.function = lana_hrt_expire;
		h->period_ns = LANA_HRT_START_NS;
	}
	return 0;
}

static void lana_hrt_stop(void)
{
	struct sk_buff *skb;
	int cpu;

	for_each_possible_cpu(cpu) {
		struct lana_hrt_cpu *h = per_cpu_ptr(lana_hrt, cpu);

		/* waits for a running expiry; nothing arms it any more */
		hrtimer_cancel(&h->timer);
		local_bh_disable();
		while ((skb = skb_dequeue(&h->queue)) != NULL)
			lana_engine_run_queued(skb);
		local_bh_enable();
	}
	free_percpu(lana_hrt);
	lana_hrt = NULL;
}

static unsigned int lana_hrt_queued(void)
{
	unsigned int n = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		n += skb_queue_len_lockless(&per_cpu_ptr(lana_hrt, cpu)->queue);
	return n;
}

const struct lana_engine lana_engine_hrtimer = {
	.name		= "hrtimer",
	.model		= "kthr ksirq-hrt",
	.start		= lana_hrt_start,
	.stop		= lana_hrt_stop,
	.enqueue	= lana_hrt_enqueue,
	.queued		= lana_hrt_queued,
};
