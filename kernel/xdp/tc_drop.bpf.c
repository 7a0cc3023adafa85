// SPDX-License-Identifier: GPL-2.0
/*
 * tc_drop - drop every frame at tc ingress (cls_bpf, direct action), counting it.
 *
 *   tc qdisc add dev vb clsact
 *   tc filter add dev vb ingress bpf direct-action obj tc_drop.bpf.o sec tc
 *   cat /sys/fs/bpf/tc/globals/tc_drop_cnt
 *
 * The ingress qdisc counts the drops as well (`tc -s qdisc show dev vb`).
 */
#include <linux/pkt_cls.h>
#include "drops.bpf.h"

LANA_DROPS_MAP(tc_drop_cnt);

SEC("tc")
int tc_drop(struct __sk_buff *skb)
{
	lana_count_drop(&tc_drop_cnt);
	return TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
