#!/bin/sh
# Exercise 2: the stack of the thesis's appendix C.3 (figure C.1), in vm1:
#
#                 fb4 (counter)      fb6 (counter)
#                      |                  |
#                 fb3 (bpf, IPv4)    fb5 (bpf, ARP)
#                       \               /
#                         fb2 (tee)
#                            |
#                          eth0
#
# The grader runs this file with `sh -e` in the folder that holds your ipv4.bpf and
# arp.bpf. Fill in the TODOs.
modprobe -a lana fb_eth fb_tee fb_bpf fb_counter
vlink ethernet hook eth0
fbctl add fb2 tee
fbctl add fb3 bpf
fbctl add fb4 counter
fbctl add fb5 bpf
fbctl add fb6 counter

# TODO 1: compile ipv4.bpf and arp.bpf with bpfc and load them into fb3 and fb5
#         (a bpf block takes a program written into /proc/net/lana/fblock/<name>)

# TODO 2: bind the blocks as in the figure (`fbctl bind A B` puts A on top of B)
