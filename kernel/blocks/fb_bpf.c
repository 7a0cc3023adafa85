// SPDX-License-Identifier: GPL-2.0
/*
 * fb_bpf - classic BPF packet filter.
 *
 * Write a program into /proc/net/lana/fblock/<name>:
 *
 *   bpfc ipv4.bpf > /proc/net/lana/fblock/fb3       lines "{ 0x28, 0, 0, 0x0000000c },"
 *   tcpdump -ddd ip > /proc/net/lana/fblock/fb3     count line, then "code jt jf k"
 *
 * (also accepted: `bpfc -f tcpdump` without the count line, and the
 * comma-separated one-line form of `bpfc -f xt_bpf`; blank lines and lines
 * starting with '#' or ';' are ignored).  The kernel's classic BPF checker
 * validates the program; a malformed or rejected program fails the write
 * with -EINVAL, logs one line saying why, and the old program stays.
 *
 * Packets run through the program with skb->data at the Ethernet header,
 * so `ldh [12]` and `ldh #proto` both see the EtherType.  Verdict 0 drops
 * the packet; anything else forwards it to the port for its direction.
 * Without a program every packet passes.  Reading the file prints the
 * loaded program in bpfc form, so it can be written back as is.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/ctype.h>
#include <linux/filter.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/rcupdate.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <lana/lana.h>

/* A loaded program together with the instructions it was built from. */
struct fb_bpf_filter {
	struct bpf_prog *prog;
	unsigned int len;
	struct sock_filter insns[];
};

struct fb_bpf_priv {
	idp_t port[NUM_TYPES];
	struct fb_bpf_filter __rcu *filter;
	struct mutex load_lock;		/* serialises program swaps */
};

static int fb_bpf_netrx(const struct fblock *fb, struct sk_buff *skb,
			enum path_type *dir)
{
	struct fb_bpf_priv *priv = fb->priv;
	struct fb_bpf_filter *filter = rcu_dereference(priv->filter);
	idp_t next = READ_ONCE(priv->port[*dir]);

	if (next == IDP_UNKNOWN ||
	    (filter && bpf_prog_run_save_cb(filter->prog, skb) == 0)) {
		kfree_skb(skb);
		return PPE_DROPPED;
	}
	lana_skb_set_next(skb, next);
	return PPE_SUCCESS;
}

/* ---- parsing the program text ---------------------------------------- */

struct fb_bpf_parse {
	const char *name;		/* instance, for messages */
	unsigned int line;		/* 1-based line number */
	struct sock_filter *insns;	/* BPF_MAXINSNS slots */
	unsigned int len;
	long count;			/* count line seen, or -1 */
};

