// SPDX-License-Identifier: GPL-2.0
/*
 * LANA packet processing engine (PPE).
 *
 * Runs in the caller's context, normally the NET_RX softirq of the device
 * the eth block hooked; process-context callers disable BH around it.  One
 * engine per CPU: statistics and a backlog of packets that blocks spawned
 * (lana_backlog_tail), drained after each packet.  The packet path takes
 * no lock: IDP -> block is an RCU lookup in the IDP table (idp.c).
 *
 * Where a packet that enters LANA is run is the engine model's choice
 * (thesis 6.5, fig. 6.12): at once in the caller's softirq (engine_softirq.c,
 * the default), or queued to per-CPU kernel threads (engine_kthread.c) or
 * to a high-resolution timer in softirq (engine_hrtimer.c).  Chosen with
 * lana.engine= at load time and /proc/net/lana/engine at run time; see
 * lana_engine_select() for how a switch keeps every packet.
 *
 * skb->cb while inside LANA (struct lana_skb_cb, first 12 bytes of cb):
 *   u32 next  IDP of the block to run next
 *   u8  dir   enum path_type
 *   u8  hops  blocks visited so far; more than LANA_HOP_LIMIT drops it
 *   u32 from  IDP of the block that handed the packet on (IDP_UNKNOWN where
 *             it entered LANA without one), so a block with several lower
 *             ports knows which one a packet arrived through
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/percpu.h>
#include <linux/jump_label.h>
#include <linux/skbuff.h>
#include <linux/u64_stats_sync.h>
#include <linux/seq_file.h>
#include "internal.h"

struct lana_ppe {
	struct sk_buff_head backlog;	/* only touched by this CPU, BH off */
	bool running;			/* re-entry goes to the backlog */
	idp_t running_idp;		/* block in netrx, for spawned packets */
	u64_stats_t packets;
	u64_stats_t bytes;
	u64_stats_t calls;		/* netrx invocations */
	u64_stats_t drops;
	struct u64_stats_sync syncp;
};

static DEFINE_PER_CPU(struct lana_ppe, lana_ppe);

static void lana_ppe_count(struct lana_ppe *ppe, u64_stats_t *ctr, u64 n)
{
	u64_stats_update_begin(&ppe->syncp);
	u64_stats_add(ctr, n);
	u64_stats_update_end(&ppe->syncp);
}

/* One packet through the blocks until a block stops it. rcu held, BH off. */
static int lana_run(struct lana_ppe *ppe, struct sk_buff *skb)
{
	struct lana_skb_cb *cb = lana_skb_cb(skb);

	u64_stats_update_begin(&ppe->syncp);
	u64_stats_inc(&ppe->packets);
	u64_stats_add(&ppe->bytes, skb->len);
	u64_stats_update_end(&ppe->syncp);

	for (;;) {
		const struct fblock *fb;
		enum path_type dir;
		int ret;

		fb = lana_idp_lookup_rcu(cb->next);
		if (unlikely(!fb || cb->hops >= LANA_HOP_LIMIT ||
			     cb->dir >= NUM_TYPES))
			goto drop;
		cb->hops++;
		dir = cb->dir;
		/* A block that returns SUCCESS without a next IDP: drop. */
		cb->next = IDP_UNKNOWN;
		lana_ppe_count(ppe, &ppe->calls, 1);
		ppe->running_idp = fb->idp;
		ret = fb->factory->netrx(fb, skb, &dir);
		if (ret == PPE_SUCCESS) {
			cb->dir = dir;
			cb->from = fb->idp;
			continue;
		}
		if (ret == PPE_DROPPED)
			lana_ppe_count(ppe, &ppe->drops, 1);
		return ret;
	}
drop:
	lana_ppe_count(ppe, &ppe->drops, 1);
	kfree_skb(skb);
	return PPE_DROPPED;
}

static void lana_backlog_enqueue(struct lana_ppe *ppe, struct sk_buff *skb)
{
	if (unlikely(skb_queue_len(&ppe->backlog) >= LANA_BACKLOG_MAX ||
		     lana_skb_cb(skb)->hops >= LANA_HOP_LIMIT)) {
		lana_ppe_count(ppe, &ppe->drops, 1);
		kfree_skb(skb);
		return;
	}
	__skb_queue_tail(&ppe->backlog, skb);
}

/*
 * The current engine model.  lana_engine_deferred is on while a model that
 * queues is current (or being switched to or from), so that the softirq
 * model, the default, costs no more than a patched-out jump.
 */
static DEFINE_STATIC_KEY_FALSE(lana_engine_deferred);
static const struct lana_engine *lana_engine_cur = &lana_engine_softirq;

static const struct lana_engine *const lana_engines[] = {
	&lana_engine_softirq,
	&lana_engine_kthr_hp,
	&lana_engine_kthr_np,
	&lana_engine_kthr_cs,
	&lana_engine_hrtimer,
};

