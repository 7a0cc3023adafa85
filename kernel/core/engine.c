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
 * skb->cb while inside LANA (struct lana_skb_cb, first 12 bytes of cb):
 *   u32 next  IDP of the block to run next
 *   u8  dir   enum path_type
 *   u8  hops  blocks visited so far; more than LANA_HOP_LIMIT drops it
 *   u32 from  IDP of the block that handed the packet on (IDP_UNKNOWN where
 *             it entered LANA without one), so a block with several lower
 *             ports knows which one a packet arrived through
 */
#include <linux/kernel.h>
#include <linux/percpu.h>
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
	int ret;

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
	ppe->running = true;
	rcu_read_lock();
	ret = lana_run(ppe, skb);
	while ((skb = __skb_dequeue(&ppe->backlog)) != NULL)
		lana_run(ppe, skb);
	rcu_read_unlock();
	ppe->running = false;
	return ret;
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
	int cpu;

	for_each_possible_cpu(cpu) {
		struct lana_ppe *ppe = per_cpu_ptr(&lana_ppe, cpu);

		__skb_queue_head_init(&ppe->backlog);
		u64_stats_init(&ppe->syncp);
	}
	return 0;
}

void lana_engine_exit(void)
{
	int cpu;

	/* No block is left, so nothing can queue any more. */
	for_each_possible_cpu(cpu)
		__skb_queue_purge(&per_cpu_ptr(&lana_ppe, cpu)->backlog);
}
