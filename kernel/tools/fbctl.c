// SPDX-License-Identifier: GPL-2.0
/*
 * fbctl - build LANA protocol stacks from functional blocks at runtime.
 * Talks to the LANA core (lana.ko) over the generic netlink family "LANA".
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
"  insert X A             put the fresh instance X between A and the one\n"
"                         block below A, while packets flow\n"
"  cut X                  undo insert: bind the blocks above and below X\n"
"                         to each other directly; X stays, unbound\n"
"  subscribe A B          A gets the events B emits\n"
"  unsubscribe A B        undo 'subscribe A B'\n"
"  list                   show all instances\n"
"  monitor [--count N] [--timeout SEC]\n"
"                         print the events blocks emit, one line each:\n"
"                         BLOCK TYPE EVENT VALUE (e.g. c0 counter rate_high\n"
"                         1520); stop after N events or after SEC seconds\n"
"                         without one (exit 1 if fewer than N came)\n"
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
	{ "insert", LANA_CMD_INSERT, 2, "X A" },
	{ "cut", LANA_CMD_CUT, 1, "X" },
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

#define LIST_MAX 4096

struct list_entry {
	char name[LANA_FBNAMSIZ];
	char type[LANA_TYPNAMSIZ];
	unsigned long long idp, refcnt, events;
};

struct list_ctx {
	struct list_entry *e;
	int n;
};

static int list_one(const struct nlattr *const *tb, void *arg)
{
	struct list_ctx *ctx = arg;
	struct list_entry *e;

	if (ctx->n >= LIST_MAX)
		return 0;
	e = &ctx->e[ctx->n++];
	snprintf(e->name, sizeof(e->name), "%s", attr_str(tb[LANA_ATTR_NAME]));
	snprintf(e->type, sizeof(e->type), "%s", attr_str(tb[LANA_ATTR_TYPE]));
	e->idp = attr_uint(tb[LANA_ATTR_IDP]);
	e->refcnt = attr_uint(tb[LANA_ATTR_REFCNT]);
	e->events = attr_uint(tb[LANA_ATTR_EVENTS]);
	return 0;
}

static const char *list_name(const struct list_ctx *ctx, unsigned long long idp)
{
	static char buf[24];
	int i;

	for (i = 0; i < ctx->n; i++)
		if (ctx->e[i].idp == idp)
			return ctx->e[i].name;
	snprintf(buf, sizeof(buf), "#%llu", idp);
	return buf;
}

/*
 * Ports of instance @name, by name, from /proc/net/lana/fblocks (format in
 * docs/kernel/procfs.md: NAME TYPE IDP REFCNT [dir:IDP,...] ...).
 */
static void list_ports(const struct list_ctx *ctx, const char *name)
{
	char line[4096], lname[LANA_FBNAMSIZ + 1], *p, *tok;
	FILE *f = fopen("/proc/net/lana/fblocks", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%32s", lname) != 1 || strcmp(lname, name))
			continue;
		p = strchr(line, '[');
		if (!p || !strchr(p, ']'))
			break;
		*strchr(p, ']') = '\0';
		for (tok = strtok(p + 1, ","); tok; tok = strtok(NULL, ",")) {
			char *colon = strchr(tok, ':');

			if (!colon)
				continue;
			*colon = '\0';
			printf(" %s:%s", tok,
			       list_name(ctx, strtoull(colon + 1, NULL, 10)));
		}
		break;
	}
	fclose(f);
}

static int list_print(struct lnl *nl)
{
	struct list_ctx ctx = { .e = calloc(LIST_MAX, sizeof(struct list_entry)) };
	int i, ret;

	if (!ctx.e)
		return -ENOMEM;
	ret = lnl_dump(nl, LANA_CMD_LIST, list_one, &ctx);
	if (!ret && ctx.n) {
		printf("%-16s %-10s %6s %6s %8s  %s\n", "NAME", "TYPE", "IDP",
		       "REFCNT", "EVENTS", "PORTS (in: block above, out: block below)");
		for (i = 0; i < ctx.n; i++) {
			struct list_entry *e = &ctx.e[i];

			printf("%-16s %-10s %6llu %6llu %8llu ", e->name,
			       e->type, e->idp, e->refcnt, e->events);
			list_ports(&ctx, e->name);
			putchar('\n');
		}
	}
	free(ctx.e);
	return ret;
}

