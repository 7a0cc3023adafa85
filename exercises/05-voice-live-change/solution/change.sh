# Runs in vm1 one second into the call. Put a counter between the socket `voice`
# and the vlink device `vl1`, let it count the call for a while, take it out again.
fbctl add meter counter
fbctl insert meter voice      # voice -> meter -> vl1, with no moment of "nothing below"
sleep 1
cat /proc/net/lana/fblock/meter
fbctl cut meter               # voice -> vl1 again; meter stays, unbound, with its counts
