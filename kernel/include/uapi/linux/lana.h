/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * LANA (Lightweight Autonomic Network Architecture) user/kernel interface.
 *
 * Control goes over the generic netlink family LANA_GENL_NAME.  Every
 * command is answered with an ACK (0 or -errno plus an extack message);
 * LANA_CMD_LIST is a dump of LANA_CMD_LIST messages, one per instance.
 *
 * Events: blocks emit events (enum lana_event) that the core sends, as
 * LANA_CMD_EVENT notifications, to the family's multicast group
 * LANA_MCGRP_EVENTS_NAME ("events").  Joining it needs CAP_NET_ADMIN.
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
	LANA_CMD_INSERT,	/* NAME (fresh X), NAME2 (A): X between A and
				 * the one block below A, while packets flow */
	LANA_CMD_CUT,		/* NAME (X): bind the blocks above and below X
				 * to each other directly; X stays, unbound */
	LANA_CMD_EVENT,		/* notification (group "events"): NAME (the
				 * publisher), TYPE (its block type), EVENT,
				 * VALUE */
	__LANA_CMD_MAX,
};
#define LANA_CMD_MAX (__LANA_CMD_MAX - 1)

enum lana_attr {
	LANA_ATTR_UNSPEC,
	LANA_ATTR_NAME,		/* string, instance name */
	LANA_ATTR_NAME2,	/* string, second instance name */
	LANA_ATTR_TYPE,		/* string, block type */
	LANA_ATTR_OPT,		/* string, "key=value"; with LANA_CMD_ADD:
				 * setup string for the type's init, e.g.
				 * "carrier=eth0 id=10" for ethvlink */
	LANA_ATTR_FLAGS,	/* u32, LANA_F_* */
	LANA_ATTR_IDP,		/* u32 */
	LANA_ATTR_REFCNT,	/* u32 */
	LANA_ATTR_EVENTS,	/* u64, events received by this instance */
	LANA_ATTR_PAD,
	LANA_ATTR_EVENT,	/* u32, enum lana_event */
	LANA_ATTR_VALUE,	/* u64, what the event measured (see below) */
	__LANA_ATTR_MAX,
};
#define LANA_ATTR_MAX (__LANA_ATTR_MAX - 1)

/* The multicast group of LANA_CMD_EVENT notifications. */
#define LANA_MCGRP_EVENTS_NAME	"events"

/*
 * Event codes (LANA_ATTR_EVENT) and what LANA_ATTR_VALUE carries.  New
 * codes are appended; a listener prints unknown ones by number.
 */
enum lana_event {
	LANA_EV_UNSPEC,
	LANA_EV_RATE_HIGH,	/* counter: rate went above rate_high; pps */
	LANA_EV_RATE_NORMAL,	/* counter: back at or below rate_normal; pps */
	LANA_EV_LIMIT_DROPPING,	/* ratelimit: started dropping; drops so far */
	LANA_EV_LIMIT_IDLE,	/* ratelimit: no drop for idle_ms; drops so far */
	LANA_EV_LINK_DOWN,	/* eth: device down or carrier lost; ifindex */
	LANA_EV_LINK_UP,	/* eth: device up with carrier; ifindex */
	__LANA_EV_MAX,
};
#define LANA_EV_MAX (__LANA_EV_MAX - 1)

/* LANA_ATTR_FLAGS for LANA_CMD_REPLACE */
#define LANA_F_DROP_PRIV	(1U << 0)

/*
 * PF_LANA sockets (block type "pflana", module fb_pflana.ko).
 *
 *   fd = socket(AF_LANA, SOCK_RAW, 0);
 *
 * Every socket is one LANA instance of type pflana, created by socket(2)
 * and removed (unbound first) by close(2).  Its name is "pf<inode>" (the
 * inode number of the socket, as in /proc/<pid>/fd: socket:[<inode>]) until
 * bind(2) renames it with a struct sockaddr_lana; getsockname(2) returns
 * the current name.  Renaming is refused with EBUSY once the instance is
 * bound into a stack and with EADDRINUSE if the name is taken.  Build the
 * stack with fbctl as for any block: `fbctl bind voice eth0` puts the
 * socket on top of eth0.
 *
 * Datagrams are whole Ethernet frames (destination, source, EtherType,
 * payload; no FCS), ETH_HLEN..LANA_PF_MAXLEN bytes.  sendto(2) hands the
 * frame to the block below the socket (egress); frames coming up from it
 * (ingress) are queued to the socket.  The receive queue is limited by
 * SO_RCVBUF; frames that do not fit are dropped and counted (SO_RXQ_OVFL,
 * /proc/net/lana/fblock/<name>).  poll(2) works as for any datagram socket.
 *
 * Errors: socket(2) with a type other than SOCK_RAW: ESOCKTNOSUPPORT;
 * protocol other than 0: EPROTONOSUPPORT; without CAP_NET_RAW: EPERM;
 * outside the initial network namespace: EAFNOSUPPORT.  sendto(2) while
 * nothing is bound below the socket: ENOTCONN; longer than LANA_PF_MAXLEN:
 * EMSGSIZE; shorter than an Ethernet header: EINVAL.  bind(2) with a bad
 * length or name: EINVAL; other family: EAFNOSUPPORT.
 *
 * AF_LANA is 19: the number of AF_ECONET, whose code left Linux in 3.5;
 * nothing in a 6.1 kernel registers it (AF_MAX is 46 there and every number
 * below it has a name, so a free one has to be a retired one).
 */
#define AF_LANA			19
#define PF_LANA			AF_LANA
#define LANA_PF_MAXLEN		1514	/* Ethernet header + 1500 */

struct sockaddr_lana {
	unsigned short	sl_family;		/* AF_LANA */
	char		sl_name[LANA_FBNAMSIZ];	/* instance name, NUL-terminated */
};

#endif /* _UAPI_LINUX_LANA_H */
