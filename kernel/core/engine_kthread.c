// SPDX-License-Identifier: GPL-2.0
/*
 * Engine models "kthread-hp", "kthread-np" and "kthread-cs": thesis 6.5,
 * the first three of fig. 6.12's models ("kthr hp", "kthr np", "kthr cs").
 *
 * One kernel thread per CPU, each with its own queue of packets.  The
 * entry point (the eth block's rx handler, in softirq) does not run the
 * packet: it puts it on one of the threads' queues, round-robin over the
 * CPUs that have a thread, as the thesis's upstream scheduling module did,
 * and the thread runs it through the blocks later.
 *
 *  kthread-hp  the thread runs SCHED_FIFO (high priority); it is woken for
 *              every packet and runs one packet per turn, then offers the
 *              CPU (cond_resched).  Thesis: about 700 kpps; the threads
 *              starved ksoftirqd (many context switches, few NET_RX).
 *  kthread-np  the same at normal priority (SCHED_NORMAL, nice 0), as
 *              ksoftirqd itself.  Thesis: about 750 kpps.
 *  kthread-cs  controlled scheduling: normal priority, but the producer
 *              wakes the thread only when it went to sleep on an empty
 *              queue, and the thread takes up to LANA_KTHR_BUDGET packets
 *              off its queue under one lock and runs them with BH (hence
 *              preemption) off, choosing itself where it can be preempted:
 *              between bursts.  Thesis: about 900 kpps.
 *
 * Every packet is run with BH off, as in the softirq model, so blocks see
 * the same context.  A thread stays bound to the CPU it was created for.
 */
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/skbuff.h>
#include <linux/cpu.h>
#include "internal.h"

#define LANA_KTHR_BUDGET	64	/* kthread-cs: packets per burst */

struct lana_kthr;

struct lana_kthr_cpu {
	struct sk_buff_head queue;
	struct task_struct *task;
	struct lana_kthr *k;
	unsigned int rr;		/* round-robin cursor of this CPU */
	bool idle;			/* kthread-cs: asleep on an empty queue */
};

/* one variant */
struct lana_kthr {
	const char *comm;		/* thread name, %u = CPU */
	bool fifo;			/* SCHED_FIFO */
	bool controlled;		/* kthread-cs */
	struct lana_kthr_cpu __percpu *cpu;
	struct cpumask cpus;		/* CPUs with a thread */
};

static struct lana_kthr lana_kthr_hp = {
	.comm = "lana_hp/%u", .fifo = true,
};
static struct lana_kthr lana_kthr_np = {
	.comm = "lana_np/%u",
};
static struct lana_kthr lana_kthr_cs = {
	.comm = "lana_cs/%u", .controlled = true,
};

/* Run one packet (hp, np) or one burst (cs), then offer the CPU. */
static void lana_kthr_turn(struct lana_kthr_cpu *c)
{
	struct sk_buff_head burst;
	struct sk_buff *skb;
	int n;

	if (!c->k->controlled) {
		skb = skb_dequeue(&c->queue);
		if (skb) {
			local_bh_disable();
			lana_engine_run_queued(skb);
			local_bh_enable();
		}
		cond_resched();
		return;
	}
	__skb_queue_head_init(&burst);
	spin_lock_irq(&c->queue.lock);
	for (n = 0; n < LANA_KTHR_BUDGET; n++) {
		skb = __skb_dequeue(&c->queue);
		if (!skb)
			break;
		__skb_queue_tail(&burst, skb);
	}
	spin_unlock_irq(&c->queue.lock);
	local_bh_disable();
	while ((skb = __skb_dequeue(&burst)) != NULL)
		lana_engine_run_queued(skb);
	local_bh_enable();
	cond_resched();
}

static int lana_kthr_fn(void *arg)
{
	struct lana_kthr_cpu *c = arg;

	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (skb_queue_empty_lockless(&c->queue)) {
			WRITE_ONCE(c->idle, true);
			smp_mb();	/* idle before the queue; see enqueue */
			if (skb_queue_empty_lockless(&c->queue) &&
			    !kthread_should_stop())
				schedule();
			WRITE_ONCE(c->idle, false);
			continue;
		}
		__set_current_state(TASK_RUNNING);
		lana_kthr_turn(c);
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}