#define fb_bpf_parse_err(p, fmt, ...)					\
	pr_warn("bpf %s: line %u: " fmt "; old program kept\n",		\
		(p)->name, (p)->line, ##__VA_ARGS__)

/* Parse whitespace-separated numbers of one item into vals (at most 4). */
static int fb_bpf_numbers(struct fb_bpf_parse *p, char *item, u32 *vals)
{
	char *tok;
	int n = 0;

	while ((tok = strsep(&item, " \t\r\v\f")) != NULL) {
		if (!*tok)
			continue;
		if (n == 4) {
			fb_bpf_parse_err(p, "more than 4 numbers (expected code jt jf k)");
			return -EINVAL;
		}
		if (kstrtou32(tok, 0, &vals[n])) {
			fb_bpf_parse_err(p, "'%s' is not a number", tok);
			return -EINVAL;
		}
		n++;
	}
	return n;
}

static int fb_bpf_add_insn(struct fb_bpf_parse *p, const u32 *v)
{
	struct sock_filter *insn;

	if (v[0] > 0xffff || v[1] > 0xff || v[2] > 0xff) {
		fb_bpf_parse_err(p, "value out of range (code is 16 bit, jt/jf 8 bit)");
		return -EINVAL;
	}
	if (p->len >= BPF_MAXINSNS) {
		fb_bpf_parse_err(p, "more than %d instructions", BPF_MAXINSNS);
		return -EINVAL;
	}
	insn = &p->insns[p->len++];
	insn->code = v[0];
	insn->jt = v[1];
	insn->jf = v[2];
	insn->k = v[3];
	return 0;
}

/* "{ 0x28, 0, 0, 0x0000000c }," as printed by bpfc and tcpdump -dd */
static int fb_bpf_brace_line(struct fb_bpf_parse *p, char *line)
{
	char *end = strchr(line, '}');
	u32 vals[4];
	char *c;
	int n;

	if (!end) {
		fb_bpf_parse_err(p, "missing '}'");
		return -EINVAL;
	}
	*end = '\0';
	c = skip_spaces(end + 1);
	if (*c == ',')
		c = skip_spaces(c + 1);
	if (*c) {
		fb_bpf_parse_err(p, "unexpected text after '}'");
		return -EINVAL;
	}
	for (c = line + 1; *c; c++)
		if (*c == ',')
			*c = ' ';
	n = fb_bpf_numbers(p, line + 1, vals);
	if (n < 0)
		return n;
	if (n != 4) {
		fb_bpf_parse_err(p, "expected 4 numbers { code, jt, jf, k }, got %d", n);
		return -EINVAL;
	}
	return fb_bpf_add_insn(p, vals);
}

/* "40 0 0 12" lines (tcpdump -ddd), possibly comma separated (xt_bpf). */
static int fb_bpf_plain_line(struct fb_bpf_parse *p, char *line)
{
	char *item;
	u32 vals[4];
	int n, err;

	while ((item = strsep(&line, ",")) != NULL) {
		n = fb_bpf_numbers(p, item, vals);
		if (n < 0)
			return n;
		if (n == 0)
			continue;
		if (n == 1 && p->count < 0 && p->len == 0) {
			p->count = vals[0];
			continue;
		}
		if (n != 4) {
			fb_bpf_parse_err(p, "expected 4 numbers \"code jt jf k\", got %d", n);
			return -EINVAL;
		}
		err = fb_bpf_add_insn(p, vals);
		if (err)
			return err;
	}
	return 0;
}

static int fb_bpf_parse_text(struct fb_bpf_parse *p, char *text)
{
	char *line;
	int err;

	while ((line = strsep(&text, "\n")) != NULL) {
		p->line++;
		line = strim(line);
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '{')
			err = fb_bpf_brace_line(p, line);
		else
			err = fb_bpf_plain_line(p, line);
		if (err)
			return err;
	}
	if (p->len == 0) {
		pr_warn("bpf %s: no instructions found (write `bpfc FILE` or `tcpdump -ddd` output); old program kept\n",
			p->name);
		return -EINVAL;
	}
	if (p->count >= 0 && p->count != p->len) {
		pr_warn("bpf %s: count line says %ld instructions but %u follow; old program kept\n",
			p->name, p->count, p->len);
		return -EINVAL;
	}
	return 0;
}

/* ---- loading ---------------------------------------------------------- */

static void fb_bpf_filter_free(struct fb_bpf_filter *filter)
{
	if (!filter)
		return;
	bpf_prog_destroy(filter->prog);
	kfree(filter);
}

static struct fb_bpf_filter *fb_bpf_build(const char *name,
					  const struct sock_filter *insns,
					  unsigned int len)
{
	struct sock_fprog_kern fprog;
	struct fb_bpf_filter *filter;
	int err;

	filter = kmalloc(struct_size(filter, insns, len), GFP_KERNEL);
	if (!filter)
		return ERR_PTR(-ENOMEM);
	memcpy(filter->insns, insns, array_size(len, sizeof(*insns)));
	filter->len = len;
	fprog.len = len;
	fprog.filter = filter->insns;
	err = bpf_prog_create(&filter->prog, &fprog);
	if (err) {
		pr_warn("bpf %s: the kernel's classic BPF checker rejected the %u-instruction program (error %d: a jump past the end, no final ret, or a bad opcode?); old program kept\n",
			name, len, err);
		kfree(filter);
		return ERR_PTR(err == -ENOMEM ? err : -EINVAL);
	}
	return filter;
}

static ssize_t fb_bpf_proc_write(struct fblock *fb, const char *buf,
				 size_t len)
{
	struct fb_bpf_priv *priv = fb->priv;
	struct fb_bpf_parse p = { .name = fb->name, .count = -1 };
	struct fb_bpf_filter *filter, *old;
	char *text;
	int err;

	text = kstrndup(buf, len, GFP_KERNEL);
	p.insns = kmalloc_array(BPF_MAXINSNS, sizeof(*p.insns), GFP_KERNEL);
	if (!text || !p.insns) {
		err = -ENOMEM;
		goto out;
	}
	err = fb_bpf_parse_text(&p, text);
	if (err)
		goto out;
	filter = fb_bpf_build(fb->name, p.insns, p.len);
	if (IS_ERR(filter)) {
		err = PTR_ERR(filter);
		goto out;
	}

	mutex_lock(&priv->load_lock);
	old = rcu_replace_pointer(priv->filter, filter,
				  lockdep_is_held(&priv->load_lock));
	mutex_unlock(&priv->load_lock);
	/* Packets still running the old program finish before it goes. */
	synchronize_rcu();
	fb_bpf_filter_free(old);
	pr_info("bpf %s: loaded %u-instruction program\n", fb->name, p.len);
out:
	kfree(p.insns);
	kfree(text);
	return err ? err : len;
}

