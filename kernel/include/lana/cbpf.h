/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Classic BPF programs written into a block's proc file (fb_bpf,
 * fb_classify): the text parser, the kernel checker and the read-back.
 *
 * Accepted text: `bpfc FILE` output ("{ 0x28, 0, 0, 0x0000000c },"
 * lines), `tcpdump -ddd` output (a count line, then "code jt jf k"
 * lines), `bpfc -f tcpdump` (no count line) and the comma-separated
 * one-line form of `bpfc -f xt_bpf`.  Blank lines and lines starting with
 * '#' or ';' are ignored.  A malformed or rejected program gives -EINVAL
 * and one kernel log line "<type> <instance>: line N: <problem>; old
 * program kept".
 *
 * The program sits behind an RCU pointer in the block's priv: publish
 * with lana_cbpf_swap(), which frees the old one after a grace period.
 */
#ifndef _LANA_CBPF_H
#define _LANA_CBPF_H

#include <linux/ctype.h>
#include <linux/err.h>
#include <linux/filter.h>
#include <linux/kernel.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>

/* A loaded program together with the instructions it was built from. */
struct lana_cbpf_filter {
	struct bpf_prog *prog;
	unsigned int len;
	struct sock_filter insns[];
};

struct lana_cbpf_parse {
	const char *type;		/* block type, for messages */
	const char *name;		/* instance, for messages */
	unsigned int line;		/* 1-based line number */
	struct sock_filter *insns;	/* BPF_MAXINSNS slots */
	unsigned int len;
	long count;			/* count line seen, or -1 */
};

