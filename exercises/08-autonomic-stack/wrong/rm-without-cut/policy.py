"""Exercise 8, reference solution: splice a bpf guard that drops the flood's EtherType
in under `victim` while c0 reports a flood; take it out when c0 reports the rate normal
again, and when the controller stops."""

from lab.autonomic.policy import Policy

FLOOD_ETHERTYPE = 0x88B6  # this variant's (lanalab grade 8 --show-variant)
GUARD = "guard"

# ldh [12]; jeq #FLOOD, drop, pass  (classic BPF in bpfc's output form)
DROP_FLOOD = (
    "{ 0x28, 0, 0, 0x0000000c },\n"
    f"{{ 0x15, 0, 1, 0x{FLOOD_ETHERTYPE:08x} }},\n"
    "{ 0x06, 0, 0, 0x00000000 },\n"
    "{ 0x06, 0, 0, 0xffffffff },\n"
)


class Guard(Policy):
    def on_event(self, event, stack):
        if event.block != "c0":
            return
        if event.kind == "rate_high" and not stack.exists(GUARD):
            stack.guard(GUARD, "bpf", under="victim", program=DROP_FLOOD)
        elif event.kind == "rate_normal" and stack.exists(GUARD):
            stack.rm(GUARD)

    def stop(self, stack):
        if stack.exists(GUARD):
            stack.rm(GUARD)
