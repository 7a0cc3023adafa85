# Removes the counter while it is still bound (fbctl refuses: cut it first).
fbctl add meter counter
fbctl insert meter voice
sleep 1.2
fbctl rm meter
