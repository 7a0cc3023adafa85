// SPDX-License-Identifier: GPL-2.0
/*
 * LANA builder, registry of instances, binding graph and notifier.
 *
 * Every function here except lana_fblock_notify_subscribers() runs with
 * lana_ctl_mutex held.  Edges of the graph (bindings, subscriptions) are
 * kept by IDP, so that `replace`, which hands the IDP of the old instance
 * to the new one, moves them without touching them.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/ctype.h>
#include <linux/string.h>
#include <linux/rculist.h>
#include <linux/bottom_half.h>
#include "internal.h"

DEFINE_MUTEX(lana_ctl_mutex);
LIST_HEAD(lana_instances);
LIST_HEAD(lana_binds);

/*
 * extack messages with the names in them.  Only netlink doit handlers pass
 * an extack; they are serialised by the genetlink mutex (the family is not
 * parallel_ops) which is still held when the ACK copies the message.
 */
static char lana_errbuf[160];

void lana_err(struct netlink_ext_ack *extack, const char *fmt, ...)
{
	va_list ap;

	if (!extack)
		return;
	va_start(ap, fmt);
	vsnprintf(lana_errbuf, sizeof(lana_errbuf), fmt, ap);
	va_end(ap);
	extack->_msg = lana_errbuf;
}

/* A block that failed without saying why still gets a readable reason. */
static __printf(2, 3) void lana_err_default(struct netlink_ext_ack *extack, const char *fmt,
			     ...)
{
	va_list ap;

	if (!extack || extack->_msg)
		return;
	va_start(ap, fmt);
	vsnprintf(lana_errbuf, sizeof(lana_errbuf), fmt, ap);
	va_end(ap);
	extack->_msg = lana_errbuf;
}

int lana_check_name(const char *name, struct netlink_ext_ack *extack)
{
	size_t len, i;

	if (!name || !*name) {
		lana_err(extack, "empty instance name; use 1..%d characters of A-Z a-z 0-9 _ . -",
			 LANA_FBNAMSIZ - 1);
		return -EINVAL;
	}
	len = strnlen(name, LANA_FBNAMSIZ);
	if (len >= LANA_FBNAMSIZ) {
		lana_err(extack, "instance name too long: at most %d characters",
			 LANA_FBNAMSIZ - 1);
		return -ENAMETOOLONG;
	}
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		lana_err(extack, "'%s' is not a usable instance name (it names a directory)",
			 name);
		return -EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (!isalnum(name[i]) && !strchr("_.-", name[i])) {
			lana_err(extack, "bad character in instance name '%s': use only A-Z a-z 0-9 _ . -",
				 name);
			return -EINVAL;
		}
	}
	return 0;
}

struct lana_inst *lana_find(const char *name)
{
	struct lana_inst *li;

	list_for_each_entry(li, &lana_instances, node)
		if (!strcmp(li->fb.name, name))
			return li;
	return NULL;
}

struct lana_inst *lana_find_idp(idp_t idp)
{
	struct lana_inst *li;

	list_for_each_entry(li, &lana_instances, node)
		if (li->fb.idp == idp)
			return li;
	return NULL;
}

static struct lana_inst *lana_find_err(const char *name,
				       struct netlink_ext_ack *extack)
{
	struct lana_inst *li = lana_find(name);

	if (!li)
		lana_err(extack, "no instance named '%s' (see fbctl list)",
			 name);
	return li;
}

/* ---- notifier ---------------------------------------------------------- */

/**
 * lana_fblock_notify_subscribers - deliver an event to @fb's subscribers
 * @fb: the publisher
 * @cmd: event command, passed to each subscriber's notify op
 * @arg: event payload, passed on as is
 *
 * Any context (packet path or control path).  Each subscriber's notify op
 * runs under rcu_read_lock and must not sleep.  Returns how many
 * subscribers got the event.
 */
int lana_fblock_notify_subscribers(struct fblock *fb, unsigned long cmd,
				   void *arg)
{
	struct lana_inst *li = lana_inst(fb);
	struct lana_sub *s;
	int n = 0;

	/*
	 * notify ops take BH-safe locks with plain spin_lock (they run from
	 * the packet path too); from process context keep softirqs off.
	 */
	local_bh_disable();
	rcu_read_lock();
	list_for_each_entry_rcu(s, &li->subscribers, node) {
		struct fblock *to = lana_fblock_lookup_rcu(s->subscriber);

		if (!to)
			continue;
		atomic64_inc(&lana_inst(to)->events);
		if (to->factory->notify)
			to->factory->notify(to, READ_ONCE(fb->idp), cmd, arg);
		n++;
	}
	rcu_read_unlock();
	local_bh_enable();
	return n;
}
EXPORT_SYMBOL_GPL(lana_fblock_notify_subscribers);

