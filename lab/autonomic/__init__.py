"""An autonomic controller for LANA stacks (thesis §4.2.9): it watches the events blocks
emit and reconfigures the stack by a policy, over the same netlink interface as fbctl.

Runs in a guest, as root, next to the kernel it controls:

    python3 -m lab.autonomic --policy my_policy.py:MyPolicy --journal /tmp/journal.jsonl

See docs/autonomic.md.
"""