static char *engine = "softirq";
module_param(engine, charp, 0444);
MODULE_PARM_DESC(engine, "engine model at load time: softirq (default), kthread-hp, kthread-np, kthread-cs, hrtimer; later: /proc/net/lana/engine");

static atomic_long_t lana_engine_qdrops;	/* a model's queue was full */

/* Run @skb and what blocks spawn meanwhile on this CPU.  BH off. */
static __always_inline int lana_engine_run(struct lana_ppe *ppe,
					   struct sk_buff *skb)
{
	int ret;

	ppe->running = true;
	rcu_read_lock();
	ret = lana_run(ppe, skb);
	while ((skb = __skb_dequeue(&ppe->backlog)) != NULL)
		lana_run(ppe, skb);
	rcu_read_unlock();
	ppe->running = false;
	return ret;
}

/**
 * lana_engine_admit - queue @skb for a model that runs packets later
 * @q: the model's queue (locked sk_buff_head)
 * @skb: the packet, its LANA cb already set
 *
 * The queued packet holds its device (skb->dev), so that the device cannot
 * go away under it; lana_engine_run_queued() lets go.  A full queue drops
 * the packet (counted as an engine drop).  Returns whether it was queued.
 */
bool lana_engine_admit(struct sk_buff_head *q, struct sk_buff *skb)
{
	if (unlikely(skb_queue_len_lockless(q) >= LANA_ENGINE_QLEN)) {
		struct lana_ppe *ppe = this_cpu_ptr(&lana_ppe);

		lana_ppe_count(ppe, &ppe->drops, 1);
		atomic_long_inc(&lana_engine_qdrops);
		kfree_skb(skb);
		return false;
	}
	dev_hold(skb->dev);
	skb_queue_tail(q, skb);
	return true;
}

/**
 * lana_engine_run_queued - run a packet a model had queued
 * @skb: from lana_engine_admit()'s queue
 *
 * BH off (a model's thread with local_bh_disable(), or its softirq).
 */
void lana_engine_run_queued(struct sk_buff *skb)
{
	struct net_device *dev = skb->dev;

	lana_engine_run(this_cpu_ptr(&lana_ppe), skb);
	dev_put(dev);
}

static const struct lana_engine *lana_engine_find(const char *name)
{
	size_t len = strcspn(name, "\n");
	int i;

	for (i = 0; i < ARRAY_SIZE(lana_engines); i++)
		if (strlen(lana_engines[i]->name) == len &&
		    !strncmp(lana_engines[i]->name, name, len))
			return lana_engines[i];
	return NULL;
}

/**
 * lana_engine_select - make @name the current engine model
 * @name: an engine's name (a trailing newline is ignored)
 *
 * Called with lana_ctl_mutex held.  A switch keeps every packet: the new
 * model is started, packets entering LANA go to it from then on, and once
 * no CPU can still be handing a packet to the old model (synchronize_rcu:
 * every entry runs with BH off), the old model runs what it still holds
 * and stops.  Packets the old model held may therefore be run after a few
 * the new one took, never lost or run twice.  Returns 0, -EINVAL for an
 * unknown name, or the new model's start error (the old one stays).
 */
int lana_engine_select(const char *name)
{
	const struct lana_engine *old = lana_engine_cur, *new;
	int ret;

	lockdep_assert_held(&lana_ctl_mutex);
	new = lana_engine_find(name);
	if (!new)
		return -EINVAL;
	if (new == old)
		return 0;
	if (new->start) {
		ret = new->start();
		if (ret)
			return ret;
	}
	if (new->enqueue)
		static_branch_enable(&lana_engine_deferred);
	smp_store_release(&lana_engine_cur, new);
	synchronize_rcu();
	if (old->stop)
		old->stop();
	if (!new->enqueue)
		static_branch_disable(&lana_engine_deferred);
	pr_info(LANA_PFX "engine %s (thesis model %s)\n", new->name, new->model);
	return 0;
}

int lana_engine_show(struct seq_file *m, void *v)
{
	const struct lana_engine *cur;
	int i;

	mutex_lock(&lana_ctl_mutex);
	cur = lana_engine_cur;
	for (i = 0; i < ARRAY_SIZE(lana_engines); i++)
		seq_printf(m, i ? " %s%s%s" : "%s%s%s",
			   lana_engines[i] == cur ? "[" : "",
			   lana_engines[i]->name,
			   lana_engines[i] == cur ? "]" : "");
	seq_printf(m, "\nmodel %s\nqueued %u\nqdrops %ld\n", cur->model,
		   cur->queued ? cur->queued() : 0,
		   atomic_long_read(&lana_engine_qdrops));
	mutex_unlock(&lana_ctl_mutex);
	return 0;
}

/**
 * lana_process_packet - run @skb through LANA starting at block @first
 * @skb: the packet, skb->data at the Ethernet header
 * @first: IDP of the first block to run
 * @dir: TYPE_INGRESS or TYPE_EGRESS
 *
 * BH must be disabled (NET_RX softirq, or local_bh_disable()).  Consumes
 * the skb in every case.  Returns the verdict for @skb itself; packets that
 * blocks spawned meanwhile are processed before returning.
 */
