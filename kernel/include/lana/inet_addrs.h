/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The IPv4 address list of a protocol block (fb_arp, fb_icmp_echo): the
 * addresses the block answers for, set with `fbctl set NAME ip=A[,B...]`.
 *
 * The list sits behind an RCU pointer: the control path (core mutex held)
 * builds a new list, publishes it and frees the old one after a grace
 * period; the packet path (rcu_read_lock held) reads it with
 * rcu_dereference and never sees a half-written list.
 */
#ifndef _LANA_INET_ADDRS_H
#define _LANA_INET_ADDRS_H

#include <linux/in.h>
#include <linux/inet.h>
#include <linux/netlink.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>

#define LANA_INET_MAX_ADDRS	8

struct lana_inet_addrs {
	struct rcu_head rcu;
	unsigned int n;
	__be32 addr[LANA_INET_MAX_ADDRS];
};

/* Packet path: is ip one of the list's addresses?  list may be NULL. */
static inline bool lana_inet_addrs_has(const struct lana_inet_addrs *list,
				       __be32 ip)
{
	unsigned int i;

	if (!list)
		return false;
	for (i = 0; i < list->n; i++)
		if (list->addr[i] == ip)
			return true;
	return false;
}

/*
 * Parse "A.B.C.D[,A.B.C.D...]" (or "" / "none": no address) into list.
 * Every address must be a complete dotted quad of a unicast address.
 */
static inline int lana_inet_addrs_parse(const char *val,
					struct lana_inet_addrs *list,
					struct netlink_ext_ack *extack)
{
	const char *tok = val;

	list->n = 0;
	if (!*val || !strcmp(val, "none"))
		return 0;
	for (;;) {
		size_t len = strcspn(tok, ",");
		const char *end;
		__be32 ip;

		if (!len || len > 15 ||
		    !in4_pton(tok, len, (u8 *)&ip, -1, &end) ||
		    end != tok + len) {
			NL_SET_ERR_MSG_MOD(extack,
					   "bad address; use ip=A.B.C.D or ip=A.B.C.D,E.F.G.H (dotted quads, comma-separated), or ip=none");
			return -EINVAL;
		}
		/* ipv4_is_zeronet() is only 0.0.0.0 since 5.x; all of 0/8 here */
		if ((ip & htonl(0xff000000)) == 0 || ipv4_is_lbcast(ip) ||
		    ipv4_is_multicast(ip) || ipv4_is_loopback(ip)) {
			NL_SET_ERR_MSG_MOD(extack,
					   "not a unicast address: 0.x, 127.x, multicast and 255.255.255.255 cannot be answered for");
			return -EINVAL;
		}
		if (!lana_inet_addrs_has(list, ip)) {
			if (list->n == LANA_INET_MAX_ADDRS) {
				NL_SET_ERR_MSG_MOD(extack,
						   "too many addresses: at most 8");
				return -EINVAL;
			}
			list->addr[list->n++] = ip;
		}
		tok += len;
		if (!*tok)
			return 0;
		tok++;		/* the comma; "a," leaves an empty token: error */
	}
}

/*
 * Control path, core mutex held: replace *slot by the list val names.
 * On error the old list stays.
 */
static inline int lana_inet_addrs_set(struct lana_inet_addrs __rcu **slot,
				      const char *val,
				      struct netlink_ext_ack *extack)
{
	struct lana_inet_addrs *list, *old;
	int err;

	list = kzalloc(sizeof(*list), GFP_KERNEL);
	if (!list) {
		NL_SET_ERR_MSG_MOD(extack, "out of memory for the address list");
		return -ENOMEM;
	}
	err = lana_inet_addrs_parse(val, list, extack);
	if (err) {
		kfree(list);
		return err;
	}
	old = rcu_replace_pointer(*slot, list, true);
	if (old)
		kfree_rcu(old, rcu);
	return 0;
}

/* "ip A,B\n" or "ip none\n"; caller holds rcu_read_lock. */
static inline void lana_inet_addrs_show(struct seq_file *m,
					const struct lana_inet_addrs *list)
{
	unsigned int i;

	seq_puts(m, "ip ");
	if (!list || !list->n)
		seq_puts(m, "none");
	for (i = 0; list && i < list->n; i++)
		seq_printf(m, "%s%pI4", i ? "," : "", &list->addr[i]);
	seq_putc(m, '\n');
}

#endif /* _LANA_INET_ADDRS_H */
