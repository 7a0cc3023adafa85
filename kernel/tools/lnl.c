// SPDX-License-Identifier: GPL-2.0
/* lnl: raw generic netlink client for the LANA family (see lnl.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/genetlink.h>
#include "lnl.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_ADD_MEMBERSHIP
#define NETLINK_ADD_MEMBERSHIP 1
#endif

#define LNL_BUFSIZ 32768

struct lnl_msg {
	struct nlmsghdr nlh;
	struct genlmsghdr genl;
	char attrs[1024];
};

static void lnl_put(struct lnl_msg *m, uint16_t type, const void *data,
		    size_t len)
{
	struct nlattr *a = (struct nlattr *)((char *)m + m->nlh.nlmsg_len);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	m->nlh.nlmsg_len += NLA_ALIGN(a->nla_len);
}

static int lnl_build(struct lnl_msg *m, uint16_t family, uint16_t flags,
		     uint8_t cmd, const struct lnl_attr *attrs, int n,
		     uint32_t seq)
{
	size_t room = sizeof(m->attrs);
	int i;

	memset(m, 0, sizeof(*m));
	m->nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m->nlh.nlmsg_type = family;
	m->nlh.nlmsg_flags = NLM_F_REQUEST | flags;
	m->nlh.nlmsg_seq = seq;
	m->genl.cmd = cmd;
	m->genl.version = LANA_GENL_VERSION;
	for (i = 0; i < n; i++) {
		size_t len = attrs[i].str ? strlen(attrs[i].str) + 1 : 4;

		if (NLA_ALIGN(NLA_HDRLEN + len) > room)
			return -E2BIG;
		room -= NLA_ALIGN(NLA_HDRLEN + len);
		if (attrs[i].str)
			lnl_put(m, attrs[i].type, attrs[i].str, len);
		else
			lnl_put(m, attrs[i].type, &attrs[i].u32, 4);
	}
	return 0;
}

static void lnl_parse(const struct nlattr **tb, int max, const void *data,
		      int len)
{
	const struct nlattr *a = data;

	memset(tb, 0, sizeof(*tb) * (max + 1));
	while (len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&
	       a->nla_len <= len) {
		int type = a->nla_type & NLA_TYPE_MASK;

		if (type <= max)
			tb[type] = a;
		len -= NLA_ALIGN(a->nla_len);
		a = (const struct nlattr *)((const char *)a +
					    NLA_ALIGN(a->nla_len));
	}
}

/* NLMSG_ERROR: remember the extack text, return the error (0 = ACK). */
static int lnl_error(struct lnl *nl, const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = sizeof(*e);

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
		return -EPROTO;
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	if ((h->nlmsg_flags & NLM_F_ACK_TLVS) &&
	    NLMSG_LENGTH(off) < h->nlmsg_len) {
		lnl_parse(tb, NLMSGERR_ATTR_MAX, (const char *)e + off,
			  h->nlmsg_len - NLMSG_LENGTH(off));
		if (tb[NLMSGERR_ATTR_MSG])
			snprintf(nl->err, sizeof(nl->err), "%s",
				 (const char *)tb[NLMSGERR_ATTR_MSG] +
				 NLA_HDRLEN);
	}
	return e->error;
}

/*
 * Receive until the ACK (or DONE for dumps) of our sequence number.
 * cb, if set, gets each data message's genl attributes.
 */
static int lnl_recv(struct lnl *nl, uint32_t seq, int maxattr,
		    int (*cb)(const struct nlattr **tb, void *arg), void *arg)
{
	static char buf[LNL_BUFSIZ];
	const struct nlattr *tb[64];

	if (maxattr >= 64)
		return -EINVAL;
	for (;;) {
		ssize_t len = recv(nl->fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
		     h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR)
				return lnl_error(nl, h);
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (cb) {
				int ret;

				lnl_parse(tb, maxattr,
					  (char *)NLMSG_DATA(h) + GENL_HDRLEN,
					  h->nlmsg_len -
					  NLMSG_LENGTH(GENL_HDRLEN));
				ret = cb(tb, arg);
				if (ret)
					return ret;
			}
		}
	}
}

static int lnl_send(struct lnl *nl, struct lnl_msg *m)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	if (sendto(nl->fd, m, m->nlh.nlmsg_len, 0, (struct sockaddr *)&sa,
		   sizeof(sa)) < 0)
		return -errno;
	return 0;
}

