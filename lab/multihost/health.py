"""Is a lab across hypervisors whole? Each remote VM's domain, asked of its own host, and
each tunnel's underlay, pinged from every host it joins to every other.

Everything here answers within a stated time: `lanalab status` and the tests use it on a
lab whose hosts may have died or lost their underlay, and must not hang on them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from lab.errors import LabError
from lab.multihost.hostshell import HostShell, hostshell_from
from lab.vm.libvirt_conn import open_connection

DOMAIN_TIMEOUT_S = 5.0  # a host that gives no answer in this time counts as unreachable
PING_WAIT_S = 1  # ping -W: seconds for each echo's reply
PINGS = 3  # one lost echo is not a cut underlay


def domain_state(uri: str, domain: str, timeout: float = DOMAIN_TIMEOUT_S) -> str:
    """"running", "stopped", "gone" or "host unreachable" for a libvirt domain."""
    answer: list[str] = []

    def ask() -> None:
        import libvirt

        try:
            conn = open_connection(uri)
        except (libvirt.libvirtError, LabError):
            answer.append("host unreachable")
            return
        try:
            dom = conn.lookupByName(domain)
            answer.append("running" if dom.isActive() else "stopped")
        except libvirt.libvirtError:
            answer.append("gone")
        finally:
            conn.close()

    # a thread, so a host that swallows the connection (no RST) cannot hold the caller
    asker = threading.Thread(target=ask, daemon=True, name=f"ask {uri}")
    asker.start()
    asker.join(timeout)
    return answer[0] if answer else "host unreachable"


def reaches(shell: HostShell, address: str) -> bool:
    """True when `address` answers at least one of PINGS echoes sent from the host."""
    done = shell.run(["ping", "-n", "-q", "-c", str(PINGS), "-i", "0.2", "-W",
                      str(PING_WAIT_S), address], timeout=PINGS * PING_WAIT_S + 10, check=False)
    return done.returncode == 0


def underlay_problems(spread: Mapping[str, Any]) -> list[str]:
    """For the `spread` of lab.json: each pair of hosts a tunnel joins whose underlay does
    not carry a ping, as "hv1 cannot reach hv2's underlay 203.0.113.2 (switch s1)"."""
    hosts = spread.get("hypervisors", {})
    problems: list[str] = []
    checked: dict[tuple[str, str], bool] = {}
    for tunnel in spread.get("tunnels", []):
        for a in tunnel["hosts"]:
            for b in tunnel["hosts"]:
                if a == b:
                    continue
                if (a, b) not in checked:
                    try:
                        checked[(a, b)] = reaches(hostshell_from(hosts[a]), hosts[b]["underlay"])
                    except LabError:
                        checked[(a, b)] = False  # the host itself gave no answer
                if not checked[(a, b)]:
                    problems.append(f"{a} cannot reach {b}'s underlay {hosts[b]['underlay']} "
                                    f"(switch {tunnel['switch']})")
    return problems
