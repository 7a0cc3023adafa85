#!/bin/sh
# Reference solution of exercise 1: eth0 -> counter "rx" in vm1.
modprobe -a lana fb_eth fb_counter
vlink ethernet hook eth0
fbctl add rx counter
fbctl bind rx eth0
