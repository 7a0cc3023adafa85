"""Exercise 8: your controller policy. Read exercises/08-autonomic-stack/README.md.

The controller calls Guard's hooks; `event` has .block (who emitted it), .type, .kind
("rate_high", "rate_normal", ...) and .value; `stack` reads and changes the stack
(lab/autonomic/stack.py: exists, lowers, uppers, guard, unguard, add, set, insert, cut,
rm, bind, unbind, load_program).
"""

from lab.autonomic.policy import Policy

FLOOD_ETHERTYPE = 0x88B6  # TODO: your variant's (lanalab grade 8 --show-variant)


class Guard(Policy):
    def on_event(self, event, stack):
        # TODO: when c0 reports rate_high, put a guard that drops the flood's frames
        # between c0 and `victim`; when it reports rate_normal, take the guard out.
        pass

    def stop(self, stack):
        # TODO: the controller is stopping: leave the stack as you found it.
        pass
