/* SPDX-License-Identifier: GPL-2.0 */
/*
 * LANA core: the internal API functional blocks are written against.
 *
 * See docs/design/contracts.md section 1 for the rules every block follows
 * and docs/kernel/ for the engine, the skb->cb layout and the procfs formats.
 */
#ifndef _LANA_LANA_H
#define _LANA_LANA_H

#include <linux/types.h>
#include <linux/module.h>
#include <linux/skbuff.h>
#include <linux/seq_file.h>
#include <linux/netlink.h>
#include <linux/rcupdate.h>
#include <uapi/linux/lana.h>

typedef u32 idp_t;		/* information dispatch point; 0 = none */
#define IDP_UNKNOWN	0

enum path_type {
	TYPE_INGRESS = 0,	/* from the wire up the stack */
	TYPE_EGRESS = 1,	/* from the stack down to the wire */
	NUM_TYPES = 2,
};

enum ppe_verdict {
	PPE_SUCCESS = 0,	/* go on with the IDP the block wrote into the skb */
	PPE_DROPPED,		/* the block freed the skb */
	PPE_HALT,		/* the block consumed the skb */
};

enum fblock_mode { FB_MODE_SOURCE, FB_MODE_SINK, FB_MODE_DUAL };

/* Event commands for fblock_factory.event (and notify). */
#define FBLOCK_BIND_IDP		0x0001	/* arg: struct fblock_bind_msg * */
#define FBLOCK_UNBIND_IDP	0x0002	/* arg: struct fblock_bind_msg * */
#define FBLOCK_SET_OPT		0x0003	/* arg: char * "key=value" */
/*
 * Notification only (never sent to event): the block a subscriber listens
 * to was replaced by another instance under the same IDP (arg: const char *
 * new instance name).  The core also forwards a successful FBLOCK_SET_OPT
 * to the subscribers of the block that got it (arg: the "key=value").
 */
#define FBLOCK_NOTIFY_REPLACE	0x0101
/*
 * Notification only: a block the subscriber listens to emitted an event
 * with lana_fblock_emit() (arg: const struct fblock_event *).
 */
#define FBLOCK_NOTIFY_EVENT	0x0102

/* What FBLOCK_NOTIFY_EVENT carries (and LANA_CMD_EVENT to user space). */
struct fblock_event {
	u32 code;		/* enum lana_event (uapi) */
	u64 value;		/* what the event measured; see enum lana_event */
};

/* Engine limits: hops per packet (loop guard) and backlog depth per CPU. */
#define LANA_HOP_LIMIT		64
#define LANA_BACKLOG_MAX	1024

struct fblock_factory;

/* One instance.  Allocated and freed by the core only. */
struct fblock {
	char name[LANA_FBNAMSIZ];
	idp_t idp;
	const struct fblock_factory *factory;
	void *priv;		/* factory->priv_size bytes, zeroed, core-owned */
	/* core-private state lives in the struct that embeds this one */
};

/* One block type ("class"). */
struct fblock_factory {
	const char *type;	/* at most LANA_TYPNAMSIZ-1 chars */
	struct module *owner;	/* THIS_MODULE */
	enum fblock_mode mode;
	size_t priv_size;
	/* process context, may sleep; set up fb->priv; -errno + extack */
	int (*init)(struct fblock *fb, struct netlink_ext_ack *extack);
	/* process context, after an RCU grace period: no packet sees fb */
	void (*destroy)(struct fblock *fb);
	/* packet path: BH off, rcu_read_lock held, data at Ethernet header */
	int (*netrx)(const struct fblock *fb, struct sk_buff *skb,
		     enum path_type *dir);
	/* control path: process context, core control mutex held */
	int (*event)(struct fblock *fb, unsigned long cmd, void *arg,
		     struct netlink_ext_ack *extack);
	/* optional: an event of a block fb subscribed to (atomic context) */
	void (*notify)(struct fblock *fb, idp_t from, unsigned long cmd,
		       void *arg);
	/* optional: /proc/net/lana/fblock/<name> */
	int (*proc_show)(struct seq_file *m, struct fblock *fb);
	/* buf NUL-terminated kernel copy; len or -errno, state kept on error */
	ssize_t (*proc_write)(struct fblock *fb, const char *buf, size_t len);
};