/**
 * lana_fblock_emit - a block announces an event
 * @fb: the publisher (the block's own instance)
 * @code: enum lana_event
 * @value: what it measured (rate, drops, ifindex: see enum lana_event)
 *
 * Subscribers get FBLOCK_NOTIFY_EVENT with a struct fblock_event, user
 * space a LANA_CMD_EVENT notification on the "events" group.  Any context
 * but hard IRQ; never sleeps.  Blocks emit on changes of state (a
 * threshold crossed), never per packet.
 */
void lana_fblock_emit(const struct fblock *fb, u32 code, u64 value)
{
	struct fblock_event ev = { .code = code, .value = value };

	/*
	 * User space first: a subscriber's reaction (a limiter that starts
	 * dropping) may emit on another CPU at once, and listeners should see
	 * the cause before the effect.
	 */
	lana_netlink_event(fb, code, value);
	/* the notifier's API predates const; it changes nothing in @fb */
	lana_fblock_notify_subscribers((struct fblock *)fb, FBLOCK_NOTIFY_EVENT,
				       &ev);
}
EXPORT_SYMBOL_GPL(lana_fblock_emit);

static struct lana_sub *lana_sub_find(struct lana_inst *pub, idp_t sub)
{
	struct lana_sub *s;

	list_for_each_entry(s, &pub->subscribers, node)
		if (s->subscriber == sub)
			return s;
	return NULL;
}

/* Add @flag to the edge sub->pub; @spare is used if a new edge is needed. */
static void lana_sub_set(struct lana_inst *sub, struct lana_inst *pub,
			 unsigned int flag, struct lana_sub **spare)
{
	struct lana_sub *s = lana_sub_find(pub, sub->fb.idp);

	if (s) {
		s->flags |= flag;
		return;
	}
	s = *spare;
	*spare = NULL;
	s->subscriber = sub->fb.idp;
	s->flags = flag;
	list_add_tail_rcu(&s->node, &pub->subscribers);
	refcount_inc(&sub->refcnt);
	refcount_inc(&pub->refcnt);
}

static void lana_sub_clear(struct lana_inst *sub, struct lana_inst *pub,
			   unsigned int flag)
{
	struct lana_sub *s = lana_sub_find(pub, sub->fb.idp);

	if (!s)
		return;
	s->flags &= ~flag;
	if (s->flags)
		return;
	list_del_rcu(&s->node);
	kfree_rcu(s, rcu);
	refcount_dec(&sub->refcnt);
	refcount_dec(&pub->refcnt);
}

int lana_subscribe(const char *a, const char *b,
		   struct netlink_ext_ack *extack)
{
	struct lana_inst *sub, *pub;
	struct lana_sub *s, *spare;

	sub = lana_find_err(a, extack);
	if (!sub)
		return -ENOENT;
	pub = lana_find_err(b, extack);
	if (!pub)
		return -ENOENT;
	if (sub == pub) {
		lana_err(extack, "'%s' cannot subscribe to itself", a);
		return -EINVAL;
	}
	s = lana_sub_find(pub, sub->fb.idp);
	if (s && (s->flags & LANA_SUB_EXPLICIT)) {
		lana_err(extack, "'%s' is already subscribed to '%s'", a, b);
		return -EEXIST;
	}
	spare = kzalloc(sizeof(*spare), GFP_KERNEL);
	if (!spare)
		return -ENOMEM;
	lana_sub_set(sub, pub, LANA_SUB_EXPLICIT, &spare);
	kfree(spare);
	return 0;
}

int lana_unsubscribe(const char *a, const char *b,
		     struct netlink_ext_ack *extack)
{
	struct lana_inst *sub, *pub;
	struct lana_sub *s;

	sub = lana_find_err(a, extack);
	if (!sub)
		return -ENOENT;
	pub = lana_find_err(b, extack);
	if (!pub)
		return -ENOENT;
	s = lana_sub_find(pub, sub->fb.idp);
	if (!s || !(s->flags & LANA_SUB_EXPLICIT)) {
		if (s)
			lana_err(extack, "'%s' gets events of '%s' only through their binding; unbind them instead",
				 a, b);
		else
			lana_err(extack, "'%s' is not subscribed to '%s'", a,
				 b);
		return -ENOENT;
	}
	lana_sub_clear(sub, pub, LANA_SUB_EXPLICIT);
	return 0;
}

/* ---- bindings ---------------------------------------------------------- */

static struct lana_bind *lana_bind_find(idp_t upper, idp_t lower)
{
	struct lana_bind *e;

	list_for_each_entry(e, &lana_binds, node)
		if (e->upper == upper && e->lower == lower)
			return e;
	return NULL;
}

static bool lana_is_bound(idp_t idp, struct lana_bind **edge)
{
	struct lana_bind *e;

	list_for_each_entry(e, &lana_binds, node) {
		if (e->upper == idp || e->lower == idp) {
			*edge = e;
			return true;
		}
	}
	return false;
}

/*
 * Would a new edge upper -> lower close a cycle?  Yes if upper can already
 * be reached from lower going down (lower -> ... -> upper).  Depth-first
 * walk with an explicit stack; the graph is small (one node per instance).
 */
