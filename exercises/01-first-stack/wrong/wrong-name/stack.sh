#!/bin/sh
# Mistake: the counter is called cnt, not rx.
modprobe -a lana fb_eth fb_counter
vlink ethernet hook eth0
fbctl add cnt counter
fbctl bind cnt eth0
