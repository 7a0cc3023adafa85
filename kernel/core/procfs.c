// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/net/lana/: fblocks, ppe, types and fblock/<name> per instance.
 * The formats are documented in docs/kernel/procfs.md.
 */
#include <linux/capability.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <net/net_namespace.h>
#include "internal.h"

#define LANA_PROC_WRITE_MAX	(64 * 1024)

struct proc_dir_entry *lana_proc_dir;
struct proc_dir_entry *lana_proc_fblock_dir;

/*
 * The per-instance files take lana_ctl_mutex, but rm/replace remove those
 * files while holding it (and proc removal waits for running handlers).
 * So the handlers only try the mutex and otherwise restart the syscall,
 * as net-sysfs does with rtnl.
 */
static int lana_proc_lock(void)
{
	if (!mutex_trylock(&lana_ctl_mutex))
		return restart_syscall();
	return 0;
}

/* one element of a [a,b,c] list; *first is reset by the caller per list */
static void lana_seq_list(struct seq_file *m, bool *first, const char *pfx,
			  idp_t idp)
{
	seq_printf(m, "%s%s%u", *first ? "" : ",", pfx, idp);
	*first = false;
}

static int lana_fblocks_show(struct seq_file *m, void *v)
{
	struct lana_inst *li, *pub;
	struct lana_bind *e;
	struct lana_sub *s;
	bool first;
	int ret;

	ret = mutex_lock_interruptible(&lana_ctl_mutex);
	if (ret)
		return ret;
	list_for_each_entry(li, &lana_instances, node) {
		idp_t me = li->fb.idp;

		seq_printf(m, "%s %s %u %u ", li->fb.name, li->fb.factory->type,
			   me, refcount_read(&li->refcnt));
		/* ports: in:X = ingress port to X (X on top of us), out:X */
		seq_putc(m, '[');
		first = true;
		list_for_each_entry(e, &lana_binds, node) {
			if (e->lower == me)
				lana_seq_list(m, &first, "in:", e->upper);
			else if (e->upper == me)
				lana_seq_list(m, &first, "out:", e->lower);
		}
		seq_puts(m, "] ");
		/* subscriptions: the blocks whose events we get */
		seq_putc(m, '[');
		first = true;
		list_for_each_entry(pub, &lana_instances, node) {
			list_for_each_entry(s, &pub->subscribers, node)
				if (s->subscriber == me)
					lana_seq_list(m, &first, "", pub->fb.idp);
		}
		seq_puts(m, "] ");
		/* subscribers: the blocks that get our events */
		seq_putc(m, '[');
		first = true;
		list_for_each_entry(s, &li->subscribers, node)
			lana_seq_list(m, &first, "", s->subscriber);
		seq_printf(m, "] %lld\n", (long long)atomic64_read(&li->events));
	}
	mutex_unlock(&lana_ctl_mutex);
	return 0;
}

static int lana_types_proc_show(struct seq_file *m, void *v)
{
	return lana_types_show(m);
}

/* ---- /proc/net/lana/fblock/<name> -------------------------------------- */

static int lana_inst_show(struct seq_file *m, void *v)
{
	struct lana_inst *li = m->private;
	int ret;

	ret = lana_proc_lock();
	if (ret)
		return ret;
	if (li->fb.factory->proc_show)
		ret = li->fb.factory->proc_show(m, &li->fb);
	else
		seq_printf(m, "%s %s %u\n", li->fb.name, li->fb.factory->type,
			   li->fb.idp);
	mutex_unlock(&lana_ctl_mutex);
	return ret;
}

static int lana_inst_open(struct inode *inode, struct file *file)
{
	return single_open(file, lana_inst_show, pde_data(inode));
}

