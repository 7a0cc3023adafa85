// SPDX-License-Identifier: GPL-2.0
/*
 * Generic netlink family "LANA": the control interface fbctl and vlink use.
 * Every command needs CAP_NET_ADMIN, runs under lana_ctl_mutex and is
 * answered with 0 or -errno plus an extack message saying why.
 *
 * The family's multicast group "events" carries the events blocks emit
 * (lana_fblock_emit) as LANA_CMD_EVENT notifications.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <net/genetlink.h>
#include "internal.h"

static const struct nla_policy lana_policy[LANA_ATTR_MAX + 1] = {
	/* lengths are checked in the handlers, to give clearer messages */
	[LANA_ATTR_NAME]	= { .type = NLA_NUL_STRING },
	[LANA_ATTR_NAME2]	= { .type = NLA_NUL_STRING },
	[LANA_ATTR_TYPE]	= { .type = NLA_NUL_STRING },
	[LANA_ATTR_OPT]		= { .type = NLA_NUL_STRING },
	[LANA_ATTR_FLAGS]	= { .type = NLA_U32 },
};

static const char *lana_attr_str(struct genl_info *info, int attr,
				 const char *what)
{
	if (!info->attrs[attr]) {
		lana_err(info->extack, "%s", what);
		return NULL;
	}
	return nla_data(info->attrs[attr]);
}

static int lana_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	u8 cmd = info->genlhdr->cmd;
	const char *a, *b = NULL, *x = NULL;
	u32 flags = 0;
	int ret;

	a = lana_attr_str(info, LANA_ATTR_NAME, "missing instance name");
	if (!a)
		return -EINVAL;
	switch (cmd) {
	case LANA_CMD_ADD:
		x = lana_attr_str(info, LANA_ATTR_TYPE, "missing block type");
		if (!x)
			return -EINVAL;
		break;
	case LANA_CMD_SET:
		x = lana_attr_str(info, LANA_ATTR_OPT,
				  "missing option key=value");
		if (!x)
			return -EINVAL;
		break;
	case LANA_CMD_BIND:
	case LANA_CMD_UNBIND:
	case LANA_CMD_REPLACE:
	case LANA_CMD_SUBSCRIBE:
	case LANA_CMD_UNSUBSCRIBE:
	case LANA_CMD_INSERT:
		b = lana_attr_str(info, LANA_ATTR_NAME2,
				  "missing second instance name");
		if (!b)
			return -EINVAL;
		break;
	}
	if (info->attrs[LANA_ATTR_FLAGS])
		flags = nla_get_u32(info->attrs[LANA_ATTR_FLAGS]);

	mutex_lock(&lana_ctl_mutex);
	switch (cmd) {
	case LANA_CMD_ADD:
		/* optional setup string for the type's init (vlink add) */
		ret = lana_add_opt(a, x, info->attrs[LANA_ATTR_OPT] ?
				   nla_data(info->attrs[LANA_ATTR_OPT]) : NULL,
				   extack);
		break;
	case LANA_CMD_RM:
		ret = lana_rm(a, extack);
		break;
	case LANA_CMD_SET:
		ret = lana_set(a, x, extack);
		break;
	case LANA_CMD_BIND:
		ret = lana_bind(a, b, extack);
		break;
	case LANA_CMD_UNBIND:
		ret = lana_unbind(a, b, extack);
		break;
	case LANA_CMD_REPLACE:
		ret = lana_replace(a, b, flags & LANA_F_DROP_PRIV, extack);
		break;
	case LANA_CMD_SUBSCRIBE:
		ret = lana_subscribe(a, b, extack);
		break;
	case LANA_CMD_UNSUBSCRIBE:
		ret = lana_unsubscribe(a, b, extack);
		break;
	case LANA_CMD_INSERT:
		ret = lana_insert(a, b, extack);
		break;
	case LANA_CMD_CUT:
		ret = lana_cut(a, extack);
		break;
	default:
		ret = -EOPNOTSUPP;
		break;
	}
	mutex_unlock(&lana_ctl_mutex);
	return ret;
}

static struct genl_family lana_genl_family;

static int lana_fill_inst(struct sk_buff *skb, struct netlink_callback *cb,
			  struct lana_inst *li)
{
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &lana_genl_family, NLM_F_MULTI, LANA_CMD_LIST);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_string(skb, LANA_ATTR_NAME, li->fb.name) ||
	    nla_put_string(skb, LANA_ATTR_TYPE, li->fb.factory->type) ||
	    nla_put_u32(skb, LANA_ATTR_IDP, li->fb.idp) ||
	    nla_put_u32(skb, LANA_ATTR_REFCNT, refcount_read(&li->refcnt)) ||
	    nla_put_u64_64bit(skb, LANA_ATTR_EVENTS,
			      atomic64_read(&li->events), LANA_ATTR_PAD)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* cb->args[0]: how many instances were sent already */
