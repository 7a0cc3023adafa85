// SPDX-License-Identifier: GPL-2.0
/*
 * vlink - connect network devices to LANA.
 *
 * `vlink ethernet hook DEV` adds an instance named DEV of block type "eth";
 * the eth block takes the instance name as the device to hook.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "lnl.h"

static const char usage[] =
"Usage: vlink ethernet hook DEV     send DEV's received frames into LANA\n"
"       vlink ethernet unhook DEV   give DEV back to the Linux stack\n"
"\n"
"hook creates a LANA instance named DEV (block type eth); bind blocks on\n"
"top of it with 'fbctl bind BLOCK DEV'.  Unbind them before unhook.\n"
"Needs root.  Example:\n"
"  vlink ethernet hook eth0 && fbctl add c1 counter && fbctl bind c1 eth0\n";

int main(int argc, char **argv)
{
	struct lnl_attr attrs[2];
	int hook, ret, nattrs = 1;
	struct lnl nl;

	if (argc >= 2 && (!strcmp(argv[1], "-h") ||
			  !strcmp(argv[1], "--help") ||
			  !strcmp(argv[1], "help"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc != 4 || strcmp(argv[1], "ethernet") ||
	    (strcmp(argv[2], "hook") && strcmp(argv[2], "unhook"))) {
		fputs(usage, stderr);
		return 1;
	}
	hook = !strcmp(argv[2], "hook");
	attrs[0] = (struct lnl_attr){ LANA_ATTR_NAME, argv[3], 0 };
	if (hook)
		attrs[nattrs++] = (struct lnl_attr){ LANA_ATTR_TYPE, "eth", 0 };

	ret = lnl_open(&nl);
	if (!ret)
		ret = lnl_request(&nl, hook ? LANA_CMD_ADD : LANA_CMD_RM,
				  attrs, nattrs);
	if (ret) {
		fprintf(stderr, "vlink: ethernet %s %s: %s", argv[2], argv[3],
			strerror(-ret));
		if (nl.err[0])
			fprintf(stderr, ": %s", nl.err);
		else if (ret == -EPERM)
			fprintf(stderr, ": needs root (CAP_NET_ADMIN)");
		fputc('\n', stderr);
	}
	lnl_close(&nl);
	return ret ? 1 : 0;
}
