// SPDX-License-Identifier: GPL-2.0
/*
 * fbctl - build LANA protocol stacks from functional blocks at runtime.
 * Talks to the LANA core (lana.ko) over the generic netlink family "LANA".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lnl.h"

static const char usage[] =
"Usage: fbctl COMMAND [ARGS]\n"
"\n"
"Build and change a LANA protocol stack made of functional blocks (needs root).\n"
"\n"
"Commands:\n"
"  add NAME TYPE          create an instance NAME of block type TYPE\n"
"                         (types: eth fwd tee counter bpf ...; see\n"
"                         /proc/net/lana/types; missing modules are loaded)\n"
"  rm NAME                remove an instance (unbind and unsubscribe it first)\n"
"  set NAME KEY=VALUE     send an option to an instance, e.g. reset=1\n"
"  bind A B               put A on top of B: ingress packets flow from B up\n"
"                         to A, egress packets from A down to B\n"
"  unbind A B             undo 'bind A B'\n"
"  replace OLD NEW [--drop-priv]\n"
"                         NEW takes over OLD's IDP, bindings and subscriptions;\n"
"                         OLD is destroyed and NEW's name stays.  Without\n"
"                         --drop-priv NEW also takes OLD's state (same type\n"
"                         only); with it NEW keeps its own state\n"
"  subscribe A B          A gets the events B emits\n"
"  unsubscribe A B        undo 'subscribe A B'\n"
"  list                   show all instances\n"
"\n"
"Names: 1..31 characters of A-Z a-z 0-9 _ . -\n"
"\n"
"Example (receive on eth0, count everything):\n"
"  vlink ethernet hook eth0\n"
"  fbctl add c1 counter\n"
"  fbctl bind c1 eth0\n"
"  cat /proc/net/lana/fblock/c1       # packets bytes\n"
"\n"
"More: /proc/net/lana/fblocks (instances, ports, subscriptions),\n"
"      /proc/net/lana/ppe (per-CPU engine statistics).\n";

struct fbctl_cmd {
	const char *name;
	uint8_t cmd;
	int nargs;		/* names after the command */
	const char *args;	/* for the usage hint */
};

static const struct fbctl_cmd cmds[] = {
	{ "add", LANA_CMD_ADD, 2, "NAME TYPE" },
	{ "rm", LANA_CMD_RM, 1, "NAME" },
	{ "set", LANA_CMD_SET, 2, "NAME KEY=VALUE" },
	{ "bind", LANA_CMD_BIND, 2, "A B" },
	{ "unbind", LANA_CMD_UNBIND, 2, "A B" },
	{ "replace", LANA_CMD_REPLACE, 2, "OLD NEW [--drop-priv]" },
	{ "subscribe", LANA_CMD_SUBSCRIBE, 2, "A B" },
	{ "unsubscribe", LANA_CMD_UNSUBSCRIBE, 2, "A B" },
	{ "list", LANA_CMD_LIST, 0, "" },
};

/* "fbctl: bind fb3 fb2: File exists: port already bound" */
static void fbctl_fail(int argc, char **argv, int err, const char *msg)
{
	int i;

	fprintf(stderr, "fbctl:");
	for (i = 0; i < argc; i++)
		fprintf(stderr, " %s", argv[i]);
	fprintf(stderr, ": %s", strerror(err));
	if (msg && *msg)
		fprintf(stderr, ": %s", msg);
	else if (err == EPERM)
		fprintf(stderr, ": LANA control needs root (CAP_NET_ADMIN)");
	fputc('\n', stderr);
}

static const char *attr_str(const struct nlattr *a)
{
	return a ? (const char *)a + NLA_HDRLEN : "?";
}

static unsigned long long attr_uint(const struct nlattr *a)
{
	unsigned long long v = 0;

	if (!a)
		return 0;
	if (a->nla_len - NLA_HDRLEN == 8)
		memcpy(&v, (const char *)a + NLA_HDRLEN, 8);
	else if (a->nla_len - NLA_HDRLEN == 4) {
		uint32_t v32;

		memcpy(&v32, (const char *)a + NLA_HDRLEN, 4);
		v = v32;
	}
	return v;
}

static int list_one(const struct nlattr *const *tb, void *arg)
{
	int *n = arg;

	if (!(*n)++)
		printf("%-31s %-15s %8s %6s %10s\n", "NAME", "TYPE", "IDP",
		       "REFCNT", "EVENTS");
	printf("%-31s %-15s %8llu %6llu %10llu\n", attr_str(tb[LANA_ATTR_NAME]),
	       attr_str(tb[LANA_ATTR_TYPE]), attr_uint(tb[LANA_ATTR_IDP]),
	       attr_uint(tb[LANA_ATTR_REFCNT]),
	       attr_uint(tb[LANA_ATTR_EVENTS]));
	return 0;
}

int main(int argc, char **argv)
{
	const struct fbctl_cmd *c = NULL;
	struct lnl_attr attrs[3];
	int nattrs = 0, extra, ret;
	uint32_t flags = 0;
	struct lnl nl;
	size_t i;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 1 : 0;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			c = &cmds[i];
	if (!c) {
		fprintf(stderr, "fbctl: unknown command '%s'; try 'fbctl --help'\n",
			argv[1]);
		return 1;
	}
	extra = argc - 2 - c->nargs;
	if (c->cmd == LANA_CMD_REPLACE && extra == 1 &&
	    !strcmp(argv[argc - 1], "--drop-priv")) {
		flags |= LANA_F_DROP_PRIV;
		extra = 0;
	}
	if (extra != 0) {
		fprintf(stderr, "fbctl: %s takes %s; usage: fbctl %s %s\n",
			c->name, extra < 0 ? "more arguments" :
			"fewer arguments", c->name, c->args);
		return 1;
	}
	if (c->nargs >= 1)
		attrs[nattrs++] = (struct lnl_attr){ LANA_ATTR_NAME, argv[2], 0 };
	if (c->nargs >= 2) {
		uint16_t t = LANA_ATTR_NAME2;

		if (c->cmd == LANA_CMD_ADD)
			t = LANA_ATTR_TYPE;
		else if (c->cmd == LANA_CMD_SET)
			t = LANA_ATTR_OPT;
		attrs[nattrs++] = (struct lnl_attr){ t, argv[3], 0 };
	}
	if (flags)
		attrs[nattrs++] = (struct lnl_attr){ LANA_ATTR_FLAGS, NULL, flags };

	ret = lnl_open(&nl);
	if (ret) {
		fbctl_fail(argc - 1, argv + 1, -ret, nl.err);
		return 1;
	}
	if (c->cmd == LANA_CMD_LIST) {
		int n = 0;

		ret = lnl_dump(&nl, c->cmd, list_one, &n);
	} else {
		ret = lnl_request(&nl, c->cmd, attrs, nattrs);
	}
	if (ret)
		fbctl_fail(argc - 1, argv + 1, -ret, nl.err);
	lnl_close(&nl);
	return ret ? 1 : 0;
}
