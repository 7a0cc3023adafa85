#!/bin/bash
# measure.sh: packets per second through your two filters, side by side, in one guest.
#
#   bash measure.sh OPS OBJECT [ROUNDS] [SECONDS]
#
# OPS: your filter.bpf compiled by bpfc (its `{ code, jt, jf, k },` lines); OBJECT: your
# filter.bpf.c compiled by clang (filter.bpf.o). Defaults: 2 rounds, 0.4 s per point (the
# grader uses the same). The source is lanagen (kernel/bench/lanagen.c, as in exercise 6
# and `lanalab bench`): a kernel thread that hands 64-byte IPv4/UDP frames to port 9 to
# the receive path of vb, one end of a veth pair va/vb, as fast as it can. Both filters
# drop these frames (9 is not your port), so each point measures what a verdict costs:
#   lana   vb -> mf (bpf block with OPS) -> msink (counter): the bpf block drops each frame
#   xdp    vb without LANA, OBJECT attached in generic mode (ip link ... xdpgeneric)
# counted: the frames lanagen handed to vb (/sys/module/lanagen/parameters/sent; each has
# been through the filter when netif_receive_skb returns). Odd rounds lana first, even
# rounds xdp first; lanagen runs throughout, each point is measured after a warm-up
# following the switch. While traffic runs only shell builtins are used (a fork+exec costs
# ~40 ms under TCG). Output: `point ROUND MODE PPS` per point and round, then
# `median MODE PPS` and `ratio xdp_vs_lana R` (the median of the per-round ratios).
#
# Run it in a lab booted with `lanalab up --clock instructions` (the grader's clock): the
# guest's clock then counts instructions, so the figures do not move with the host's load.
# It leaves the guest as it found it: no va/vb, no XDP program, no mf/msink, no lanagen.

OPS=$1
OBJECT=$2
ROUNDS=${3:-2}
SECONDS_PER_POINT=${4:-0.4}
WARMUP=0.2
SENT=/sys/module/lanagen/parameters/sent
FIFO=/tmp/measure-filters.fifo

die() { echo "measure.sh: $*" >&2; exit 1; }
[ -r "$OPS" ] && [ -r "$OBJECT" ] || die "usage: measure.sh OPS OBJECT [ROUNDS] [SECONDS]"
modinfo -F name lanagen > /dev/null 2>&1 ||
	die "the guest has no lanagen module: rebuild the image (lanalab image build)"
modprobe -a lana fb_eth fb_bpf fb_counter || die "cannot load the LANA modules"
[ -d /sys/module/lanagen ] && { rmmod lanagen || die "cannot stop an earlier lanagen"; }
# While any device has an XDP program, every receive path checks for one (a static key in
# __netif_receive_skb_core), LANA's too: the lana point would pay for it.
others=$(ip -o link show | grep -v '^[0-9]*: v[ab][@:]' | grep -E 'xdp|prog/' | cut -d: -f2)
[ -z "$others" ] || die "an XDP program is attached to$others: measure in a guest without one"

cleanup() {
	[ -d /sys/module/lanagen ] && rmmod lanagen
	ip link set dev vb xdpgeneric off 2> /dev/null
	fbctl unbind msink mf 2> /dev/null; fbctl unbind mf vb 2> /dev/null
	fbctl rm msink 2> /dev/null; fbctl rm mf 2> /dev/null
	vlink ethernet unhook vb 2> /dev/null
	ip link del va 2> /dev/null
	rm -f "$FIFO"
}
trap cleanup EXIT
cleanup
ip link add name va type veth peer name vb && ip link set va up && ip link set vb up ||
	die "cannot make the veth pair va/vb"
fbctl add mf bpf > /dev/null && fbctl add msink counter > /dev/null &&
	fbctl bind msink mf > /dev/null || die "cannot add mf and msink"
cat "$OPS" > /proc/net/lana/fblock/mf || die "the bpf block refused $OPS"
mkfifo "$FIFO" || die "cannot make $FIFO"
exec {SLEEP_FD}<>"$FIFO"
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }  # sleep without a fork

STATE=none
mode() {  # lana | xdp
	[ "$1" = "$STATE" ] && return
	case $1 in
	lana) { [ "$STATE" = none ] || ip link set dev vb xdpgeneric off; } &&
	      vlink ethernet hook vb > /dev/null && fbctl bind mf vb > /dev/null ;;
	xdp) { [ "$STATE" = none ] ||
	       { fbctl unbind mf vb > /dev/null && vlink ethernet unhook vb > /dev/null; }; } &&
	     ip link set dev vb xdpgeneric obj "$OBJECT" sec xdp ;;
	esac || die "cannot switch to $1"
	STATE=$1
}

measure() {  # -> PPS, lanagen running
	nap "$WARMUP"
	t0=${EPOCHREALTIME/[.,]/}; read -r s0 < "$SENT"
	nap "$SECONDS_PER_POINT"
	t1=${EPOCHREALTIME/[.,]/}; read -r s1 < "$SENT"
	PPS=$(((s1 - s0) * 1000000 / (t1 - t0)))
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "lana: vb -> mf (bpf) -> msink; xdp: vb with your XDP program; $ROUNDS rounds of $SECONDS_PER_POINT s"
mode lana
modprobe lanagen dev=vb len=60 || die "cannot start lanagen on vb"
declare -A ALL
RATIOS=""
r=1
while [ "$r" -le "$ROUNDS" ]; do
	if [ $((r % 2)) -eq 1 ]; then order="lana xdp"; else order="xdp lana"; fi
	declare -A THIS
	for m in $order; do
		mode "$m"
		measure
		echo "point $r $m $PPS"
		ALL[$m]="${ALL[$m]} $PPS"
		THIS[$m]=$PPS
	done
	RATIOS="$RATIOS $(awk "BEGIN {printf \"%.4f\", ${THIS[xdp]} / ${THIS[lana]}}")"
	r=$((r + 1))
done
rmmod lanagen || die "cannot stop lanagen"
for m in lana xdp; do
	echo "median $m $(median ${ALL[$m]})"
done
echo "ratio xdp_vs_lana $(median $RATIOS)"
