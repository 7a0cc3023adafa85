/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * LANA (Lightweight Autonomic Network Architecture) user/kernel interface.
 *
 * Control goes over the generic netlink family LANA_GENL_NAME.  Every
 * command is answered with an ACK (0 or -errno plus an extack message);
 * LANA_CMD_LIST is a dump of LANA_CMD_LIST messages, one per instance.
 */
#ifndef _UAPI_LINUX_LANA_H
#define _UAPI_LINUX_LANA_H

#define LANA_FBNAMSIZ		32	/* instance name incl. NUL */
#define LANA_TYPNAMSIZ		32	/* type name incl. NUL */
#define LANA_OPTSIZ		256	/* "key=value" incl. NUL */

#define LANA_GENL_NAME		"LANA"
#define LANA_GENL_VERSION	1

enum lana_cmd {
	LANA_CMD_UNSPEC,
	LANA_CMD_ADD,		/* NAME, TYPE */
	LANA_CMD_RM,		/* NAME */
	LANA_CMD_SET,		/* NAME, OPT ("key=value") */
	LANA_CMD_BIND,		/* NAME (A, upper), NAME2 (B, lower) */
	LANA_CMD_UNBIND,	/* NAME, NAME2 */
	LANA_CMD_REPLACE,	/* NAME (old), NAME2 (new), FLAGS */
	LANA_CMD_SUBSCRIBE,	/* NAME (subscriber), NAME2 (publisher) */
	LANA_CMD_UNSUBSCRIBE,	/* NAME, NAME2 */
	LANA_CMD_LIST,		/* dump: NAME, TYPE, IDP, REFCNT, EVENTS */
	__LANA_CMD_MAX,
};
#define LANA_CMD_MAX (__LANA_CMD_MAX - 1)

enum lana_attr {
	LANA_ATTR_UNSPEC,
	LANA_ATTR_NAME,		/* string, instance name */
	LANA_ATTR_NAME2,	/* string, second instance name */
	LANA_ATTR_TYPE,		/* string, block type */
	LANA_ATTR_OPT,		/* string, "key=value" */
	LANA_ATTR_FLAGS,	/* u32, LANA_F_* */
	LANA_ATTR_IDP,		/* u32 */
	LANA_ATTR_REFCNT,	/* u32 */
	LANA_ATTR_EVENTS,	/* u64, events received by this instance */
	LANA_ATTR_PAD,
	__LANA_ATTR_MAX,
};
#define LANA_ATTR_MAX (__LANA_ATTR_MAX - 1)

/* LANA_ATTR_FLAGS for LANA_CMD_REPLACE */
#define LANA_F_DROP_PRIV	(1U << 0)

#endif /* _UAPI_LINUX_LANA_H */