static int lana_reaches(idp_t from, idp_t to, bool *found)
{
	struct lana_inst *li;
	struct lana_bind *e;
	size_t n = 0, top = 0, i;
	idp_t *stack, *seen;
	size_t nseen = 0;

	list_for_each_entry(li, &lana_instances, node)
		n++;
	stack = kcalloc(n + 1, sizeof(*stack), GFP_KERNEL);
	seen = kcalloc(n + 1, sizeof(*seen), GFP_KERNEL);
	if (!stack || !seen) {
		kfree(stack);
		kfree(seen);
		return -ENOMEM;
	}
	*found = false;
	stack[top++] = from;
	seen[nseen++] = from;
	while (top && !*found) {
		idp_t cur = stack[--top];

		list_for_each_entry(e, &lana_binds, node) {
			bool known = false;

			if (e->upper != cur)
				continue;
			if (e->lower == to) {
				*found = true;
				break;
			}
			for (i = 0; i < nseen; i++)
				known |= seen[i] == e->lower;
			if (known || nseen > n || top > n)
				continue;
			seen[nseen++] = e->lower;
			stack[top++] = e->lower;
		}
	}
	kfree(stack);
	kfree(seen);
	return 0;
}

static int lana_send_bind(struct lana_inst *li, unsigned long cmd,
			  enum path_type dir, idp_t idp,
			  struct netlink_ext_ack *extack)
{
	struct fblock_bind_msg msg = { .dir = dir, .idp = idp };
	int ret;

	ret = li->fb.factory->event(&li->fb, cmd, &msg, extack);
	if (ret)
		lana_err_default(extack, "'%s' (%s) refused to %s its %s port: error %d",
				 li->fb.name, li->fb.factory->type,
				 cmd == FBLOCK_BIND_IDP ? "bind" : "unbind",
				 dir == TYPE_INGRESS ? "ingress" : "egress",
				 ret);
	return ret;
}

int lana_bind(const char *a, const char *b, struct netlink_ext_ack *extack)
{
	struct lana_sub *spare_ab = NULL, *spare_ba = NULL;
	struct lana_inst *up, *lo;
	struct lana_bind *e;
	bool loop;
	int ret;

	up = lana_find_err(a, extack);
	if (!up)
		return -ENOENT;
	lo = lana_find_err(b, extack);
	if (!lo)
		return -ENOENT;
	if (up == lo) {
		lana_err(extack, "cannot bind '%s' to itself", a);
		return -EINVAL;
	}
	if (lana_bind_find(up->fb.idp, lo->fb.idp)) {
		lana_err(extack, "'%s' is already bound on top of '%s'", a, b);
		return -EEXIST;
	}
	ret = lana_reaches(lo->fb.idp, up->fb.idp, &loop);
	if (ret)
		return ret;
	if (loop) {
		lana_err(extack, "binding '%s' on top of '%s' would close a loop: '%s' already sits on top of '%s'",
			 a, b, b, a);
		return -ELOOP;
	}

	ret = -ENOMEM;
	e = kzalloc(sizeof(*e), GFP_KERNEL);
	spare_ab = kzalloc(sizeof(*spare_ab), GFP_KERNEL);
	spare_ba = kzalloc(sizeof(*spare_ba), GFP_KERNEL);
	if (!e || !spare_ab || !spare_ba)
		goto out_free;

	/* A on top of B: A's egress goes to B, B's ingress goes up to A. */
	ret = lana_send_bind(up, FBLOCK_BIND_IDP, TYPE_EGRESS, lo->fb.idp,
			     extack);
	if (ret)
		goto out_free;
	ret = lana_send_bind(lo, FBLOCK_BIND_IDP, TYPE_INGRESS, up->fb.idp,
			     extack);
	if (ret) {
		lana_send_bind(up, FBLOCK_UNBIND_IDP, TYPE_EGRESS, lo->fb.idp,
			       NULL);
		goto out_free;
	}

	e->upper = up->fb.idp;
	e->lower = lo->fb.idp;
	list_add_tail(&e->node, &lana_binds);
	refcount_inc(&up->refcnt);
	refcount_inc(&lo->refcnt);
	/* Bound blocks subscribe to each other (thesis 4.2.1). */
	lana_sub_set(up, lo, LANA_SUB_BOUND, &spare_ab);
	lana_sub_set(lo, up, LANA_SUB_BOUND, &spare_ba);
	e = NULL;
	ret = 0;
out_free:
	kfree(e);
	kfree(spare_ab);
	kfree(spare_ba);
	return ret;
}

