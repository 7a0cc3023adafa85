# In-guest helpers of `lanalab bench` (sourced by bash in the guest). Under TCG every
# fork+exec costs ~40 ms, so the measuring path uses builtins only: EPOCHREALTIME for the
# clock, `read` for counters, and `read -t` on a private fifo instead of sleep(1).
#
# Traffic arrives on `vb`. Source `lanagen` (kernel/bench/lanagen.c) hands fresh frames to
# netif_receive_skb() on vb as a NIC driver does; source `pktgen` sends on veth end `va`.
# On vb either Linux receives and drops them (no LANA hook: IPv4 frames to a foreign MAC,
# dropped as "otherhost" by ip_rcv) or LANA's eth block steals them into a chain of fwd
# blocks; the last one has nothing bound above it and drops them, as in the thesis. The
# engine's own statistics (/proc/net/lana/ppe) count what entered LANA and what it dropped.
# The chain bf1..bfMAX is built once; a chain of N blocks is bf(MAX-N+1)..bfMAX with
# bf(MAX-N+1) bound on top of vb, so a switch costs 4 fbctl calls.
#
# eBPF points (kernel/xdp/, compiled on the host, copied to /tmp/lanabench-NAME.bpf.o): an
# XDP program attached to vb in generic mode, or a tc ingress filter (clsact, cls_bpf
# direct action), drops every frame and counts it in a map that iproute2 pins under
# $LB_PIN; bpffs prints a pinned map with BTF as text, so `read` takes the counter.
#
# Userspace receivers (lab/bench/receivers.c, /tmp/lanabench-recv): a UDP socket on port 9
# (recvfrom or recvmmsg; for these the frames go to vb's own MAC and LB_LOCAL_IP, which is
# on vb only while such a point runs), PF_PACKET with a TPACKET_V3 ring, or AF_XDP in copy
# mode fed by kernel/xdp/xdp_xsk.bpf.c (the receiver attaches it and holds the link).
#
# cBPF points: one classic-BPF filter ($LB_CBPF, bpfc's output of lab/bench/udp_port9.bpf)
# in LANA's bpf block (vb -> bflt (bpf) -> bcnt (counter, the sink): bcnt counts), as the
# SO_ATTACH_FILTER of the PF_PACKET sniffer, and as XDP (kernel/xdp/xdp_cbpf.bpf.c, the
# same test in restricted C, counting in its pinned map).

LB_STATE=/tmp/lanabench.state   # "linux", "lana K" (bfK on top of vb), "xdp MAP", "tc MAP"
LB_PG=/proc/net/pktgen
LB_PIN=/sys/fs/bpf/tc/globals   # where iproute2 pins maps (/sys/fs/bpf/xdp links here)
LB_RECV=/tmp/lanabench-recv
LB_LOCAL_IP=10.254.254.254      # the frames' destination IP: vb's own for the UDP points
LB_CBPF=/tmp/lanabench-cbpf.txt # the cBPF points' filter, bpfc's "{ code, jt, jf, k }," lines

lb_setup() {  # MAXCHAIN
	max=$1
	modprobe pktgen || return 1
	modprobe -a lana fb_eth fb_fwd || return 1
	sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip link add name va type veth peer name vb || return 1
	ip link set dev va up && ip link set dev vb up || return 1
	i=1
	while [ "$i" -le "$max" ]; do
		fbctl add "bf$i" fwd || return 1
		[ "$i" -gt 1 ] && { fbctl bind "bf$i" "bf$((i - 1))" || return 1; }
		i=$((i + 1))
	done
	# the sender-only reference: pktgen into a dummy device, which frees every frame
	ip link add name bd0 type dummy && ip link set dev bd0 up || return 1
	mkfifo /tmp/lanabench.fifo || return 1
	echo "$max" > /tmp/lanabench.max
	echo linux > "$LB_STATE"
	echo none > /tmp/lanabench.pg
}

