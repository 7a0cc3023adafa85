#!/bin/sh
# Mistake: rx is a fwd block (the template), not a counter.
modprobe -a lana fb_eth fb_fwd
vlink ethernet hook eth0
fbctl add rx fwd
fbctl bind rx eth0