#define lana_cbpf_parse_err(p, fmt, ...)				\
	pr_warn("%s %s: line %u: " fmt "; old program kept\n",		\
		(p)->type, (p)->name, (p)->line, ##__VA_ARGS__)

/* Parse whitespace-separated numbers of one item into vals (at most 4). */
static inline int lana_cbpf_numbers(struct lana_cbpf_parse *p, char *item,
				    u32 *vals)
{
	char *tok;
	int n = 0;

	while ((tok = strsep(&item, " \t\r\v\f")) != NULL) {
		if (!*tok)
			continue;
		if (n == 4) {
			lana_cbpf_parse_err(p, "more than 4 numbers (expected code jt jf k)");
			return -EINVAL;
		}
		if (kstrtou32(tok, 0, &vals[n])) {
			lana_cbpf_parse_err(p, "'%s' is not a number", tok);
			return -EINVAL;
		}
		n++;
	}
	return n;
}

static inline int lana_cbpf_add_insn(struct lana_cbpf_parse *p, const u32 *v)
{
	struct sock_filter *insn;

	if (v[0] > 0xffff || v[1] > 0xff || v[2] > 0xff) {
		lana_cbpf_parse_err(p, "value out of range (code is 16 bit, jt/jf 8 bit)");
		return -EINVAL;
	}
	if (p->len >= BPF_MAXINSNS) {
		lana_cbpf_parse_err(p, "more than %d instructions", BPF_MAXINSNS);
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
static inline int lana_cbpf_brace_line(struct lana_cbpf_parse *p, char *line)
{
	char *end = strchr(line, '}');
	u32 vals[4];
	char *c;
	int n;

	if (!end) {
		lana_cbpf_parse_err(p, "missing '}'");
		return -EINVAL;
	}
	*end = '\0';
	c = skip_spaces(end + 1);
	if (*c == ',')
		c = skip_spaces(c + 1);
	if (*c) {
		lana_cbpf_parse_err(p, "unexpected text after '}'");
		return -EINVAL;
	}
	for (c = line + 1; *c; c++)
		if (*c == ',')
			*c = ' ';
	n = lana_cbpf_numbers(p, line + 1, vals);
	if (n < 0)
		return n;
	if (n != 4) {
		lana_cbpf_parse_err(p, "expected 4 numbers { code, jt, jf, k }, got %d", n);
		return -EINVAL;
	}
	return lana_cbpf_add_insn(p, vals);
}

/* "40 0 0 12" lines (tcpdump -ddd), possibly comma separated (xt_bpf). */
static inline int lana_cbpf_plain_line(struct lana_cbpf_parse *p, char *line)
{
	char *item;
	u32 vals[4];
	int n, err;

	while ((item = strsep(&line, ",")) != NULL) {
		n = lana_cbpf_numbers(p, item, vals);
		if (n < 0)
			return n;
		if (n == 0)
			continue;
		if (n == 1 && p->count < 0 && p->len == 0) {
			p->count = vals[0];
			continue;
		}
		if (n != 4) {
			lana_cbpf_parse_err(p, "expected 4 numbers \"code jt jf k\", got %d", n);
			return -EINVAL;
		}
		err = lana_cbpf_add_insn(p, vals);
		if (err)
			return err;
	}
	return 0;
}

static inline int lana_cbpf_parse_text(struct lana_cbpf_parse *p, char *text)
{
	char *line;
	int err;

	while ((line = strsep(&text, "\n")) != NULL) {
		p->line++;
		line = strim(line);
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '{')
			err = lana_cbpf_brace_line(p, line);
		else
			err = lana_cbpf_plain_line(p, line);
		if (err)
			return err;
	}
	if (p->len == 0) {
		pr_warn("%s %s: no instructions found (write `bpfc FILE` or `tcpdump -ddd` output); old program kept\n",
			p->type, p->name);
		return -EINVAL;
	}
	if (p->count >= 0 && p->count != p->len) {
		pr_warn("%s %s: count line says %ld instructions but %u follow; old program kept\n",
			p->type, p->name, p->count, p->len);
		return -EINVAL;
	}
	return 0;
}

static inline void lana_cbpf_free(struct lana_cbpf_filter *filter)
{
	if (!filter)
		return;
	bpf_prog_destroy(filter->prog);
	kfree(filter);
}

static inline struct lana_cbpf_filter *
lana_cbpf_build(const char *type, const char *name,
		const struct sock_filter *insns, unsigned int len)
{
	struct lana_cbpf_filter *filter;
	struct sock_fprog_kern fprog;
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
		pr_warn("%s %s: the kernel's classic BPF checker rejected the %u-instruction program (error %d: a jump past the end, no final ret, or a bad opcode?); old program kept\n",
			type, name, len, err);
		kfree(filter);
		return ERR_PTR(err == -ENOMEM ? err : -EINVAL);
	}
	return filter;
}

/*
 * Parse and check the program text buf (len bytes); process context.
 * Returns the new filter or an ERR_PTR (-EINVAL, -ENOMEM).
 */
static inline struct lana_cbpf_filter *
lana_cbpf_load(const char *type, const char *name, const char *buf,
	       size_t len)
{
	struct lana_cbpf_parse p = { .type = type, .name = name, .count = -1 };
	struct lana_cbpf_filter *filter;
	char *text;

	text = kstrndup(buf, len, GFP_KERNEL);
	p.insns = kmalloc_array(BPF_MAXINSNS, sizeof(*p.insns), GFP_KERNEL);
	if (!text || !p.insns)
		filter = ERR_PTR(-ENOMEM);
	else if (lana_cbpf_parse_text(&p, text))
		filter = ERR_PTR(-EINVAL);
	else
		filter = lana_cbpf_build(type, name, p.insns, p.len);
	kfree(p.insns);
	kfree(text);
	return filter;
}

/*
 * Publish filter in *slot (lock serialises writers), wait until no packet
 * runs the old program any more, free it.  Process context.
 */
static inline void lana_cbpf_swap(struct lana_cbpf_filter __rcu **slot,
				  struct lana_cbpf_filter *filter,
				  struct mutex *lock)
{
	struct lana_cbpf_filter *old;

	mutex_lock(lock);
	old = rcu_replace_pointer(*slot, filter, lockdep_is_held(lock));
	mutex_unlock(lock);
	synchronize_rcu();
	lana_cbpf_free(old);
}

/* The program in bpfc form, one "{ code, jt, jf, k }," line each. */
static inline void lana_cbpf_show(struct seq_file *m,
				  struct lana_cbpf_filter __rcu **slot)
{
	struct lana_cbpf_filter *filter;
	unsigned int i;

	rcu_read_lock();
	filter = rcu_dereference(*slot);
	for (i = 0; filter && i < filter->len; i++) {
		const struct sock_filter *insn = &filter->insns[i];

		seq_printf(m, "{ 0x%x, %u, %u, 0x%08x },\n", insn->code,
			   insn->jt, insn->jf, insn->k);
	}
	rcu_read_unlock();
}

#endif /* _LANA_CBPF_H */
