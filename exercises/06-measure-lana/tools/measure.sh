#!/bin/bash
# measure.sh: packets per second through Linux and through your LANA chain, in vm1.
#
#   bash measure.sh [ROUNDS] [SECONDS] [LENGTHS]
#
# (defaults: 8 rounds, 0.5 s per point, chain lengths "1 N"; the grader uses the same)
#
# Needs what chain.sh builds: veth pair va <-> vb, vb hooked into LANA, fwd1 on top of vb,
# fwd2 on fwd1, ..., fwdN, and the counter `sink` on top of fwdN. The kernel's pktgen
# sends 64-byte frames (IPv4/UDP to a foreign MAC) on va as fast as it can; they arrive
# on vb. Each round measures three points one right after another:
#   linux   vb unhooked: Linux receives each frame and drops it (counted: vb's rx counter)
#   lana1   vb -> fwdN -> sink: one fwd block          (counted: sink)
#   lanaN   vb -> fwd1 -> ... -> fwdN -> sink: N blocks (counted: sink), printed with
#           your N, e.g. lana10
# (LENGTHS "1 2 4 8" measures lana1, lana2, lana4, lana8 instead: a chain of K blocks is
# vb -> fwd(N-K+1) -> ... -> fwdN -> sink) and leaves the chain as it found it (N blocks).
# The method is lanalab bench's (lab/bench/guest.sh, docs/benchmarks.md): while traffic
# runs only shell builtins are used, because every fork+exec costs ~40 ms under TCG.
# Output: one line per point and round, `point ROUND MODE PPS`, then the median of each
# point over the rounds, `median MODE PPS`: the figures for report.toml.

ROUNDS=${1:-8}
SECONDS_PER_POINT=${2:-0.5}
WARMUP=0.3
PG=/proc/net/pktgen
FIFO=/tmp/measure-lana.fifo

die() { echo "measure.sh: $*" >&2; exit 1; }

N=0
while [ -e "/proc/net/lana/fblock/fwd$((N + 1))" ]; do N=$((N + 1)); done
[ -e /sys/class/net/va ] && [ -e /sys/class/net/vb ] ||
	die "no veth pair va/vb: run chain.sh first"
[ "$N" -ge 2 ] || die "no chain fwd1..fwdN (N >= 2) in /proc/net/lana/fblock: run chain.sh first"
[ -e /proc/net/lana/fblock/sink ] || die "no counter 'sink': run chain.sh first"

[ -d $PG ] || modprobe pktgen || die "cannot load pktgen"
[ -p "$FIFO" ] || mkfifo "$FIFO" || die "cannot make $FIFO"
exec {SLEEP_FD}<>"$FIFO"
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }  # sleep without a fork

pg_setup() {
	echo "rem_device_all" > "$PG/kpktgend_0" && echo "add_device va" > "$PG/kpktgend_0" &&
	p=$PG/va && echo "count 0" > $p && echo "clone_skb 0" > $p && echo "delay 0" > $p &&
	echo "pkt_size 60" > $p && echo "dst_mac 02:00:00:00:be:ef" > $p &&
	echo "dst 10.254.254.254" > $p && echo "src_min 10.254.254.1" > $p &&
	echo "src_max 10.254.254.1" > $p
}

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

pg_setup || die "cannot set up pktgen on va"
trap 'echo stop > $PG/pgctrl 2>/dev/null; to_chain' EXIT

snap() {  # -> SNAP="ns vb_rx sink"
	t=${EPOCHREALTIME/[.,]/}
	read -r rx < /sys/class/net/vb/statistics/rx_packets
	read -r c _ < /proc/net/lana/fblock/sink
	SNAP="${t}000 $rx $c"
}

measure() {  # MODE -> PPS
	(echo start > "$PG/pgctrl") &
	nap "$WARMUP"
	snap; read -r t0 rx0 c0 <<< "$SNAP"
	nap "$SECONDS_PER_POINT"
	snap; read -r t1 rx1 c1 <<< "$SNAP"
	echo stop > "$PG/pgctrl"
	wait
	if [ "$1" = linux ]; then n=$((rx1 - rx0)); else n=$((c1 - c0)); fi
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
