// SPDX-License-Identifier: GPL-2.0
/*
 * vlink - connect network devices to LANA.
 *
 * `vlink ethernet hook DEV` adds an instance named DEV of block type "eth";
 * the eth block takes the instance name as the device to hook.
 * `vlink ethernet add NAME CARRIER ID` adds an instance NAME of type
 * "ethvlink", which creates the virtual Ethernet device NAME carrying
 * frames of EtherType 0xAC00|ID over CARRIER (setup string "carrier=CARRIER
 * id=ID" in LANA_ATTR_OPT of the add).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lnl.h"

static const char usage[] =
"Usage: vlink ethernet hook DEV     send DEV's received frames into LANA\n"
"       vlink ethernet unhook DEV   give DEV back to the Linux stack\n"
"       vlink ethernet add NAME CARRIER ID\n"
"                                   virtual Ethernet device NAME for frames\n"
"                                   of EtherType 0xAC00|ID (ID 0..255) on\n"
"                                   the device CARRIER\n"
"       vlink ethernet rm NAME      remove the virtual device NAME\n"
"\n"
"hook creates a LANA instance named DEV (block type eth); add creates one\n"
"named NAME (block type ethvlink) and the device NAME (see ip link).  Bind\n"
"blocks on top of it with 'fbctl bind BLOCK NAME'.  Unbind them before\n"
"unhook or rm.  Needs root.  Examples:\n"
"  vlink ethernet hook eth0 && fbctl add c1 counter && fbctl bind c1 eth0\n"
"  vlink ethernet add vl10 eth0 10 && ip -s link show vl10\n";

static int bad_usage(void)
{
	fputs(usage, stderr);
	return 1;
}

int main(int argc, char **argv)
{
	struct lnl_attr attrs[3];
	int ret, nattrs = 1, add;
	char opt[LANA_OPTSIZ];
	const char *what;
	uint8_t cmd;
	struct lnl nl;

	if (argc >= 2 && (!strcmp(argv[1], "-h") ||
			  !strcmp(argv[1], "--help") ||
			  !strcmp(argv[1], "help"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc < 4 || strcmp(argv[1], "ethernet"))
		return bad_usage();
	what = argv[2];
	attrs[0] = (struct lnl_attr){ LANA_ATTR_NAME, argv[3], 0 };
	add = !strcmp(what, "add");
	if (!strcmp(what, "hook") || !strcmp(what, "unhook") ||
	    !strcmp(what, "rm")) {
		if (argc != 4)
			return bad_usage();
	} else if (add) {
		char *end;
		long id;

		if (argc != 6)
			return bad_usage();
		id = strtol(argv[5], &end, 0);
		if (*argv[5] == '\0' || *end || id < 0 || id > 255) {
			fprintf(stderr, "vlink: ethernet add %s: ID must be a number 0..255 (EtherType 0xAC00|ID), not '%s'\n",
				argv[3], argv[5]);
			return 1;
		}
		snprintf(opt, sizeof(opt), "carrier=%s id=%ld", argv[4], id);
		attrs[nattrs++] = (struct lnl_attr){ LANA_ATTR_OPT, opt, 0 };
	} else {
		return bad_usage();
	}
	if (!strcmp(what, "hook"))
		attrs[nattrs++] = (struct lnl_attr){ LANA_ATTR_TYPE, "eth", 0 };
	else if (add)
		attrs[nattrs++] = (struct lnl_attr){ LANA_ATTR_TYPE, "ethvlink",
						     0 };
	cmd = (!strcmp(what, "hook") || add) ? LANA_CMD_ADD : LANA_CMD_RM;

	ret = lnl_open(&nl);
	if (!ret)
		ret = lnl_request(&nl, cmd, attrs, nattrs);
	if (ret) {
		fprintf(stderr, "vlink: ethernet %s %s: %s", what, argv[3],
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