int lana_process_packet(struct sk_buff *skb, idp_t first, enum path_type dir)
{
	return lana_process_packet_from(skb, IDP_UNKNOWN, first, dir);
}
EXPORT_SYMBOL_GPL(lana_process_packet);

/**
 * lana_process_packet_from - lana_process_packet for an entry block
 * @skb: the packet, skb->data at the Ethernet header
 * @from: IDP of the block the packet enters through (e.g. the eth block)
 * @first: IDP of the first block to run
 * @dir: TYPE_INGRESS or TYPE_EGRESS
 *
 * As lana_process_packet(), but @first sees @from as the packet's origin.
 */
int lana_process_packet_from(struct sk_buff *skb, idp_t from, idp_t first,
			     enum path_type dir)
{
	struct lana_ppe *ppe;
	struct lana_skb_cb *cb;

	if (WARN_ON_ONCE(!in_softirq() && !irqs_disabled())) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	ppe = this_cpu_ptr(&lana_ppe);
	cb = lana_skb_cb(skb);
	cb->next = first;
	cb->dir = dir;
	cb->hops = 0;
	cb->pad = 0;
	cb->from = from;
	if (ppe->running) {
		/* A block re-entered the engine: finish the outer packet first. */
		lana_backlog_enqueue(ppe, skb);
		return PPE_HALT;
	}
	if (static_branch_unlikely(&lana_engine_deferred)) {
		const struct lana_engine *eng = smp_load_acquire(&lana_engine_cur);

		/* BH off: lana_engine_select()'s synchronize_rcu() waits for us */
		if (eng->enqueue) {
			eng->enqueue(skb);
			return PPE_HALT;
		}
	}
	return lana_engine_run(ppe, skb);
}
EXPORT_SYMBOL_GPL(lana_process_packet_from);

/**
 * lana_backlog_tail - queue a packet a block spawned (clone, reply)
 * @skb: the new packet
 * @next: IDP of the block it goes to
 * @dir: its direction
 *
 * Processed by this CPU's engine after the current packet.  Call with BH
 * disabled (always the case in netrx).  Keeps the hop count in skb->cb so
 * that spawning cannot loop forever.
 */
void lana_backlog_tail(struct sk_buff *skb, idp_t next, enum path_type dir)
{
	struct lana_skb_cb *cb = lana_skb_cb(skb);
	struct lana_ppe *ppe;

	if (WARN_ON_ONCE(!in_softirq() && !irqs_disabled())) {
		kfree_skb(skb);
		return;
	}
	ppe = this_cpu_ptr(&lana_ppe);

	cb->next = next;
	cb->dir = dir;
	cb->from = ppe->running ? ppe->running_idp : IDP_UNKNOWN;
	lana_backlog_enqueue(ppe, skb);
}
EXPORT_SYMBOL_GPL(lana_backlog_tail);

int lana_ppe_show(struct seq_file *m, void *v)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct lana_ppe *ppe = per_cpu_ptr(&lana_ppe, cpu);
		u64 packets, bytes, calls, drops;
		unsigned int start;

		do {
			start = u64_stats_fetch_begin(&ppe->syncp);
			packets = u64_stats_read(&ppe->packets);
			bytes = u64_stats_read(&ppe->bytes);
			calls = u64_stats_read(&ppe->calls);
			drops = u64_stats_read(&ppe->drops);
		} while (u64_stats_fetch_retry(&ppe->syncp, start));
		seq_printf(m, "CPU%d: %llu %llu %llu %llu %u\n", cpu, packets,
			   bytes, calls, drops,
			   skb_queue_len_lockless(&ppe->backlog));
	}
	return 0;
}

int lana_engine_init(void)
{
	int cpu, ret;

	for_each_possible_cpu(cpu) {
		struct lana_ppe *ppe = per_cpu_ptr(&lana_ppe, cpu);

		__skb_queue_head_init(&ppe->backlog);
		u64_stats_init(&ppe->syncp);
	}
	mutex_lock(&lana_ctl_mutex);
	ret = lana_engine_select(engine);
	mutex_unlock(&lana_ctl_mutex);
	if (ret == -EINVAL)
		pr_err(LANA_PFX "engine=%s: no such engine; softirq, kthread-hp, kthread-np, kthread-cs or hrtimer\n",
		       engine);
	return ret;
}

void lana_engine_exit(void)
{
	int cpu;

	/* Back to the softirq model: the queued models run what they hold. */
	mutex_lock(&lana_ctl_mutex);
	lana_engine_select(lana_engine_softirq.name);
	mutex_unlock(&lana_ctl_mutex);
	/* No block is left, so nothing can queue any more. */
	for_each_possible_cpu(cpu)
		__skb_queue_purge(&per_cpu_ptr(&lana_ppe, cpu)->backlog);
}
