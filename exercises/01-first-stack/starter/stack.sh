#!/bin/sh
# Exercise 1: build the stack  eth0 -> counter "rx"  in vm1.
# The grader runs this file with `sh -e` in vm1: the first failing command stops it.
# Fill in the TODOs; `lanalab exec vm1 -- fbctl --help` explains fbctl.

# TODO 1: load the LANA core and the block modules you need (eth, counter)
modprobe lana

# TODO 2: hook the Ethernet device eth0 into LANA (vlink)

# TODO 3: add an instance named rx of type counter (fbctl add)

# TODO 4: bind rx on top of eth0 so frames arriving on eth0 go up to rx (fbctl bind)