lb_cbpf_setup() {  # the bpf-block point's blocks: bflt (bpf, the filter) -> bcnt (counter)
	modprobe -a fb_bpf fb_counter || return 1
	fbctl add bflt bpf && fbctl add bcnt counter && fbctl bind bcnt bflt || return 1
	cat "$LB_CBPF" > /proc/net/lana/fblock/bflt
}

lb_sleep() {  # SECONDS (fractions allowed), without forking
	[ -n "$LB_FD" ] || exec {LB_FD}<>/tmp/lanabench.fifo
	read -r -t "$1" -u "$LB_FD" _ || true
}

lb_pktgen() {  # DEVICE FRAME_SIZE [local]: pktgen sends on DEVICE only (size with FCS);
	# local: to vb's own MAC (and LB_LOCAL_IP port 9, as always), for a socket on vb
	read -r cur < /tmp/lanabench.pg
	[ "$cur" = "$1/$2/$3" ] && return 0
	mac=02:00:00:00:be:ef
	[ "$3" = local ] && read -r mac < /sys/class/net/vb/address
	echo "rem_device_all" > "$LB_PG/kpktgend_0" || return 1
	echo "add_device $1" > "$LB_PG/kpktgend_0" || return 1
	p=$LB_PG/$1
	echo "count 0" > $p && echo "clone_skb 0" > $p && echo "delay 0" > $p &&
	echo "pkt_size $(($2 - 4))" > $p && echo "dst_mac $mac" > $p &&
	echo "dst $LB_LOCAL_IP" > $p && echo "src_min 10.254.254.1" > $p &&
	echo "src_max 10.254.254.1" > $p && echo "$1/$2/$3" > /tmp/lanabench.pg
}

lb_detach() {  # back to plain Linux: unhook LANA, or detach the eBPF program
	read -r st k < "$LB_STATE"
	case $st in
	lana)
		fbctl unbind "bf$k" vb || return 1
		[ "$k" -gt 1 ] && { fbctl bind "bf$k" "bf$((k - 1))" || return 1; }
		vlink ethernet unhook vb || return 1 ;;
	lanabpf)
		fbctl unbind bflt vb && vlink ethernet unhook vb || return 1 ;;
	xdp) ip link set dev vb xdpgeneric off && rm -f "$LB_PIN/$k" || return 1 ;;
	tc) tc qdisc del dev vb clsact && rm -f "$LB_PIN/$k" || return 1 ;;
	esac
	echo linux > "$LB_STATE"
}

lb_xdp() {  # PROGRAM MAP: attach kernel/xdp/PROGRAM.bpf.c to vb, generic mode
	ip link set dev vb xdpgeneric obj "/tmp/lanabench-$1.bpf.o" sec xdp || return 1
	echo "xdp $2" > "$LB_STATE"
}

lb_tc() {  # PROGRAM MAP: PROGRAM as vb's tc ingress filter (cls_bpf, direct action)
	tc qdisc add dev vb clsact || return 1
	tc filter add dev vb ingress bpf direct-action obj "/tmp/lanabench-$1.bpf.o" sec tc ||
		{ tc qdisc del dev vb clsact; return 1; }
	echo "tc $2" > "$LB_STATE"
}

lb_mode() {  # linux | lana N
	lb_detach || return 1
	case $1 in
	linux) ;;
	lana)
		k=$(($(cat /tmp/lanabench.max) - $2 + 1))
		vlink ethernet hook vb >/dev/null || return 1
		[ "$k" -gt 1 ] && { fbctl unbind "bf$k" "bf$((k - 1))" || return 1; }
		fbctl bind "bf$k" vb || return 1
		echo "lana $k" > "$LB_STATE" ;;
	xdp_generic_drop) lb_xdp xdp_drop xdp_drop_cnt ;;
	xdp_parse_drop) lb_xdp xdp_parse_drop xdp_parse_cnt ;;
	cbpf_xdp) lb_xdp xdp_cbpf cbpf_xdp_cnt ;;
	lana_bpf)
		vlink ethernet hook vb >/dev/null && fbctl bind bflt vb || return 1
		echo "lanabpf bcnt" > "$LB_STATE" ;;
	tc_drop) lb_tc tc_drop tc_drop_cnt ;;
	*) echo "lb_mode: unknown mode $1" >&2; return 1 ;;
	esac
}

