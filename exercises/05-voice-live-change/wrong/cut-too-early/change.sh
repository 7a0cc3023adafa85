# Inserts and cuts at once: the counter barely sees the call.
fbctl add meter counter
fbctl insert meter voice
fbctl cut meter
