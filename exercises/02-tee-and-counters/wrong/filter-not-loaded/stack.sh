#!/bin/sh
# Reference solution of exercise 2: appendix C.3 of the thesis.
modprobe -a lana fb_eth fb_tee fb_bpf fb_counter
vlink ethernet hook eth0
fbctl add fb2 tee
fbctl add fb3 bpf
fbctl add fb4 counter
fbctl add fb5 bpf
fbctl add fb6 counter
bpfc ipv4.bpf > /proc/net/lana/fblock/fb3
fbctl bind fb2 eth0
fbctl bind fb3 fb2
fbctl bind fb5 fb2
fbctl bind fb4 fb3
fbctl bind fb6 fb5