static ssize_t lana_inst_write(struct file *file, const char __user *ubuf,
			       size_t len, loff_t *ppos)
{
	struct lana_inst *li = ((struct seq_file *)file->private_data)->private;
	ssize_t ret;
	char *buf;

	if (!li->fb.factory->proc_write)
		return -EOPNOTSUPP;
	/*
	 * Same privilege as the netlink commands (GENL_ADMIN_PERM): the file
	 * mode alone would let a uid-0 process without CAP_NET_ADMIN reprogram
	 * a block.  Checked against the opener's credentials.
	 */
	if (!file_ns_capable(file, &init_user_ns, CAP_NET_ADMIN))
		return -EPERM;
	if (len > LANA_PROC_WRITE_MAX) {
		pr_info_ratelimited(LANA_PFX "%s: write of %zu bytes refused, at most %d in one write\n",
				    li->fb.name, len, LANA_PROC_WRITE_MAX);
		return -EFBIG;
	}
	buf = memdup_user_nul(ubuf, len);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	ret = lana_proc_lock();
	if (!ret) {
		ret = li->fb.factory->proc_write(&li->fb, buf, len);
		mutex_unlock(&lana_ctl_mutex);
	}
	kfree(buf);
	return ret;
}

static const struct proc_ops lana_inst_proc_ops = {
	.proc_open	= lana_inst_open,
	.proc_read	= seq_read,
	.proc_lseek	= seq_lseek,
	.proc_release	= single_release,
	.proc_write	= lana_inst_write,
};

int lana_proc_inst_add(struct lana_inst *li)
{
	umode_t mode = li->fb.factory->proc_write ? 0644 : 0444;

	li->proc = proc_create_data(li->fb.name, mode, lana_proc_fblock_dir,
				    &lana_inst_proc_ops, li);
	return li->proc ? 0 : -ENOMEM;
}

void lana_proc_inst_del(struct lana_inst *li)
{
	/* waits for handlers still running on this file */
	proc_remove(li->proc);
	li->proc = NULL;
}

/* ---- /proc/net/lana/engine: the engine model -------------------------- */

static int lana_engine_open(struct inode *inode, struct file *file)
{
	return single_open(file, lana_engine_show, NULL);
}

/* "NAME[\n]": switch to that model (lana_engine_select: drains, loses nothing) */
static ssize_t lana_engine_write(struct file *file, const char __user *ubuf,
				 size_t len, loff_t *ppos)
{
	char buf[32];
	int ret;

	if (!file_ns_capable(file, &init_user_ns, CAP_NET_ADMIN))
		return -EPERM;
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	ret = mutex_lock_interruptible(&lana_ctl_mutex);
	if (ret)
		return ret;
	ret = lana_engine_select(buf);
	mutex_unlock(&lana_ctl_mutex);
	if (ret == -EINVAL)
		pr_info_ratelimited(LANA_PFX "engine: no such model; softirq, kthread-hp, kthread-np, kthread-cs or hrtimer\n");
	return ret ? ret : len;
}

static const struct proc_ops lana_engine_proc_ops = {
	.proc_open	= lana_engine_open,
	.proc_read	= seq_read,
	.proc_lseek	= seq_lseek,
	.proc_release	= single_release,
	.proc_write	= lana_engine_write,
};

int lana_procfs_init(void)
{
	lana_proc_dir = proc_mkdir("lana", init_net.proc_net);
	if (!lana_proc_dir)
		return -ENOMEM;
	lana_proc_fblock_dir = proc_mkdir("fblock", lana_proc_dir);
	if (!lana_proc_fblock_dir ||
	    !proc_create_single("fblocks", 0444, lana_proc_dir,
				lana_fblocks_show) ||
	    !proc_create_single("ppe", 0444, lana_proc_dir, lana_ppe_show) ||
	    !proc_create_single("types", 0444, lana_proc_dir,
				lana_types_proc_show) ||
	    !proc_create("engine", 0644, lana_proc_dir,
			 &lana_engine_proc_ops)) {
		proc_remove(lana_proc_dir);
		return -ENOMEM;
	}
	return 0;
}

void lana_procfs_exit(void)
{
	proc_remove(lana_proc_dir);
}
