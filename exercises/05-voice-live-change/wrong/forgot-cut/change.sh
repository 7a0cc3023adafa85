# Inserts the counter but leaves it in the path.
fbctl add meter counter
fbctl insert meter voice
sleep 1.2
cat /proc/net/lana/fblock/meter
