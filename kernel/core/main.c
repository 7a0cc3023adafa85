// SPDX-License-Identifier: GPL-2.0
/*
 * LANA core module: brings up the engine, procfs and the netlink control
 * interface.  Block modules (fb_*.ko) register their types afterwards.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include "internal.h"

static int __init lana_init(void)
{
	int ret;

	ret = lana_idp_init();
	if (ret)
		return ret;
	ret = lana_engine_init();
	if (ret)
		goto err_idp;
	ret = lana_procfs_init();
	if (ret)
		goto err_engine;
	ret = lana_netlink_init();
	if (ret)
		goto err_procfs;
	pr_info(LANA_PFX "core up (netlink family %s, /proc/net/lana)\n",
		LANA_GENL_NAME);
	return 0;

err_procfs:
	lana_procfs_exit();
err_engine:
	lana_engine_exit();
err_idp:
	lana_idp_exit();
	return ret;
}

static void __exit lana_exit(void)
{
	lana_netlink_exit();
	lana_rm_all();
	lana_procfs_exit();
	rcu_barrier();		/* kfree_rcu of subscription edges */
	lana_engine_exit();
	lana_idp_exit();
	pr_info(LANA_PFX "core down\n");
}

module_init(lana_init);
module_exit(lana_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA: Lightweight Autonomic Network Architecture core");
MODULE_AUTHOR("LANA lab");
