// SPDX-License-Identifier: GPL-2.0
/*
 * LANA type registry: block modules register one factory per type.
 *
 * A type is found by name; lana_factory_get() also pins the owning module
 * so that it cannot be unloaded while an instance of the type exists.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/ctype.h>
#include "internal.h"

static DEFINE_MUTEX(lana_types_mutex);
static LIST_HEAD(lana_types);

struct lana_type {
	struct list_head node;
	struct fblock_factory *f;
};

static struct lana_type *lana_type_find(const char *type)
{
	struct lana_type *t;

	list_for_each_entry(t, &lana_types, node)
		if (!strcmp(t->f->type, type))
			return t;
	return NULL;
}

static bool lana_type_name_ok(const char *type)
{
	size_t len, i;

	if (!type)
		return false;
	len = strnlen(type, LANA_TYPNAMSIZ);
	if (len == 0 || len >= LANA_TYPNAMSIZ)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum(type[i]) && !strchr("_.-", type[i]))
			return false;
	return true;
}

int lana_register_fblock_type(struct fblock_factory *f)
{
	struct lana_type *t;
	int ret = 0;

	if (!f || !lana_type_name_ok(f->type) || !f->init || !f->destroy ||
	    !f->netrx || !f->event) {
		pr_err(LANA_PFX "refusing type %s: needs a valid type name and init, destroy, netrx, event\n",
		       f && f->type ? f->type : "(null)");
		return -EINVAL;
	}
	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	t->f = f;

	mutex_lock(&lana_types_mutex);
	if (lana_type_find(f->type)) {
		ret = -EEXIST;
		pr_err(LANA_PFX "type %s already registered\n", f->type);
		kfree(t);
	} else {
		list_add_tail(&t->node, &lana_types);
		pr_info(LANA_PFX "type %s registered\n", f->type);
	}
	mutex_unlock(&lana_types_mutex);
	return ret;
}
EXPORT_SYMBOL_GPL(lana_register_fblock_type);

void lana_unregister_fblock_type(struct fblock_factory *f)
{
	struct lana_type *t;

	mutex_lock(&lana_types_mutex);
	list_for_each_entry(t, &lana_types, node) {
		if (t->f == f) {
			list_del(&t->node);
			kfree(t);
			pr_info(LANA_PFX "type %s unregistered\n", f->type);
			break;
		}
	}
	mutex_unlock(&lana_types_mutex);
}
EXPORT_SYMBOL_GPL(lana_unregister_fblock_type);

/*
 * Find a type and pin its module.  NULL if no such type (or its module is
 * on its way out).  Drop with lana_factory_put().
 */
static const struct fblock_factory *lana_factory_try(const char *type)
{
	const struct fblock_factory *f = NULL;
	struct lana_type *t;

	mutex_lock(&lana_types_mutex);
	t = lana_type_find(type);
	if (t && try_module_get(t->f->owner))
		f = t->f;
	mutex_unlock(&lana_types_mutex);
	return f;
}

const struct fblock_factory *lana_factory_get(const char *type)
{
	const struct fblock_factory *f;

	if (!lana_type_name_ok(type))
		return NULL;
	f = lana_factory_try(type);
	if (f)
		return f;
	/* Blocks carry MODULE_ALIAS("lana-fb-<type>"): load on demand, once. */
	request_module("lana-fb-%s", type);
	return lana_factory_try(type);
}

void lana_factory_put(const struct fblock_factory *f)
{
	module_put(f->owner);
}

int lana_types_show(struct seq_file *m)
{
	struct lana_type *t;

	mutex_lock(&lana_types_mutex);
	list_for_each_entry(t, &lana_types, node)
		seq_printf(m, "%s %s\n", t->f->type,
			   t->f->owner ? module_name(t->f->owner) : "lana");
	mutex_unlock(&lana_types_mutex);
	return 0;
}
