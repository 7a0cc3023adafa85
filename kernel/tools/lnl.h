/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lnl: the little generic netlink client fbctl and vlink share.
 * Raw AF_NETLINK, no libnl, so the tools run in a minimal guest.
 */
#ifndef LANA_LNL_H
#define LANA_LNL_H

#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>
#include <linux/lana.h>

struct lnl {
	int fd;
	uint16_t family;
	uint32_t seq;
	uint32_t events_group;	/* id of the "events" multicast group, 0: none */
	char err[256];		/* kernel's extack message of the last error */
};

/* one string or u32 attribute of a request */
struct lnl_attr {
	uint16_t type;
	const char *str;	/* string attribute if non-NULL */
	uint32_t u32;		/* else u32 attribute */
};

/* Open the socket and find the LANA family; -errno and nl->err on error. */
int lnl_open(struct lnl *nl);
void lnl_close(struct lnl *nl);

/* Send cmd with attrs, wait for the ACK: 0 or -errno (+ nl->err). */
int lnl_request(struct lnl *nl, uint8_t cmd, const struct lnl_attr *attrs,
		int nattrs);

/* Dump cmd; cb gets the attributes of each message (index = attr type). */
typedef int (*lnl_dump_cb)(const struct nlattr *const *tb, void *arg);
int lnl_dump(struct lnl *nl, uint8_t cmd, lnl_dump_cb cb, void *arg);

/* Join the "events" multicast group: 0 or -errno (+ nl->err). */
int lnl_join_events(struct lnl *nl);

/*
 * Wait up to timeout_ms (-1: forever) for notifications and hand each
 * LANA_CMD_EVENT message's attributes to cb.  Returns how many came, 0 on
 * timeout, -errno on error (-ENOBUFS: the socket overran, events lost).
 */
int lnl_recv_events(struct lnl *nl, int timeout_ms, lnl_dump_cb cb,
		    void *arg);

#endif
