#!/bin/sh
# Mistake: the counter is created but never bound, so no frame reaches it.
modprobe -a lana fb_eth fb_counter
vlink ethernet hook eth0
fbctl add rx counter