int lana_unbind(const char *a, const char *b, struct netlink_ext_ack *extack)
{
	struct lana_inst *up, *lo;
	struct lana_bind *e;
	int ret;

	up = lana_find_err(a, extack);
	if (!up)
		return -ENOENT;
	lo = lana_find_err(b, extack);
	if (!lo)
		return -ENOENT;
	e = lana_bind_find(up->fb.idp, lo->fb.idp);
	if (!e) {
		if (lana_bind_find(lo->fb.idp, up->fb.idp))
			lana_err(extack, "'%s' is not on top of '%s', it is the other way round: use 'unbind %s %s'",
				 a, b, b, a);
		else
			lana_err(extack, "'%s' is not bound to '%s'", a, b);
		return -ENOENT;
	}
	ret = lana_send_bind(up, FBLOCK_UNBIND_IDP, TYPE_EGRESS, lo->fb.idp,
			     extack);
	if (ret)
		return ret;
	ret = lana_send_bind(lo, FBLOCK_UNBIND_IDP, TYPE_INGRESS, up->fb.idp,
			     extack);
	if (ret) {
		lana_send_bind(up, FBLOCK_BIND_IDP, TYPE_EGRESS, lo->fb.idp,
			       NULL);
		return ret;
	}
	list_del(&e->node);
	kfree(e);
	refcount_dec(&up->refcnt);
	refcount_dec(&lo->refcnt);
	lana_sub_clear(up, lo, LANA_SUB_BOUND);
	lana_sub_clear(lo, up, LANA_SUB_BOUND);
	return 0;
}

/* ---- builder ----------------------------------------------------------- */

/*
 * Tear down an instance that is no longer reachable by name or IDP:
 * wait for the packets that may still see it, then let the block clean up.
 */
static void lana_inst_free(struct lana_inst *li)
{
	lana_proc_inst_del(li);
	synchronize_rcu();
	li->fb.factory->destroy(&li->fb);
	kfree(li->fb.priv);
	lana_factory_put(li->fb.factory);
	kfree(li);
}

int lana_add(const char *name, const char *type,
	     struct netlink_ext_ack *extack)
{
	const struct fblock_factory *f;
	struct lana_inst *li;
	u32 idp;
	int ret;

	ret = lana_check_name(name, extack);
	if (ret)
		return ret;
	if (lana_find(name)) {
		lana_err(extack, "an instance named '%s' exists already; pick another name or rm it first",
			 name);
		return -EEXIST;
	}
	if (!type || !*type) {
		lana_err(extack, "empty block type");
		return -EINVAL;
	}
	f = lana_factory_get(type);
	if (!f) {
		lana_err(extack, "unknown block type '%s': no loaded module provides it (modprobe fb_%s?)",
			 type, type);
		return -ENOENT;
	}

	ret = -ENOMEM;
	li = kzalloc(sizeof(*li), GFP_KERNEL);
	if (!li)
		goto err_put;
	if (f->priv_size) {
		li->fb.priv = kzalloc(f->priv_size, GFP_KERNEL);
		if (!li->fb.priv)
			goto err_free;
	}
	strscpy(li->fb.name, name, sizeof(li->fb.name));
	li->fb.factory = f;
	refcount_set(&li->refcnt, 1);
	atomic64_set(&li->events, 0);
	INIT_LIST_HEAD(&li->subscribers);

	/* Reserve the IDP (lookups see NULL) until init has succeeded. */
	ret = lana_idp_alloc(&idp);
	if (ret < 0) {
		lana_err(extack, ret == -ENOMEM ? "out of memory for the IDP table" :
			 "out of IDPs: %d instances exist", LANA_IDP_MAX);
		goto err_free;
	}
	li->fb.idp = idp;

	ret = f->init(&li->fb, extack);
	if (ret) {
		lana_err_default(extack, "block type '%s' failed to set up '%s': error %d",
				 type, name, ret);
		goto err_idp;
	}
	ret = lana_proc_inst_add(li);
	if (ret) {
		lana_err(extack, "cannot create /proc/net/lana/fblock/%s",
			 name);
		goto err_destroy;
	}
	lana_idp_publish(idp, &li->fb);
	list_add_tail(&li->node, &lana_instances);
	return 0;

err_destroy:
	f->destroy(&li->fb);
err_idp:
	lana_idp_free(idp);
err_free:
	if (li)
		kfree(li->fb.priv);
	kfree(li);
err_put:
	lana_factory_put(f);
	return ret;
}

/* Drop the subscriptions @li holds to others (it is going away). */
static void lana_drop_own_subs(struct lana_inst *li)
{
	struct lana_inst *pub;

	list_for_each_entry(pub, &lana_instances, node)
		lana_sub_clear(li, pub, LANA_SUB_EXPLICIT | LANA_SUB_BOUND);
}

