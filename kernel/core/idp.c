// SPDX-License-Identifier: GPL-2.0
/*
 * The IDP map: information dispatch point -> block instance.
 *
 * Two structures with one job each:
 *  - an allocating xarray hands out IDPs, cyclically in 1..LANA_IDP_MAX,
 *    so a freed IDP is not handed out again soon.  It holds reservations
 *    only and is never read on the packet path.
 *  - a flat array indexed by IDP, published with RCU, is what the engine
 *    reads for every hop: a bounds check and one load.  An xarray walk
 *    there cost about 100 guest instructions per block (measured with
 *    `lanalab bench` under qemu -icount).
 *
 * The array grows (never shrinks) when an IDP beyond its end is reserved:
 * a copy is published and the old one freed after a grace period, so a
 * reader sees either array, both complete.  Everything but lookups runs
 * under lana_ctl_mutex.
 */
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/xarray.h>
#include "internal.h"

#define LANA_IDP_TABLE_MIN	64

struct lana_idp_table __rcu *lana_idp_table;
static DEFINE_XARRAY_ALLOC1(lana_idp_ids);
static u32 lana_idp_next = 1;

static struct lana_idp_table *lana_idp_table_ctl(void)
{
	return rcu_dereference_protected(lana_idp_table,
					 lockdep_is_held(&lana_ctl_mutex));
}

static struct lana_idp_table *lana_idp_table_alloc(u32 size)
{
	struct lana_idp_table *t;

	t = kvzalloc(struct_size(t, fb, size), GFP_KERNEL);
	if (t)
		t->size = size;
	return t;
}

/* Make the array cover @idp. */
static int lana_idp_table_cover(idp_t idp)
{
	struct lana_idp_table *old = lana_idp_table_ctl(), *new;
	u32 i;

	if (idp < old->size)
		return 0;
	new = lana_idp_table_alloc(min_t(u32, roundup_pow_of_two(idp + 1),
					 LANA_IDP_MAX + 1));
	if (!new)
		return -ENOMEM;
	for (i = 0; i < old->size; i++)
		RCU_INIT_POINTER(new->fb[i],
				 rcu_dereference_protected(old->fb[i], true));
	rcu_assign_pointer(lana_idp_table, new);
	kvfree_rcu(old, rcu);
	return 0;
}

/* Reserve an IDP; lookups see NULL for it until lana_idp_publish(). */
int lana_idp_alloc(idp_t *idp)
{
	u32 id;
	int ret;

	ret = xa_alloc_cyclic(&lana_idp_ids, &id, NULL,
			      XA_LIMIT(1, LANA_IDP_MAX), &lana_idp_next,
			      GFP_KERNEL);
	if (ret < 0)
		return ret;
	ret = lana_idp_table_cover(id);
	if (ret) {
		xa_erase(&lana_idp_ids, id);
		return ret;
	}
	*idp = id;
	return 0;
}

/* Map a reserved @idp to @fb (or to another block: replace). */
void lana_idp_publish(idp_t idp, struct fblock *fb)
{
	rcu_assign_pointer(lana_idp_table_ctl()->fb[idp], fb);
}

/* Unmap @idp and give it back.  Readers may see the old block until a
 * grace period has passed. */
void lana_idp_free(idp_t idp)
{
	RCU_INIT_POINTER(lana_idp_table_ctl()->fb[idp], NULL);
	xa_erase(&lana_idp_ids, idp);
}

struct fblock *lana_fblock_lookup_rcu(idp_t idp)
{
	return lana_idp_lookup_rcu(idp);
}
EXPORT_SYMBOL_GPL(lana_fblock_lookup_rcu);

int lana_idp_init(void)
{
	struct lana_idp_table *t = lana_idp_table_alloc(LANA_IDP_TABLE_MIN);

	if (!t)
		return -ENOMEM;
	RCU_INIT_POINTER(lana_idp_table, t);
	return 0;
}

/* No instance is left and no packet can be in LANA any more. */
void lana_idp_exit(void)
{
	xa_destroy(&lana_idp_ids);
	kvfree(rcu_dereference_protected(lana_idp_table, true));
	RCU_INIT_POINTER(lana_idp_table, NULL);
}
