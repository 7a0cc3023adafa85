# Follows the thesis's example too literally: inserts a forwarding block, not a counter.
fbctl add meter fwd
fbctl insert meter voice
sleep 1
fbctl cut meter