static int lana_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct lana_inst *li;
	long i = 0;

	mutex_lock(&lana_ctl_mutex);
	list_for_each_entry(li, &lana_instances, node) {
		if (i++ < cb->args[0])
			continue;
		if (lana_fill_inst(skb, cb, li)) {
			i--;
			break;
		}
	}
	mutex_unlock(&lana_ctl_mutex);
	cb->args[0] = i;
	return skb->len;
}

#define LANA_DOIT(c) {						\
	.cmd = (c), .doit = lana_doit, .flags = GENL_ADMIN_PERM,	\
	.validate = GENL_DONT_VALIDATE_STRICT | GENL_DONT_VALIDATE_DUMP, \
}

static const struct genl_small_ops lana_genl_ops[] = {
	LANA_DOIT(LANA_CMD_ADD),
	LANA_DOIT(LANA_CMD_RM),
	LANA_DOIT(LANA_CMD_SET),
	LANA_DOIT(LANA_CMD_BIND),
	LANA_DOIT(LANA_CMD_UNBIND),
	LANA_DOIT(LANA_CMD_REPLACE),
	LANA_DOIT(LANA_CMD_SUBSCRIBE),
	LANA_DOIT(LANA_CMD_UNSUBSCRIBE),
	LANA_DOIT(LANA_CMD_INSERT),
	LANA_DOIT(LANA_CMD_CUT),
	{
		.cmd = LANA_CMD_LIST,
		.dumpit = lana_dumpit,
		.flags = GENL_ADMIN_PERM,
		.validate = GENL_DONT_VALIDATE_STRICT |
			    GENL_DONT_VALIDATE_DUMP,
	},
};

enum lana_mcgrp { LANA_MCGRP_EVENTS };

static const struct genl_multicast_group lana_mcgrps[] = {
	[LANA_MCGRP_EVENTS] = {
		.name = LANA_MCGRP_EVENTS_NAME,
#ifdef GENL_MCAST_CAP_NET_ADMIN
		/* what blocks do is as private as the commands that build them */
		.flags = GENL_MCAST_CAP_NET_ADMIN,
#endif
	},
};

static struct genl_family lana_genl_family __ro_after_init = {
	.name		= LANA_GENL_NAME,
	.version	= LANA_GENL_VERSION,
	.maxattr	= LANA_ATTR_MAX,
	.policy		= lana_policy,
	.module		= THIS_MODULE,
	.small_ops	= lana_genl_ops,
	.n_small_ops	= ARRAY_SIZE(lana_genl_ops),
	.mcgrps		= lana_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(lana_mcgrps),
	.resv_start_op	= __LANA_CMD_MAX,
};

/*
 * Multicast one event to the "events" group.  Any context but hard IRQ:
 * GFP_ATOMIC, no locks.  Sent at once rather than deferred to a work item:
 * every block emits on state changes only (a threshold crossed, a link
 * going down), at most twice per measuring interval, so the rate is bounded
 * by design and there is nothing for a queue to smooth.  Without listeners
 * nothing is allocated.  A listener too slow to read gets ENOBUFS on its
 * socket (netlink's usual overrun signal) and no other harm is done.
 */
void lana_netlink_event(const struct fblock *fb, u32 code, u64 value)
{
	struct sk_buff *skb;
	void *hdr;

	if (!genl_has_listeners(&lana_genl_family, &init_net,
				LANA_MCGRP_EVENTS))
		return;
	skb = genlmsg_new(nla_total_size(LANA_FBNAMSIZ) +
			  nla_total_size(LANA_TYPNAMSIZ) +
			  nla_total_size(sizeof(u32)) +
			  nla_total_size_64bit(sizeof(u64)), GFP_ATOMIC);
	if (!skb)
		return;
	hdr = genlmsg_put(skb, 0, 0, &lana_genl_family, 0, LANA_CMD_EVENT);
	if (!hdr)
		goto err;
	if (nla_put_string(skb, LANA_ATTR_NAME, fb->name) ||
	    nla_put_string(skb, LANA_ATTR_TYPE, fb->factory->type) ||
	    nla_put_u32(skb, LANA_ATTR_EVENT, code) ||
	    nla_put_u64_64bit(skb, LANA_ATTR_VALUE, value, LANA_ATTR_PAD))
		goto err;
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&lana_genl_family, skb, 0, LANA_MCGRP_EVENTS,
			  GFP_ATOMIC);
	return;
err:
	nlmsg_free(skb);
}

int lana_netlink_init(void)
{
	return genl_register_family(&lana_genl_family);
}

void lana_netlink_exit(void)
{
	genl_unregister_family(&lana_genl_family);
}
