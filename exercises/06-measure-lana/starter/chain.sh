#!/bin/sh
# Exercise 6: build  vb -> fwd1 -> fwd2 -> ... -> fwdN -> sink  in vm1.
# The grader runs this file with `sh -e` in vm1: the first failing command stops it.
# N is your chain length (default 10; with a student id: `lanalab grade 6 --student ID
# --show-variant`).
N=10

# TODO 1: load the LANA core and the blocks you need (eth, fwd, counter)
modprobe lana

# TODO 2: a veth pair va <-> vb, both up (measure.sh's lanagen hands its frames to vb;
#         the grader's exact burst is sent with pktgen on va and arrives on vb)

# TODO 3: hook vb into LANA (vlink)

# TODO 4: add fwd1 .. fwdN (type fwd); bind fwd1 on top of vb, fwd2 on top of fwd1, ...
#         a `while [ "$i" -le "$N" ]` loop keeps it short

# TODO 5: add the counter sink and bind it on top of fwdN