/* Python's names in lab/lana/client.py are the same: keep them in step. */
static const char *const event_names[] = {
	[LANA_EV_RATE_HIGH]	 = "rate_high",
	[LANA_EV_RATE_NORMAL]	 = "rate_normal",
	[LANA_EV_LIMIT_DROPPING] = "limit_dropping",
	[LANA_EV_LIMIT_IDLE]	 = "limit_idle",
	[LANA_EV_LINK_DOWN]	 = "link_down",
	[LANA_EV_LINK_UP]	 = "link_up",
};

static int event_print(const struct nlattr *const *tb, void *arg)
{
	unsigned long long code = attr_uint(tb[LANA_ATTR_EVENT]);
	long long *left = arg;

	/* --count reached: the rest of this batch is not printed */
	if (*left == 0)
		return 0;
	if (*left > 0)
		(*left)--;
	printf("%s %s ", attr_str(tb[LANA_ATTR_NAME]),
	       attr_str(tb[LANA_ATTR_TYPE]));
	if (code < sizeof(event_names) / sizeof(event_names[0]) &&
	    event_names[code])
		printf("%s", event_names[code]);
	else
		printf("event_%llu", code);
	printf(" %llu\n", attr_uint(tb[LANA_ATTR_VALUE]));
	fflush(stdout);
	return 0;
}

static volatile sig_atomic_t monitor_stop;

static void monitor_signal(int sig)
{
	(void)sig;
	monitor_stop = 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* fbctl monitor [--count N] [--timeout SEC] */
static int monitor(int argc, char **argv)
{
	long long count = -1, seen = 0, idle_ms = -1, last, left;
	struct sigaction sa = { .sa_handler = monitor_signal };
	struct lnl nl;
	char *end;
	int i, ret;

	for (i = 2; i < argc; i++) {
		double sec;

		if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			count = strtoll(argv[++i], &end, 10);
			if (*end || count < 1) {
				fprintf(stderr, "fbctl: monitor: bad --count '%s'; use a whole number of events, 1 or more\n",
					argv[i]);
				return 1;
			}
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			sec = strtod(argv[++i], &end);
			if (*end || !(sec > 0) || sec > 86400) {
				fprintf(stderr, "fbctl: monitor: bad --timeout '%s'; use seconds, more than 0\n",
					argv[i]);
				return 1;
			}
			idle_ms = (long long)(sec * 1000);
			if (!idle_ms)
				idle_ms = 1;
		} else {
			fprintf(stderr, "fbctl: monitor takes [--count N] [--timeout SEC]; usage: fbctl monitor [--count N] [--timeout SEC]\n");
			return 1;
		}
	}
	ret = lnl_open(&nl);
	if (!ret)
		ret = lnl_join_events(&nl);
	if (ret) {
		fbctl_fail(1, argv + 1, -ret, nl.err);
		if (nl.fd >= 0)
			lnl_close(&nl);
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* scripts wait for this line before they make events happen */
	fprintf(stderr, "fbctl: monitoring LANA events\n");
	last = now_ms();
	while (!monitor_stop && (count < 0 || seen < count)) {
		int wait = -1;

		if (idle_ms >= 0) {
			long long left = last + idle_ms - now_ms();

			if (left <= 0)
				break;
			wait = left > 1000 ? 1000 : (int)left;
		} else {
			wait = 1000;	/* look at monitor_stop now and then */
		}
		left = count < 0 ? -1 : count - seen;
		ret = lnl_recv_events(&nl, wait, event_print, &left);
		if (ret == -ENOBUFS) {
			fprintf(stderr, "fbctl: monitor: events lost (the socket's receive buffer overran)\n");
			continue;
		}
		if (ret < 0) {
			fbctl_fail(1, argv + 1, -ret, nl.err);
			lnl_close(&nl);
			return 1;
		}
		if (ret > 0) {
			seen = count < 0 ? seen + ret : count - left;
			last = now_ms();
		}
	}
	lnl_close(&nl);
	if (count > 0 && seen < count) {
		fprintf(stderr, "fbctl: monitor: %lld of %lld events came\n", seen,
			count);
		return 1;
	}
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
	if (!strcmp(argv[1], "monitor"))
		return monitor(argc, argv);
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
		ret = list_print(&nl);
	} else {
		ret = lnl_request(&nl, c->cmd, attrs, nattrs);
	}
	if (ret)
		fbctl_fail(argc - 1, argv + 1, -ret, nl.err);
	lnl_close(&nl);
	return ret ? 1 : 0;
}