lb_engine() {  # NAME: LANA's engine model (kernel/core/engine_*.c); the switch drains
	read -r cur < /tmp/lanabench.engine 2>/dev/null
	[ "$cur" = "$1" ] && return 0
	echo "$1" > /proc/net/lana/engine || return 1
	echo "$1" > /tmp/lanabench.engine
}

lb_lana() {  # -> LB_LANA="packets drops": the engine's totals over all CPUs
	p=0 d=0
	while read -r _ pk _ _ dr _; do
		p=$((p + pk)) d=$((d + dr))
	done < /proc/net/lana/ppe
	LB_LANA="$p $d"
}

lb_count() {  # -> LB_LANA="packets drops": the engine's, the eBPF program's map, or
	# (LB_CNT) a counter block's packets and the engine's drops
	if [ -n "$LB_CNT" ]; then
		read -r n _ < "$LB_CNT"
		lb_lana
		LB_LANA="$n ${LB_LANA#* }"
	elif [ -n "$LB_MAP" ]; then
		n=0
		while read -r key val; do  # "# WARNING..." twice, then "0: COUNT"
			[ "$key" = "0:" ] && n=$val
		done < "$LB_MAP"
		LB_LANA="$n $n"
	else
		lb_lana
	fi
}

lb_snap() {  # DEVICE|lanagen -> LB_SNAP="ns received sent lana_packets lana_drops"
	t=${EPOCHREALTIME/[.,]/}
	if [ "$1" = lanagen ]; then  # no veth: vb counts nothing, all it is given arrives
		read -r tx < /sys/module/lanagen/parameters/sent
		rx=$tx txd=0
	else  # sent = DEVICE's tx packets + drops; received = vb's rx counter
		read -r rx < /sys/class/net/vb/statistics/rx_packets
		read -r tx < "/sys/class/net/$1/statistics/tx_packets"
		read -r txd < "/sys/class/net/$1/statistics/tx_dropped"
	fi
	lb_count
	LB_SNAP="${t}000 $rx $((tx + txd)) $LB_LANA"
}

lb_start() {  # DEVICE|lanagen SIZE [local]: start sending (local: to vb's own MAC)
	if [ "$1" = lanagen ]; then
		if [ "$3" = local ]; then
			read -r mac < /sys/class/net/vb/address
			modprobe lanagen dev=vb len=$(($2 - 4)) dst_mac="$mac" \
				dst_ip=$LB_LOCAL_IP dst_port=9
		else
			modprobe lanagen dev=vb len=$(($2 - 4))
		fi
	else
		lb_pktgen "$1" "$2" "$3" && { (echo start > "$LB_PG/pgctrl") & }
	fi
}

lb_stop() {  # DEVICE|lanagen
	if [ "$1" = lanagen ]; then
		rmmod lanagen
	else
		echo stop > "$LB_PG/pgctrl"
		wait
	fi
}

# LABEL DEVICE|lanagen SIZE WARMUP SECONDS -> "point LABEL <snap before> <snap after>"
lb_measure() {
	read -r st k < "$LB_STATE"
	LB_MAP= LB_CNT=
	case $st in
	xdp|tc) LB_MAP=$LB_PIN/$k ;;
	lanabpf) LB_CNT=/proc/net/lana/fblock/$k ;;
	esac
	lb_start "$2" "$3" || return 1
	lb_sleep "$4"
	lb_snap "$2"
	a=$LB_SNAP
	lb_sleep "$5"
	lb_snap "$2"
	b=$LB_SNAP
	lb_stop "$2" || return 1
	echo "point $1 $a $b"
}

