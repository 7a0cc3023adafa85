# Runs in vm1 one second into an 8 s voice call (see README.md).
#
# When this script starts, vm1's stack is
#     lanavoice -> [voice: pflana socket] -> [vl1: ethvlink on eth0]
# and must be exactly that again when it ends (while the call still runs).
#
# 1. create a counter named meter
# 2. put it between voice and vl1 while the call runs, without a frame lost
# 3. let it count the call for at least a second
# 4. take it out of the path again (leave it in place, unbound, so it can be read)

echo "change.sh: not written yet" >&2
exit 1
