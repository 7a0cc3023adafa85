#!/bin/sh
# Mistake: "cleans up" at the end, taking the stack down before anything is counted.
modprobe -a lana fb_eth fb_counter
vlink ethernet hook eth0
fbctl add rx counter
fbctl bind rx eth0
fbctl unbind rx eth0
