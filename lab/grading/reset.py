"""Bring a guest's LANA state back to nothing between submissions, without a reboot.

Order matters: unbind every binding, remove every instance (eth instances are unhooked
with vlink), then unload every module that uses lana.ko and lana.ko itself. The reset is
verified: /proc/net/lana/fblocks must be empty before the core goes, and the core (with
its /proc/net/lana) must be gone afterwards.
"""

from __future__ import annotations

from lab.errors import GradingError
from lab.grading.nodes import GuestNode

# Runs in the guest (python3 is in the image). Prints what it could not undo.
_RESET = r"""
import os, re, subprocess
def sh(*argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    return r.returncode, (r.stderr or r.stdout).strip()
problems = []
fblocks = "/proc/net/lana/fblocks"
if os.path.exists(fblocks):
    lines = [l.split() for l in open(fblocks).read().splitlines() if l.strip()]
    by_idp = {l[2]: l[0] for l in lines}
    for l in lines:
        for port in l[4].strip("[]").split(","):
            if port.startswith("out:") and port[4:] in by_idp:
                code, msg = sh("fbctl", "unbind", l[0], by_idp[port[4:]])
                if code:
                    problems.append(msg)
    for l in lines:
        if l[1] == "eth":
            code, msg = sh("vlink", "ethernet", "unhook", l[0])
        else:
            code, msg = sh("fbctl", "rm", l[0])
        if code:
            problems.append(msg)
    left = open(fblocks).read().strip()
    if left:
        problems.append("instances left in /proc/net/lana/fblocks: " + left.replace("\n", "; "))
users = []
for line in open("/proc/modules"):
    f = line.split()
    if f[0] == "lana" and f[3] != "-":
        users = [m for m in f[3].split(",") if m]
for module in users + ["lana"]:
    if any(l.split()[0] == module for l in open("/proc/modules")):
        code, msg = sh("rmmod", module)
        if code:
            problems.append(msg)
if os.path.exists("/proc/net/lana"):
    problems.append("lana.ko is still loaded (/proc/net/lana exists)")
sh("rm", "-rf", "/tmp/submission")
sh("ip", "link", "set", "eth0", "promisc", "off")
print("\n".join(problems))
"""


def reset_lana(guest: GuestNode) -> None:
    """Remove all LANA instances and modules from `guest`; raise if anything is left."""
    loaded = guest.run("grep -q '^lana ' /proc/modules || test -e /proc/net/lana")
    if loaded.exit_code != 0:  # nothing to undo: no python start-up (3 s under TCG)
        guest.run("rm -rf /tmp/submission; ip link set eth0 promisc off")
        return
    guest.put("/tmp/lanalab-reset.py", _RESET)
    result = guest.run("python3 /tmp/lanalab-reset.py", timeout=120)
    problems = result.stdout.strip() or (result.stderr.strip() if result.exit_code else "")
    if problems:
        raise GradingError(f"vm `{guest.name}`: could not reset LANA state: {problems}",
                           "the guest needs a reboot (`lanalab down` and `lanalab up`)")
    check = guest.run("test -e /proc/net/lana/fblocks && cat /proc/net/lana/fblocks; "
                      "grep -c '^lana ' /proc/modules")
    if check.stdout.strip() != "0":
        raise GradingError(f"vm `{guest.name}`: LANA is still loaded after the reset: "
                           f"{check.stdout.strip()}")


# No IPv6 chatter (router solicitations, MLD) that would upset exact counts: for guests
# and Mininet hosts alike (lab.notebook.session, lab.service.ops_labs).
IPV6_OFF = "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"


def quiet_ipv6(guest: GuestNode) -> None:
    guest.run(IPV6_OFF)
