#!/bin/sh
# Mistake: the binding the wrong way round (eth0 on top of rx).
modprobe -a lana fb_eth fb_counter
vlink ethernet hook eth0
fbctl add rx counter
fbctl bind eth0 rx