static int lnl_family_cb(const struct nlattr **tb, void *arg)
{
	struct lnl *nl = arg;
	const struct nlattr *grp;
	int len;

	if (tb[CTRL_ATTR_FAMILY_ID])
		nl->family = *(const uint16_t *)((const char *)
			tb[CTRL_ATTR_FAMILY_ID] + NLA_HDRLEN);
	if (!tb[CTRL_ATTR_MCAST_GROUPS])
		return 0;
	/* nested: one nest per group, each with a name and an id */
	grp = (const struct nlattr *)((const char *)tb[CTRL_ATTR_MCAST_GROUPS] +
				      NLA_HDRLEN);
	len = tb[CTRL_ATTR_MCAST_GROUPS]->nla_len - NLA_HDRLEN;
	while (len >= NLA_HDRLEN && grp->nla_len >= NLA_HDRLEN &&
	       grp->nla_len <= len) {
		const struct nlattr *g[CTRL_ATTR_MCAST_GRP_MAX + 1];

		lnl_parse(g, CTRL_ATTR_MCAST_GRP_MAX,
			  (const char *)grp + NLA_HDRLEN,
			  grp->nla_len - NLA_HDRLEN);
		if (g[CTRL_ATTR_MCAST_GRP_NAME] && g[CTRL_ATTR_MCAST_GRP_ID] &&
		    !strcmp((const char *)g[CTRL_ATTR_MCAST_GRP_NAME] +
			    NLA_HDRLEN, LANA_MCGRP_EVENTS_NAME))
			nl->events_group = *(const uint32_t *)((const char *)
				g[CTRL_ATTR_MCAST_GRP_ID] + NLA_HDRLEN);
		len -= NLA_ALIGN(grp->nla_len);
		grp = (const struct nlattr *)((const char *)grp +
					      NLA_ALIGN(grp->nla_len));
	}
	return 0;
}

int lnl_open(struct lnl *nl)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct lnl_attr name = { .type = CTRL_ATTR_FAMILY_NAME,
				 .str = LANA_GENL_NAME };
	struct lnl_msg m;
	int one = 1, ret;

	memset(nl, 0, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0)
		return -errno;
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		goto err;
	}
	nl->seq = (uint32_t)getpid() << 8;
	lnl_build(&m, GENL_ID_CTRL, NLM_F_ACK, CTRL_CMD_GETFAMILY, &name, 1,
		  ++nl->seq);
	m.genl.version = 1;
	ret = lnl_send(nl, &m);
	if (!ret)
		ret = lnl_recv(nl, nl->seq, CTRL_ATTR_MAX,
			       lnl_family_cb, nl);
	if (!ret && !nl->family)
		ret = -ENOENT;
	if (ret == -ENOENT)
		snprintf(nl->err, sizeof(nl->err),
			 "LANA core not loaded (no netlink family %s); run 'modprobe lana'",
			 LANA_GENL_NAME);
	if (ret)
		goto err;
	return 0;
err:
	close(nl->fd);
	nl->fd = -1;
	return ret;
}

void lnl_close(struct lnl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	nl->fd = -1;
}

int lnl_request(struct lnl *nl, uint8_t cmd, const struct lnl_attr *attrs,
		int nattrs)
{
	struct lnl_msg m;
	int ret;

	nl->err[0] = '\0';
	ret = lnl_build(&m, nl->family, NLM_F_ACK, cmd, attrs, nattrs,
			++nl->seq);
	if (ret) {
		snprintf(nl->err, sizeof(nl->err), "arguments too long");
		return ret;
	}
	ret = lnl_send(nl, &m);
	if (ret)
		return ret;
	return lnl_recv(nl, nl->seq, 0, NULL, NULL);
}

struct lnl_dump_ctx {
	lnl_dump_cb cb;
	void *arg;
};

static int lnl_dump_trampoline(const struct nlattr **tb, void *arg)
{
	struct lnl_dump_ctx *ctx = arg;

	return ctx->cb(tb, ctx->arg);
}

int lnl_dump(struct lnl *nl, uint8_t cmd, lnl_dump_cb cb, void *arg)
{
	struct lnl_dump_ctx ctx = { .cb = cb, .arg = arg };
	struct lnl_msg m;
	int ret;

	nl->err[0] = '\0';
	lnl_build(&m, nl->family, NLM_F_DUMP | NLM_F_ACK, cmd, NULL, 0,
		  ++nl->seq);
	ret = lnl_send(nl, &m);
	if (ret)
		return ret;
	return lnl_recv(nl, nl->seq, LANA_ATTR_MAX, lnl_dump_trampoline,
			&ctx);
}

int lnl_join_events(struct lnl *nl)
{
	int rcvbuf = 1 << 20;

	nl->err[0] = '\0';
	if (!nl->events_group) {
		snprintf(nl->err, sizeof(nl->err),
			 "this LANA core has no \"%s\" multicast group (an older lana.ko?)",
			 LANA_MCGRP_EVENTS_NAME);
		return -ENOENT;
	}
	/* events come in bursts (a flood starts): room for many */
	setsockopt(nl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (setsockopt(nl->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
		       &nl->events_group, sizeof(nl->events_group)) < 0)
		return -errno;
	return 0;
}

int lnl_recv_events(struct lnl *nl, int timeout_ms, lnl_dump_cb cb,
		    void *arg)
{
	static char buf[LNL_BUFSIZ];
	const struct nlattr *tb[LANA_ATTR_MAX + 1];
	struct pollfd pfd = { .fd = nl->fd, .events = POLLIN };
	struct nlmsghdr *h;
	ssize_t len;
	int n = 0, ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return errno == EINTR ? 0 : -errno;
	if (ret == 0)
		return 0;
	len = recv(nl->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (len < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
	     h = NLMSG_NEXT(h, len)) {
		const struct genlmsghdr *g = NLMSG_DATA(h);

		if (h->nlmsg_type != nl->family ||
		    h->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN) ||
		    g->cmd != LANA_CMD_EVENT)
			continue;
		lnl_parse(tb, LANA_ATTR_MAX, (const char *)g + GENL_HDRLEN,
			  h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN));
		ret = cb(tb, arg);
		if (ret)
			return ret;
		n++;
	}
	return n;
}
