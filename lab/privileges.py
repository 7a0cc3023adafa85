"""Running a command as somebody who is not root: the one setpriv prefix the lab uses for
participants' Mininet-host commands, reads of their folders and builds of their code."""

from __future__ import annotations


def as_user(uid: int, gid: int, net_raw: bool = False) -> list[str]:
    """The setpriv prefix that runs a command as uid:gid with no groups and no capability
    but, if asked, CAP_NET_RAW (bounding, inheritable and ambient sets alike), and
    no_new_privs, so no set-uid program or file capability adds any."""
    keep = ",+net_raw" if net_raw else ""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
            f"--inh-caps=-all{keep}", f"--ambient-caps=-all{keep}",
            f"--bounding-set=-all{keep}", "--no-new-privs", "--"]