struct fblock_bind_msg {
	enum path_type dir;
	idp_t idp;
};

int lana_register_fblock_type(struct fblock_factory *f);
void lana_unregister_fblock_type(struct fblock_factory *f);

/* engine */
int lana_process_packet(struct sk_buff *skb, idp_t first, enum path_type dir);
int lana_process_packet_from(struct sk_buff *skb, idp_t from, idp_t first,
			     enum path_type dir);
void lana_backlog_tail(struct sk_buff *skb, idp_t next, enum path_type dir);
int lana_fblock_notify_subscribers(struct fblock *fb, unsigned long cmd,
				   void *arg);
/*
 * Emit event @code (enum lana_event) with @value: the block's subscribers
 * get FBLOCK_NOTIFY_EVENT, user space a LANA_CMD_EVENT on the "events"
 * multicast group.  Any context but hard IRQ (netrx, timers, notifiers,
 * the control path); never sleeps.  Emit on changes of state, not per
 * packet.
 */
void lana_fblock_emit(const struct fblock *fb, u32 code, u64 value);

/*
 * Extra helpers (not in the contract, optional for blocks).
 *
 * lana_fblock_lookup_rcu: the instance that currently owns idp, or NULL.
 * Caller holds rcu_read_lock (always true in netrx/notify); the pointer is
 * valid until rcu_read_unlock.
 */
struct fblock *lana_fblock_lookup_rcu(idp_t idp);

/*
 * Instances made by kernel code (pflana: one per socket).  Both take the
 * core control mutex: process context, never from a block's callbacks.
 * lana_fblock_add: ctx is what the type's init gets from
 * lana_fblock_init_ctx().  lana_fblock_remove: only if the instance at idp
 * is still of type f; force unbinds and unsubscribes it first.
 */
int lana_fblock_add(const char *name, const char *type, void *ctx,
		    idp_t *idp);
int lana_fblock_remove(idp_t idp, const struct fblock_factory *f,
		       bool force);
/*
 * For a type's init only: the "key=value" string given with the add
 * (LANA_ATTR_OPT of LANA_CMD_ADD, e.g. `vlink ethernet add`), or NULL;
 * and the ctx of lana_fblock_add(), or NULL (fbctl add).
 */
const char *lana_fblock_init_opt(void);
void *lana_fblock_init_ctx(void);

/*
 * skb->cb layout while a packet is inside LANA (first bytes of cb; the rest
 * of cb is left alone).  Blocks use lana_skb_set_next, not this struct.
 */
struct lana_skb_cb {
	idp_t next;		/* IDP of the block to run next */
	u8 dir;			/* enum path_type */
	u8 hops;		/* blocks visited so far (LANA_HOP_LIMIT) */
	u16 pad;
	idp_t from;		/* block that handed the packet on, or IDP_UNKNOWN */
};

static inline struct lana_skb_cb *lana_skb_cb(struct sk_buff *skb)
{
	BUILD_BUG_ON(sizeof(struct lana_skb_cb) > sizeof(skb->cb));
	return (struct lana_skb_cb *)skb->cb;
}

/* Where the engine sends @skb after this block's netrx returns PPE_SUCCESS. */
static inline void lana_skb_set_next(struct sk_buff *skb, idp_t next)
{
	lana_skb_cb(skb)->next = next;
}

static inline idp_t lana_skb_get_next(const struct sk_buff *skb)
{
	return ((const struct lana_skb_cb *)skb->cb)->next;
}

/* The block a packet came from: a block with several lower ports uses it. */
static inline idp_t lana_skb_from(const struct sk_buff *skb)
{
	return ((const struct lana_skb_cb *)skb->cb)->from;
}

#endif /* _LANA_LANA_H */
