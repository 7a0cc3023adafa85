/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The drop counter every program of kernel/xdp/ keeps: one u64 in an array map,
 * pinned by name, so the guest reads it from bpffs without bpftool
 * (`cat /sys/fs/bpf/<tc|xdp>/globals/<map>`; lab/bench/guest.sh reads it with bash's
 * `read`).  One inlined array lookup and one atomic add per frame: what LANA's engine
 * spends on its own statistics (/proc/net/lana/ppe) per frame too.
 */
#ifndef LANA_DROPS_BPF_H
#define LANA_DROPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define LANA_DROPS_MAP(name)					\
	struct {						\
		__uint(type, BPF_MAP_TYPE_ARRAY);		\
		__uint(max_entries, 1);				\
		__type(key, __u32);				\
		__type(value, __u64);				\
		__uint(pinning, LIBBPF_PIN_BY_NAME);		\
	} name SEC(".maps")

static __always_inline void lana_count_drop(void *map)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(map, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
}

#endif /* LANA_DROPS_BPF_H */