int lana_rm(const char *name, struct netlink_ext_ack *extack)
{
	struct lana_inst *li, *other;
	struct lana_bind *e;
	struct lana_sub *s;

	li = lana_find_err(name, extack);
	if (!li)
		return -ENOENT;
	if (lana_is_bound(li->fb.idp, &e)) {
		other = lana_find_idp(e->upper == li->fb.idp ? e->lower :
				      e->upper);
		lana_err(extack, "'%s' is bound to '%s'; unbind it first",
			 name, other ? other->fb.name : "?");
		return -EBUSY;
	}
	list_for_each_entry(s, &li->subscribers, node) {
		other = lana_find_idp(s->subscriber);
		lana_err(extack, "'%s' is subscribed to '%s'; run 'fbctl unsubscribe %s %s' first",
			 other ? other->fb.name : "?", name,
			 other ? other->fb.name : "?", name);
		return -EBUSY;
	}
	lana_drop_own_subs(li);
	lana_idp_free(li->fb.idp);
	list_del(&li->node);
	WARN_ON(!refcount_dec_and_test(&li->refcnt));
	lana_inst_free(li);
	return 0;
}

int lana_set(const char *name, const char *opt,
	     struct netlink_ext_ack *extack)
{
	char buf[LANA_OPTSIZ];
	struct lana_inst *li;
	const char *eq;
	int ret;

	li = lana_find_err(name, extack);
	if (!li)
		return -ENOENT;
	if (!opt || strscpy(buf, opt, sizeof(buf)) < 0) {
		lana_err(extack, "option too long: at most %d characters",
			 LANA_OPTSIZ - 1);
		return -EINVAL;
	}
	eq = strchr(buf, '=');
	if (!eq || eq == buf) {
		lana_err(extack, "option must look like key=value");
		return -EINVAL;
	}
	ret = li->fb.factory->event(&li->fb, FBLOCK_SET_OPT, buf, extack);
	if (ret == -EOPNOTSUPP)
		lana_err_default(extack, "block type '%s' has no options",
				 li->fb.factory->type);
	else if (ret)
		lana_err_default(extack, "'%s' (%s) rejected '%s': error %d",
				 name, li->fb.factory->type, buf, ret);
	if (ret)
		return ret;
	lana_fblock_notify_subscribers(&li->fb, FBLOCK_SET_OPT, buf);
	return 0;
}

/* Undo the first @n port bindings replayed to @li in lana_replace(). */
static void lana_replay_undo(struct lana_inst *li, idp_t old, unsigned int n)
{
	struct lana_bind *e;

	list_for_each_entry(e, &lana_binds, node) {
		if (!n)
			return;
		if (e->upper == old) {
			lana_send_bind(li, FBLOCK_UNBIND_IDP, TYPE_EGRESS,
				       e->lower, NULL);
			n--;
		} else if (e->lower == old) {
			lana_send_bind(li, FBLOCK_UNBIND_IDP, TYPE_INGRESS,
				       e->upper, NULL);
			n--;
		}
	}
}

/* Replay OLD's port bindings to NEW (--drop-priv); all or nothing. */
static int lana_replay_binds(struct lana_inst *li, idp_t old,
			     struct netlink_ext_ack *extack)
{
	struct lana_bind *e;
	unsigned int done = 0;
	int ret = 0;

	list_for_each_entry(e, &lana_binds, node) {
		if (e->upper == old)
			ret = lana_send_bind(li, FBLOCK_BIND_IDP, TYPE_EGRESS,
					     e->lower, extack);
		else if (e->lower == old)
			ret = lana_send_bind(li, FBLOCK_BIND_IDP, TYPE_INGRESS,
					     e->upper, extack);
		else
			continue;
		if (ret) {
			lana_replay_undo(li, old, done);
			return ret;
		}
		done++;
	}
	return 0;
}

static bool lana_is_subscriber(struct lana_inst *li)
{
	struct lana_inst *pub;

	list_for_each_entry(pub, &lana_instances, node)
		if (lana_sub_find(pub, li->fb.idp))
			return true;
	return false;
}

int lana_replace(const char *old_name, const char *new_name, bool drop_priv,
		 struct netlink_ext_ack *extack)
{
	struct lana_inst *old, *new;
	struct lana_bind *e;
	idp_t old_idp, new_idp;
	void *new_priv = NULL;
	int ret;

	old = lana_find_err(old_name, extack);
	if (!old)
		return -ENOENT;
	new = lana_find_err(new_name, extack);
	if (!new)
		return -ENOENT;
	if (old == new) {
		lana_err(extack, "cannot replace '%s' by itself", old_name);
		return -EINVAL;
	}
	if (lana_is_bound(new->fb.idp, &e) || !list_empty(&new->subscribers) ||
	    lana_is_subscriber(new)) {
		lana_err(extack, "'%s' must be fresh (no bindings, no subscriptions) to replace '%s'",
			 new_name, old_name);
		return -EBUSY;
	}
	if (!drop_priv && old->fb.factory != new->fb.factory) {
		lana_err(extack, "'%s' is %s but '%s' is %s: private data can only move within one type; use --drop-priv",
			 old_name, old->fb.factory->type, new_name,
			 new->fb.factory->type);
		return -EINVAL;
	}
	old_idp = old->fb.idp;
	new_idp = new->fb.idp;
	if (drop_priv) {
		ret = lana_replay_binds(new, old_idp, extack);
		if (ret)
			return ret;
	} else {
		/* Both see OLD's priv until OLD is unreachable. */
		new_priv = new->fb.priv;
		WRITE_ONCE(new->fb.priv, old->fb.priv);
	}

