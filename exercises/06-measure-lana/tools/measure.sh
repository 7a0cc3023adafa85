#!/bin/bash
# measure.sh: packets per second through Linux and through your LANA chain, in vm1.
#
#   bash measure.sh [ROUNDS] [SECONDS] [LENGTHS]
#
# (defaults: 8 rounds, 0.5 s per point, chain lengths "1 N"; the grader uses the same)
#
# Needs what chain.sh builds: veth pair va <-> vb, vb hooked into LANA, fwd1 on top of vb,
# fwd2 on fwd1, ..., fwdN, and the counter `sink` on top of fwdN. The source is lanagen
# (kernel/bench/lanagen.c, the one `lanalab bench` uses): a kernel thread that hands fresh
# 64-byte frames (IPv4/UDP to a foreign MAC) to vb's receive path as fast as it can, as a
# NIC driver hands over what its NIC received. Each round measures three points one right
# after another:
#   linux   vb unhooked: Linux receives each frame and drops it (counted: the frames
#           lanagen handed to vb, /sys/module/lanagen/parameters/sent: every one of them
#           has gone through Linux's receive path when netif_receive_skb returns)
#   lana1   vb -> fwdN -> sink: one fwd block          (counted: sink)
#   lanaN   vb -> fwd1 -> ... -> fwdN -> sink: N blocks (counted: sink), printed with
#           your N, e.g. lana10
# (LENGTHS "1 2 4 8" measures lana1, lana2, lana4, lana8 instead: a chain of K blocks is
# vb -> fwd(N-K+1) -> ... -> fwdN -> sink) and leaves the chain as it found it (N blocks).
# The method is lanalab bench's (lab/bench/guest.sh, docs/benchmarks.md): while traffic
# runs only shell builtins are used, because every fork+exec costs ~40 ms under TCG.
#
# The clock: in a lab booted with `lanalab up --clock instructions` (as the grader boots
# its own) the guest's clock counts instructions under TCG, 1 ns each, so the figures are
# frames per 10^9 guest instructions and do not depend on the host's load; with the wall
# clock (plain `lanalab up`) they move with it.
# Output: one line per point and round, `point ROUND MODE PPS`, then the median of each
# point over the rounds, `median MODE PPS`: the figures for report.toml.

ROUNDS=${1:-8}
SECONDS_PER_POINT=${2:-0.5}
WARMUP=0.2
SENT=/sys/module/lanagen/parameters/sent
FIFO=/tmp/measure-lana.fifo

die() { echo "measure.sh: $*" >&2; exit 1; }

N=0
while [ -e "/proc/net/lana/fblock/fwd$((N + 1))" ]; do N=$((N + 1)); done
[ -e /sys/class/net/vb ] || die "no device vb (the veth pair va/vb): run chain.sh first"
[ "$N" -ge 2 ] || die "no chain fwd1..fwdN (N >= 2) in /proc/net/lana/fblock: run chain.sh first"
[ -e /proc/net/lana/fblock/sink ] || die "no counter 'sink': run chain.sh first"
ip link set dev vb up || die "cannot bring vb up"

modinfo -F name lanagen > /dev/null 2>&1 ||
	die "the guest has no lanagen module: rebuild the image (lanalab image build)"
[ -d /sys/module/lanagen ] && { rmmod lanagen || die "cannot stop an earlier lanagen"; }
[ -p "$FIFO" ] || mkfifo "$FIFO" || die "cannot make $FIFO"
exec {SLEEP_FD}<>"$FIFO"
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }  # sleep without a fork

STATE=$N  # linux, or K: vb -> fwd(N-K+1) -> ... -> fwdN
to_chain() {  # back to vb -> fwd1 -> ... -> fwdN -> sink
	case $STATE in
	linux) vlink ethernet hook vb > /dev/null && fbctl bind fwd1 vb ;;
	"$N") ;;
	*) k=$((N - STATE + 1))
	   fbctl unbind "fwd$k" vb && fbctl bind "fwd$k" "fwd$((k - 1))" && fbctl bind fwd1 vb ;;
	esac || die "cannot rebuild the chain from state $STATE"
	STATE=$N
}
mode() {  # linux | K (1..N blocks)
	to_chain
	case $1 in
	linux) fbctl unbind fwd1 vb && vlink ethernet unhook vb ;;
	"$N") ;;
	*) k=$((N - $1 + 1))
	   fbctl unbind fwd1 vb && fbctl unbind "fwd$k" "fwd$((k - 1))" && fbctl bind "fwd$k" vb ;;
	esac || die "cannot switch to $1"
	STATE=$1
}

trap '[ -d /sys/module/lanagen ] && rmmod lanagen; to_chain' EXIT

snap() {  # -> SNAP="ns sent sink"
	t=${EPOCHREALTIME/[.,]/}
	read -r s < "$SENT"
	read -r c _ < /proc/net/lana/fblock/sink
	SNAP="${t}000 $s $c"
}

measure() {  # MODE -> PPS
	modprobe lanagen dev=vb len=60 || die "cannot start lanagen on vb"
	nap "$WARMUP"
	snap; read -r t0 s0 c0 <<< "$SNAP"
	nap "$SECONDS_PER_POINT"
	snap; read -r t1 s1 c1 <<< "$SNAP"
	rmmod lanagen || die "cannot stop lanagen"
	if [ "$1" = linux ]; then n=$((s1 - s0)); else n=$((c1 - c0)); fi
	PPS=$((n * 1000000000 / (t1 - t0)))
}

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : int((v[NR/2]+v[NR/2+1])/2)}'; }

LENGTHS=${3:-"1 $N"}
for k in $LENGTHS; do
	[ "$k" -ge 1 ] 2> /dev/null && [ "$k" -le "$N" ] || die "chain length $k is not in 1..$N"
done
POINTS="linux $LENGTHS"
REVERSED=$(printf '%s\n' $POINTS | tac | tr '\n' ' ')
label() { if [ "$1" = linux ]; then echo linux; else echo "lana$1"; fi; }

echo "chain: vb -> fwd1 .. fwd$N -> sink; $ROUNDS rounds of $SECONDS_PER_POINT s per point"
declare -A ALL
r=1
while [ "$r" -le "$ROUNDS" ]; do
	# odd rounds forwards, even rounds backwards: a drift of the machine's speed favours none
	if [ $((r % 2)) -eq 1 ]; then order=$POINTS; else order=$REVERSED; fi
	for m in $order; do
		mode "$m"
		measure "$m"
		echo "point $r $(label "$m") $PPS"
		ALL[$m]="${ALL[$m]} $PPS"
	done
	r=$((r + 1))
done
to_chain
for m in $POINTS; do
	echo "median $(label "$m") $(median ${ALL[$m]})"
done