static void lana_kthr_enqueue(struct lana_kthr *k, struct sk_buff *skb)
{
	struct lana_kthr_cpu *me = this_cpu_ptr(k->cpu), *c;
	unsigned int cpu;

	cpu = cpumask_next(me->rr, &k->cpus);
	if (cpu >= nr_cpu_ids)
		cpu = cpumask_first(&k->cpus);
	me->rr = cpu;
	c = per_cpu_ptr(k->cpu, cpu);
	if (!lana_engine_admit(&c->queue, skb))
		return;
	if (k->controlled) {
		smp_mb();	/* the packet before idle; pairs with lana_kthr_fn */
		if (!READ_ONCE(c->idle))
			return;
	}
	wake_up_process(c->task);
}

static void lana_kthr_stop(struct lana_kthr *k)
{
	struct sk_buff *skb;
	unsigned int cpu;

	for_each_cpu(cpu, &k->cpus) {
		struct lana_kthr_cpu *c = per_cpu_ptr(k->cpu, cpu);

		kthread_stop(c->task);
		/* what the thread left: run it here, nothing is lost */
		local_bh_disable();
		while ((skb = skb_dequeue(&c->queue)) != NULL)
			lana_engine_run_queued(skb);
		local_bh_enable();
	}
	cpumask_clear(&k->cpus);
	free_percpu(k->cpu);
	k->cpu = NULL;
}

static int lana_kthr_start(struct lana_kthr *k)
{
	unsigned int cpu;
	int ret = 0;

	k->cpu = alloc_percpu(struct lana_kthr_cpu);
	if (!k->cpu)
		return -ENOMEM;
	cpumask_clear(&k->cpus);
	for_each_possible_cpu(cpu) {
		struct lana_kthr_cpu *c = per_cpu_ptr(k->cpu, cpu);

		skb_queue_head_init(&c->queue);
		c->k = k;
		c->rr = cpu;
	}
	cpus_read_lock();
	for_each_online_cpu(cpu) {
		struct lana_kthr_cpu *c = per_cpu_ptr(k->cpu, cpu);
		struct task_struct *t;

		t = kthread_create_on_cpu(lana_kthr_fn, c, cpu, k->comm);
		if (IS_ERR(t)) {
			ret = PTR_ERR(t);
			break;
		}
		if (k->fifo)
			sched_set_fifo(t);
		c->task = t;
		cpumask_set_cpu(cpu, &k->cpus);
		wake_up_process(t);
	}
	cpus_read_unlock();
	if (ret)
		lana_kthr_stop(k);
	return ret;
}

static unsigned int lana_kthr_queued(struct lana_kthr *k)
{
	unsigned int cpu, n = 0;

	for_each_cpu(cpu, &k->cpus)
		n += skb_queue_len_lockless(&per_cpu_ptr(k->cpu, cpu)->queue);
	return n;
}

#define LANA_KTHR_ENGINE(var, ename, emodel)				\
static int lana_kthr_start_##var(void)					\
{									\
	return lana_kthr_start(&lana_kthr_##var);			\
}									\
static void lana_kthr_stop_##var(void)					\
{									\
	lana_kthr_stop(&lana_kthr_##var);				\
}									\
static void lana_kthr_enqueue_##var(struct sk_buff *skb)		\
{									\
	lana_kthr_enqueue(&lana_kthr_##var, skb);			\
}									\
static unsigned int lana_kthr_queued_##var(void)			\
{									\
	return lana_kthr_queued(&lana_kthr_##var);			\
}									\
const struct lana_engine lana_engine_kthr_##var = {			\
	.name		= ename,					\
	.model		= emodel,					\
	.start		= lana_kthr_start_##var,			\
	.stop		= lana_kthr_stop_##var,				\
	.enqueue	= lana_kthr_enqueue_##var,			\
	.queued		= lana_kthr_queued_##var,			\
}

LANA_KTHR_ENGINE(hp, "kthread-hp", "kthr hp");
LANA_KTHR_ENGINE(np, "kthread-np", "kthr np");
LANA_KTHR_ENGINE(cs, "kthread-cs", "kthr cs");