	/* Switch the IDP over: always mapped, no packet meets a hole. */
	WRITE_ONCE(new->fb.idp, old_idp);
	lana_idp_publish(old_idp, &new->fb);
	lana_idp_free(new_idp);
	WRITE_ONCE(old->fb.idp, new_idp);

	/* Subscribers and bindings are keyed by IDP; move the list heads. */
	list_splice_init_rcu(&old->subscribers, &new->subscribers,
			     synchronize_rcu);
	refcount_set(&new->refcnt, refcount_read(&old->refcnt));
	refcount_set(&old->refcnt, 1);
	list_del(&old->node);

	lana_proc_inst_del(old);
	synchronize_rcu();
	/* No packet sees OLD now; give it the priv area it has to destroy. */
	if (!drop_priv)
		old->fb.priv = new_priv;
	lana_fblock_notify_subscribers(&new->fb, FBLOCK_NOTIFY_REPLACE,
				       new->fb.name);
	WARN_ON(!refcount_dec_and_test(&old->refcnt));
	lana_inst_free(old);
	return 0;
}

/* Module exit: nothing should be left (blocks pin lana.ko). */
void lana_rm_all(void)
{
	struct lana_bind *e, *etmp;
	struct lana_inst *li, *tmp;

	mutex_lock(&lana_ctl_mutex);
	list_for_each_entry_safe(li, tmp, &lana_instances, node)
		lana_drop_own_subs(li);
	list_for_each_entry_safe(e, etmp, &lana_binds, node) {
		list_del(&e->node);
		kfree(e);
	}
	list_for_each_entry_safe(li, tmp, &lana_instances, node) {
		pr_warn(LANA_PFX "instance %s left at unload\n", li->fb.name);
		lana_idp_free(li->fb.idp);
		list_del(&li->node);
		lana_inst_free(li);
	}
	mutex_unlock(&lana_ctl_mutex);
}

/* ---- in-kernel users and splicing ------------------------------------- */

/*
 * What lana_add() hands the block's init: the "key=value" string of
 * `vlink ... add` (LANA_ATTR_OPT of LANA_CMD_ADD) or the pointer a kernel
 * caller gave lana_fblock_add() (pflana: its socket).  Valid only while
 * init runs; both are set and read under lana_ctl_mutex.
 */
static const char *lana_init_opt;
static void *lana_init_ctx;

const char *lana_fblock_init_opt(void)
{
	lockdep_assert_held(&lana_ctl_mutex);
	return lana_init_opt;
}
EXPORT_SYMBOL_GPL(lana_fblock_init_opt);

void *lana_fblock_init_ctx(void)
{
	lockdep_assert_held(&lana_ctl_mutex);
	return lana_init_ctx;
}
EXPORT_SYMBOL_GPL(lana_fblock_init_ctx);

int lana_add_opt(const char *name, const char *type, const char *opt,
		 struct netlink_ext_ack *extack)
{
	int ret;

	lana_init_opt = opt;
	ret = lana_add(name, type, extack);
	lana_init_opt = NULL;
	return ret;
}

/**
 * lana_fblock_add - create an instance from kernel code (process context)
 * @name: instance name
 * @type: block type
 * @ctx: handed to the type's init through lana_fblock_init_ctx()
 * @idp: the new instance's IDP on success
 *
 * Takes the core control mutex: never call it from a block's event, init
 * or destroy.  Returns 0 or -errno (-EEXIST: the name is taken).
 */
int lana_fblock_add(const char *name, const char *type, void *ctx, idp_t *idp)
{
	struct lana_inst *li;
	int ret;

	mutex_lock(&lana_ctl_mutex);
	lana_init_ctx = ctx;
	ret = lana_add(name, type, NULL);
	lana_init_ctx = NULL;
	if (!ret) {
		li = lana_find(name);
		*idp = li ? li->fb.idp : IDP_UNKNOWN;
	}
	mutex_unlock(&lana_ctl_mutex);
	return ret;
}
EXPORT_SYMBOL_GPL(lana_fblock_add);

/* Drop edge @e, telling both ends; errors of the blocks are ignored. */
static void lana_bind_drop(struct lana_bind *e)
{
	struct lana_inst *up = lana_find_idp(e->upper);
	struct lana_inst *lo = lana_find_idp(e->lower);

	if (up)
		lana_send_bind(up, FBLOCK_UNBIND_IDP, TYPE_EGRESS, e->lower,
			       NULL);
	if (lo)
		lana_send_bind(lo, FBLOCK_UNBIND_IDP, TYPE_INGRESS, e->upper,
			       NULL);
	list_del(&e->node);
	kfree(e);
	if (up)
		refcount_dec(&up->refcnt);
	if (lo)
		refcount_dec(&lo->refcnt);
	if (up && lo) {
		lana_sub_clear(up, lo, LANA_SUB_BOUND);
		lana_sub_clear(lo, up, LANA_SUB_BOUND);
	}
}