# LABEL SOURCE SIZE WARMUP SECONDS [FILTER], SOURCE va (pktgen) or lanagen: a PF_PACKET
# receiver on vb counts what it gets (FILTER: a cBPF program attached to its socket)
lb_sniff() {
	rm -f /tmp/lanabench-sniff.ready
	# shellcheck disable=SC2086
	/tmp/lanabench-sniffer -r /tmp/lanabench-sniff.ready packet vb "$4" "$5" $6 \
		> /tmp/lanabench-sniff.out &
	spid=$!
	i=0
	while [ -n "$6" ] && [ ! -e /tmp/lanabench-sniff.ready ]; do
		if ! kill -0 "$spid" 2>/dev/null || [ "$i" -ge 600 ]; then
			kill "$spid" 2>/dev/null
			wait "$spid"
			echo "lb_sniff: the filtered PF_PACKET socket did not start" >&2
			return 1
		fi
		lb_sleep 0.05
		i=$((i + 1))
	done
	lb_start "$2" "$3" || { kill "$spid"; return 1; }
	wait "$spid"
	lb_stop "$2" || return 1
	echo "sniff $1 $(cat /tmp/lanabench-sniff.out)"
}

lb_sniff_lana() {  # LABEL SOURCE SIZE WARMUP SECONDS: a PF_LANA receiver on top of vb
	/tmp/lanabench-sniffer lana bsock "$4" "$5" > /tmp/lanabench-sniff.out &
	spid=$!
	i=0
	while [ ! -e /proc/net/lana/fblock/bsock ] && [ "$i" -lt 200 ]; do
		lb_sleep 0.05
		i=$((i + 1))
	done
	# vb -> socket; close(2) of the socket unbinds and removes it again
	vlink ethernet hook vb >/dev/null && fbctl bind bsock vb || { kill "$spid"; return 1; }
	lb_start "$2" "$3" || { kill "$spid"; return 1; }
	wait "$spid"
	lb_stop "$2" || return 1
	vlink ethernet unhook vb || return 1
	echo "sniff $1 $(cat /tmp/lanabench-sniff.out)"
}

# LABEL SOURCE SIZE WARMUP SECONDS KIND: a userspace receiver of lab/bench/receivers.c,
# KIND udp | mmsg (UDP port 9 on vb's LB_LOCAL_IP) | tpacket3 | xdp (AF_XDP on vb queue 0);
# traffic starts once the receiver is ready (it creates a file), its setup is not counted
lb_recv() {
	local=
	case $6 in
	udp|mmsg) args="$6 9" local=local ;;
	tpacket3) args="tpacket3 vb" ;;
	xdp) args="-o /tmp/lanabench-xdp_xsk.bpf.o xdp vb" ;;
	*) echo "lb_recv: unknown receiver $6" >&2; return 1 ;;
	esac
	if [ -n "$local" ]; then
		ip addr add "$LB_LOCAL_IP/24" dev vb || return 1
	fi
	rm -f /tmp/lanabench-recv.ready
	# shellcheck disable=SC2086
	$LB_RECV -r /tmp/lanabench-recv.ready $args "$4" "$5" > /tmp/lanabench-sniff.out \
		2> /tmp/lanabench-recv.err &
	spid=$!
	i=0
	while [ ! -e /tmp/lanabench-recv.ready ]; do
		if ! kill -0 "$spid" 2>/dev/null || [ "$i" -ge 600 ]; then
			kill "$spid" 2>/dev/null
			wait "$spid"
			echo "lb_recv: the $6 receiver did not start:" \
				"$(cat /tmp/lanabench-recv.err)" >&2
			[ -n "$local" ] && ip addr del "$LB_LOCAL_IP/24" dev vb
			return 1
		fi
		lb_sleep 0.05
		i=$((i + 1))
	done
	lb_start "$2" "$3" $local || { kill "$spid"; return 1; }
	wait "$spid"
	lb_stop "$2" || return 1
	if [ -n "$local" ]; then
		ip addr del "$LB_LOCAL_IP/24" dev vb || return 1
	fi
	echo "sniff $1 $(cat /tmp/lanabench-sniff.out)"
}
