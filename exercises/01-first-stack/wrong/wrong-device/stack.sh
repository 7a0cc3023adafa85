#!/bin/sh
# Mistake: hooks the loopback device instead of eth0.
modprobe -a lana fb_eth fb_counter
vlink ethernet hook lo
fbctl add rx counter
fbctl bind rx lo
