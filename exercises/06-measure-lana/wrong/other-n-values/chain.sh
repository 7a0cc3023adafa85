#!/bin/sh
# Exercise 6 (correct chain; the mistake is in report.toml): vb -> fwd1 -> ... -> fwdN -> sink in vm1.
N=10
modprobe -a lana fb_eth fb_fwd fb_counter
ip link add name va type veth peer name vb
ip link set dev va up
ip link set dev vb up
vlink ethernet hook vb
i=1
below=vb
while [ "$i" -le "$N" ]; do
	fbctl add "fwd$i" fwd
	fbctl bind "fwd$i" "$below"
	below="fwd$i"
	i=$((i + 1))
done
fbctl add sink counter
fbctl bind sink "$below"
