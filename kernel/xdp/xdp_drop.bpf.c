// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_drop - drop every frame at the XDP hook, counting it.
 *
 *   ip link set dev vb xdpgeneric obj xdp_drop.bpf.o sec xdp
 *   cat /sys/fs/bpf/xdp/globals/xdp_drop_cnt
 *
 * The cheapest thing a program at the earliest hook can do: the floor of an
 * XDP receive path (generic mode: after the skb is built, before the stack).
 */
#include "drops.bpf.h"

LANA_DROPS_MAP(xdp_drop_cnt);

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	lana_count_drop(&xdp_drop_cnt);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
