/* SPDX-License-Identifier: GPL-2.0 */
/*
 * LANA core internals shared by the files of lana.ko (not for blocks).
 *
 * Locking:
 *  - lana_ctl_mutex serialises every control operation (netlink, procfs
 *    writes, per-instance proc files) and guards the instance list and the
 *    binding/subscription graph.
 *  - the type registry has its own mutex (lana_types_mutex) so that
 *    request_module() may run under lana_ctl_mutex while the module being
 *    loaded registers its type.
 *  - the packet path reads only RCU-protected data: the IDP table and
 *    each instance's subscriber array.
 */
#ifndef _LANA_CORE_INTERNAL_H
#define _LANA_CORE_INTERNAL_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/rcupdate.h>
#include <linux/proc_fs.h>
#include <lana/lana.h>

#define LANA_PFX "lana: "

/* One instance as the core sees it; blocks only see ->fb. */
struct lana_inst {
	struct fblock fb;
	struct list_head node;		/* lana_instances, ctl mutex */
	refcount_t refcnt;		/* 1 + bindings + subscription ends */
	atomic64_t events;		/* notifications delivered to it */
	struct list_head subscribers;	/* struct lana_sub, RCU list */
	struct proc_dir_entry *proc;	/* /proc/net/lana/fblock/<name> */
};

static inline struct lana_inst *lana_inst(const struct fblock *fb)
{
	return container_of(fb, struct lana_inst, fb);
}

/* Edges of the graph, keyed by IDP so that replace moves them for free. */
struct lana_bind {
	struct list_head node;
	idp_t upper;			/* A in "bind A B" */
	idp_t lower;			/* B */
};

#define LANA_SUB_EXPLICIT	0x1	/* fbctl subscribe */
#define LANA_SUB_BOUND		0x2	/* implied by a binding */

/* "subscriber gets the publisher's notifications"; on the publisher's list */
struct lana_sub {
	struct list_head node;		/* publisher's subscribers, RCU */
	struct rcu_head rcu;
	idp_t subscriber;
	unsigned int flags;		/* LANA_SUB_*, ctl mutex */
};

extern struct mutex lana_ctl_mutex;
extern struct list_head lana_instances;
extern struct list_head lana_binds;
extern struct proc_dir_entry *lana_proc_dir;
extern struct proc_dir_entry *lana_proc_fblock_dir;

/* idp.c: IDPs 1..LANA_IDP_MAX; 0 is IDP_UNKNOWN and never mapped */
#define LANA_IDP_MAX	65535

struct lana_idp_table {
	struct rcu_head rcu;
	u32 size;			/* IDPs 0..size-1 have a slot */
	struct fblock __rcu *fb[];
};

extern struct lana_idp_table __rcu *lana_idp_table;

/* The block at @idp, or NULL.  Caller holds rcu_read_lock (the engine). */
static inline struct fblock *lana_idp_lookup_rcu(idp_t idp)
{
	const struct lana_idp_table *t = rcu_dereference(lana_idp_table);

	if (unlikely(idp >= t->size))
		return NULL;
	return rcu_dereference(t->fb[idp]);
}

int lana_idp_init(void);
void lana_idp_exit(void);
int lana_idp_alloc(idp_t *idp);
void lana_idp_publish(idp_t idp, struct fblock *fb);
void lana_idp_free(idp_t idp);

/* registry.c */
const struct fblock_factory *lana_factory_get(const char *type);
void lana_factory_put(const struct fblock_factory *f);
int lana_types_show(struct seq_file *m);

/* fblock.c: all called with lana_ctl_mutex held */
void lana_err(struct netlink_ext_ack *extack, const char *fmt, ...)
	__printf(2, 3);
int lana_check_name(const char *name, struct netlink_ext_ack *extack);
struct lana_inst *lana_find(const char *name);
struct lana_inst *lana_find_idp(idp_t idp);
int lana_add(const char *name, const char *type,
	     struct netlink_ext_ack *extack);
int lana_rm(const char *name, struct netlink_ext_ack *extack);
int lana_set(const char *name, const char *opt,
	     struct netlink_ext_ack *extack);
int lana_bind(const char *a, const char *b, struct netlink_ext_ack *extack);
int lana_unbind(const char *a, const char *b, struct netlink_ext_ack *extack);
int lana_subscribe(const char *a, const char *b,
		   struct netlink_ext_ack *extack);
int lana_unsubscribe(const char *a, const char *b,
		     struct netlink_ext_ack *extack);
int lana_replace(const char *old, const char *new, bool drop_priv,
		 struct netlink_ext_ack *extack);
void lana_rm_all(void);
int lana_add_opt(const char *name, const char *type, const char *opt,
		 struct netlink_ext_ack *extack);
int lana_insert(const char *x, const char *a, struct netlink_ext_ack *extack);
int lana_cut(const char *x, struct netlink_ext_ack *extack);

/* engine.c: the packet path, and the choice of engine model */
int lana_engine_init(void);
void lana_engine_exit(void);
int lana_ppe_show(struct seq_file *m, void *v);
int lana_engine_show(struct seq_file *m, void *v);
int lana_engine_select(const char *name);

/*
 * An engine model (thesis 6.5, fig. 6.12): where and when the engine runs
 * a packet that entered LANA.  @enqueue NULL: at once, in the caller's
 * context (the softirq model).  Otherwise @enqueue takes the packet (BH
 * off, any context the packet path runs in) and the model runs it later
 * with lana_engine_run_queued().  @start and @stop run in process context
 * under lana_ctl_mutex; @stop is called once nothing can enqueue any more
 * and must run every packet still queued before it returns.
 */
struct lana_engine {
	const char *name;
	const char *model;		/* its name in the thesis's fig. 6.12 */
	int (*start)(void);
	void (*stop)(void);
	void (*enqueue)(struct sk_buff *skb);
	unsigned int (*queued)(void);	/* packets waiting, all CPUs */
};

#define LANA_ENGINE_QLEN	1024	/* per queue; more is dropped */

extern const struct lana_engine lana_engine_softirq;
extern const struct lana_engine lana_engine_kthr_hp;
extern const struct lana_engine lana_engine_kthr_np;
extern const struct lana_engine lana_engine_kthr_cs;
extern const struct lana_engine lana_engine_hrtimer;

/* for the models: BH off, RCU not needed (taken inside) */
bool lana_engine_admit(struct sk_buff_head *q, struct sk_buff *skb);
void lana_engine_run_queued(struct sk_buff *skb);

/* procfs.c */
int lana_procfs_init(void);
void lana_procfs_exit(void);
int lana_proc_inst_add(struct lana_inst *li);
void lana_proc_inst_del(struct lana_inst *li);

/* netlink.c */
int lana_netlink_init(void);
void lana_netlink_exit(void);
void lana_netlink_event(const struct fblock *fb, u32 code, u64 value);

#endif /* _LANA_CORE_INTERNAL_H */
