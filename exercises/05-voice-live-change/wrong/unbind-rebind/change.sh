# Rebuilds the path by hand: unbind, add, bind (a window with nothing below `voice`
# and nothing on top of `vl1`).
fbctl unbind voice vl1
fbctl add meter counter
fbctl bind meter vl1
fbctl bind voice meter
sleep 1.2
fbctl unbind voice meter
fbctl unbind meter vl1
fbctl bind voice vl1