/**
 * lana_fblock_remove - remove an instance a kernel caller created
 * @idp: its IDP
 * @f: its type; nothing happens unless the instance at @idp is of type @f
 * @force: unbind and unsubscribe it first (else -EBUSY while it is bound)
 *
 * Process context; takes the core control mutex.  -ENOENT if @idp is no
 * longer an instance of @f (removed or replaced meanwhile).
 */
int lana_fblock_remove(idp_t idp, const struct fblock_factory *f, bool force)
{
	struct lana_bind *e, *tmp;
	struct lana_inst *li, *sub;
	struct lana_sub *s, *stmp;
	int ret;

	mutex_lock(&lana_ctl_mutex);
	li = lana_find_idp(idp);
	ret = -ENOENT;
	if (!li || li->fb.factory != f)
		goto out;
	ret = -EBUSY;
	if (!force && (lana_is_bound(idp, &e) || !list_empty(&li->subscribers)))
		goto out;
	list_for_each_entry_safe(e, tmp, &lana_binds, node)
		if (e->upper == idp || e->lower == idp)
			lana_bind_drop(e);
	list_for_each_entry_safe(s, stmp, &li->subscribers, node) {
		sub = lana_find_idp(s->subscriber);
		if (sub)
			lana_sub_clear(sub, li, LANA_SUB_EXPLICIT |
				       LANA_SUB_BOUND);
	}
	ret = lana_rm(li->fb.name, NULL);
out:
	mutex_unlock(&lana_ctl_mutex);
	return ret;
}
EXPORT_SYMBOL_GPL(lana_fblock_remove);

/* The only edge below (@below) or above @li; NULL if none or several. */
static struct lana_bind *lana_single_edge(idp_t idp, bool below, int *n)
{
	struct lana_bind *e, *found = NULL;

	*n = 0;
	list_for_each_entry(e, &lana_binds, node) {
		if ((below ? e->upper : e->lower) == idp) {
			found = e;
			(*n)++;
		}
	}
	return *n == 1 ? found : NULL;
}

/*
 * Move one end of a port from @from to @to: the unbind and the bind are
 * two consecutive port stores in the block, so a packet sees the old, no
 * or the new IDP only during that instant.
 */
static int lana_port_move(struct lana_inst *li, enum path_type dir,
			  idp_t from, idp_t to, struct netlink_ext_ack *extack)
{
	int ret;

	ret = lana_send_bind(li, FBLOCK_UNBIND_IDP, dir, from, extack);
	if (ret)
		return ret;
	ret = lana_send_bind(li, FBLOCK_BIND_IDP, dir, to, extack);
	if (ret)
		lana_send_bind(li, FBLOCK_BIND_IDP, dir, from, NULL);
	return ret;
}

/* Turn edge upper->lower into upper->mid->lower or back, graph only. */
static int lana_edges_swap(struct lana_inst *up, struct lana_inst *lo,
			   struct lana_inst *mid, bool insert)
{
	struct lana_sub *sp[4] = { };
	struct lana_bind *e1, *e2;
	int i;

	for (i = 0; i < 4; i++) {
		sp[i] = kzalloc(sizeof(*sp[i]), GFP_KERNEL);
		if (!sp[i])
			goto nomem;
	}
	if (insert) {
		e1 = kzalloc(sizeof(*e1), GFP_KERNEL);
		if (!e1)
			goto nomem;
		e2 = lana_bind_find(up->fb.idp, lo->fb.idp);
		e2->lower = mid->fb.idp;
		e1->upper = mid->fb.idp;
		e1->lower = lo->fb.idp;
		list_add_tail(&e1->node, &lana_binds);
		refcount_add(2, &mid->refcnt);
		lana_sub_clear(up, lo, LANA_SUB_BOUND);
		lana_sub_clear(lo, up, LANA_SUB_BOUND);
		lana_sub_set(up, mid, LANA_SUB_BOUND, &sp[0]);
		lana_sub_set(mid, up, LANA_SUB_BOUND, &sp[1]);
		lana_sub_set(mid, lo, LANA_SUB_BOUND, &sp[2]);
		lana_sub_set(lo, mid, LANA_SUB_BOUND, &sp[3]);
	} else {
		e1 = lana_bind_find(up->fb.idp, mid->fb.idp);
		e2 = lana_bind_find(mid->fb.idp, lo->fb.idp);
		e1->lower = lo->fb.idp;
		list_del(&e2->node);
		kfree(e2);
		refcount_dec(&mid->refcnt);
		refcount_dec(&mid->refcnt);
		lana_sub_clear(up, mid, LANA_SUB_BOUND);
		lana_sub_clear(mid, up, LANA_SUB_BOUND);
		lana_sub_clear(mid, lo, LANA_SUB_BOUND);
		lana_sub_clear(lo, mid, LANA_SUB_BOUND);
		lana_sub_set(up, lo, LANA_SUB_BOUND, &sp[0]);
		lana_sub_set(lo, up, LANA_SUB_BOUND, &sp[1]);
	}
	for (i = 0; i < 4; i++)
		kfree(sp[i]);
	return 0;
nomem:
	for (i = 0; i < 4; i++)
		kfree(sp[i]);
	return -ENOMEM;
}