static int fb_bpf_proc_show(struct seq_file *m, struct fblock *fb)
{
	struct fb_bpf_priv *priv = fb->priv;
	struct fb_bpf_filter *filter;
	unsigned int i;

	rcu_read_lock();
	filter = rcu_dereference(priv->filter);
	for (i = 0; filter && i < filter->len; i++) {
		const struct sock_filter *insn = &filter->insns[i];

		seq_printf(m, "{ 0x%x, %u, %u, 0x%08x },\n", insn->code,
			   insn->jt, insn->jf, insn->k);
	}
	rcu_read_unlock();
	return 0;
}

/* ---- control path ------------------------------------------------------ */

static int fb_bpf_event(struct fblock *fb, unsigned long cmd, void *arg,
			struct netlink_ext_ack *extack)
{
	struct fb_bpf_priv *priv = fb->priv;
	struct fblock_bind_msg *msg = arg;

	switch (cmd) {
	case FBLOCK_BIND_IDP:
		if (msg->dir >= NUM_TYPES) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction");
			return -EINVAL;
		}
		if (READ_ONCE(priv->port[msg->dir]) != IDP_UNKNOWN) {
			NL_SET_ERR_MSG_MOD(extack,
					   "port for this direction already bound; unbind it first");
			return -EBUSY;
		}
		WRITE_ONCE(priv->port[msg->dir], msg->idp);
		return 0;
	case FBLOCK_UNBIND_IDP:
		if (msg->dir >= NUM_TYPES) {
			NL_SET_ERR_MSG_MOD(extack, "invalid direction");
			return -EINVAL;
		}
		if (READ_ONCE(priv->port[msg->dir]) != msg->idp) {
			NL_SET_ERR_MSG_MOD(extack,
					   "not bound to that block in this direction");
			return -ENOENT;
		}
		WRITE_ONCE(priv->port[msg->dir], IDP_UNKNOWN);
		return 0;
	case FBLOCK_SET_OPT:
		NL_SET_ERR_MSG_MOD(extack,
				   "bpf has no options; write the program into /proc/net/lana/fblock/<name>");
		return -ENOENT;
	default:
		return -EOPNOTSUPP;
	}
}

static int fb_bpf_init(struct fblock *fb, struct netlink_ext_ack *extack)
{
	struct fb_bpf_priv *priv = fb->priv;

	mutex_init(&priv->load_lock);
	RCU_INIT_POINTER(priv->filter, NULL);
	return 0;
}

static void fb_bpf_destroy(struct fblock *fb)
{
	struct fb_bpf_priv *priv = fb->priv;

	if (!priv)
		return;
	/* After a grace period: no packet can still run the program. */
	fb_bpf_filter_free(rcu_dereference_protected(priv->filter, 1));
	RCU_INIT_POINTER(priv->filter, NULL);
	mutex_destroy(&priv->load_lock);
}

static struct fblock_factory fb_bpf_factory = {
	.type		= "bpf",
	.owner		= THIS_MODULE,
	.mode		= FB_MODE_DUAL,
	.priv_size	= sizeof(struct fb_bpf_priv),
	.init		= fb_bpf_init,
	.destroy	= fb_bpf_destroy,
	.netrx		= fb_bpf_netrx,
	.event		= fb_bpf_event,
	.proc_show	= fb_bpf_proc_show,
	.proc_write	= fb_bpf_proc_write,
};

static int __init fb_bpf_module_init(void)
{
	return lana_register_fblock_type(&fb_bpf_factory);
}

static void __exit fb_bpf_module_exit(void)
{
	lana_unregister_fblock_type(&fb_bpf_factory);
}

module_init(fb_bpf_module_init);
module_exit(fb_bpf_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("LANA classic BPF filter functional block");
MODULE_ALIAS("lana-fb-bpf");