/*
 * fbctl insert X A: put the fresh instance X between A and the one block
 * B below A, while packets flow.  X's ports are set first (nothing reaches
 * X yet), then A's egress port and B's ingress port move from each other
 * to X.
 */
int lana_insert(const char *x, const char *a, struct netlink_ext_ack *extack)
{
	struct lana_inst *mid, *up, *lo;
	struct lana_bind *e;
	int n, ret;

	mid = lana_find_err(x, extack);
	if (!mid)
		return -ENOENT;
	up = lana_find_err(a, extack);
	if (!up)
		return -ENOENT;
	if (mid == up || lana_is_bound(mid->fb.idp, &e)) {
		lana_err(extack, "'%s' must be a fresh instance (no bindings) other than '%s'",
			 x, a);
		return -EBUSY;
	}
	e = lana_single_edge(up->fb.idp, true, &n);
	if (!e) {
		lana_err(extack, "'%s' has %d blocks below it; insert needs exactly one",
			 a, n);
		return -EINVAL;
	}
	lo = lana_find_idp(e->lower);
	if (!lo)
		return -ENOENT;
	ret = lana_send_bind(mid, FBLOCK_BIND_IDP, TYPE_EGRESS, lo->fb.idp,
			     extack);
	if (ret)
		return ret;
	ret = lana_send_bind(mid, FBLOCK_BIND_IDP, TYPE_INGRESS, up->fb.idp,
			     extack);
	if (ret)
		goto undo_mid_egress;
	ret = lana_port_move(up, TYPE_EGRESS, lo->fb.idp, mid->fb.idp, extack);
	if (ret)
		goto undo_mid_ingress;
	ret = lana_port_move(lo, TYPE_INGRESS, up->fb.idp, mid->fb.idp, extack);
	if (ret)
		goto undo_up;
	ret = lana_edges_swap(up, lo, mid, true);
	if (!ret)
		return 0;
	lana_port_move(lo, TYPE_INGRESS, mid->fb.idp, up->fb.idp, NULL);
undo_up:
	lana_port_move(up, TYPE_EGRESS, mid->fb.idp, lo->fb.idp, NULL);
undo_mid_ingress:
	lana_send_bind(mid, FBLOCK_UNBIND_IDP, TYPE_INGRESS, up->fb.idp, NULL);
undo_mid_egress:
	lana_send_bind(mid, FBLOCK_UNBIND_IDP, TYPE_EGRESS, lo->fb.idp, NULL);
	return ret;
}

/*
 * fbctl cut X: the reverse of insert.  X has exactly one block A above and
 * one block B below; A and B are bound to each other directly and X is
 * left unbound (remove it with fbctl rm).
 */
int lana_cut(const char *x, struct netlink_ext_ack *extack)
{
	struct lana_bind *ea, *eb;
	struct lana_inst *mid, *up, *lo;
	int na, nb, ret;

	mid = lana_find_err(x, extack);
	if (!mid)
		return -ENOENT;
	ea = lana_single_edge(mid->fb.idp, false, &na);
	eb = lana_single_edge(mid->fb.idp, true, &nb);
	if (!ea || !eb) {
		lana_err(extack, "'%s' has %d blocks above and %d below; cut needs exactly one of each",
			 x, na, nb);
		return -EINVAL;
	}
	up = lana_find_idp(ea->upper);
	lo = lana_find_idp(eb->lower);
	if (!up || !lo)
		return -ENOENT;
	if (lana_bind_find(up->fb.idp, lo->fb.idp)) {
		lana_err(extack, "'%s' is already bound on top of '%s'",
			 up->fb.name, lo->fb.name);
		return -EEXIST;
	}
	ret = lana_port_move(up, TYPE_EGRESS, mid->fb.idp, lo->fb.idp, extack);
	if (ret)
		return ret;
	ret = lana_port_move(lo, TYPE_INGRESS, mid->fb.idp, up->fb.idp, extack);
	if (ret)
		goto undo_up;
	ret = lana_edges_swap(up, lo, mid, false);
	if (ret)
		goto undo_lo;
	lana_send_bind(mid, FBLOCK_UNBIND_IDP, TYPE_INGRESS, up->fb.idp, NULL);
	lana_send_bind(mid, FBLOCK_UNBIND_IDP, TYPE_EGRESS, lo->fb.idp, NULL);
	return 0;
undo_lo:
	lana_port_move(lo, TYPE_INGRESS, up->fb.idp, mid->fb.idp, NULL);
undo_up:
	lana_port_move(up, TYPE_EGRESS, lo->fb.idp, mid->fb.idp, NULL);
	return ret;
}
