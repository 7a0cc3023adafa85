"""Libvirt connections that notice a host gone silent.

A hypervisor that loses power or its network sends no RST: without more, a call on its
connection waits for TCP's retransmission timeout, many minutes. libvirt's keepalive
(virConnectSetKeepAlive) pings the daemon every KEEPALIVE_INTERVAL_S and closes the
connection after KEEPALIVE_COUNT unanswered pings, which fails the call that waits on it.
Keepalive needs an event loop: the first remote connection registers libvirt's default
implementation and runs it in a daemon thread, for the rest of the process.

A remote URI at a documentation address (RFC 5737: what the one-machine testbed uses) is
reached only over a lab link. Once its testbed is gone, the route to it would leave
through the machine's uplink, where no lab host can be: `check_route` refuses that, as
`HostGoneError`, before a single packet goes out.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any
from urllib.parse import urlsplit

from lab.errors import LabError

KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3
# a silent host fails a waiting call within about this long
SILENT_HOST_S = KEEPALIVE_INTERVAL_S * (KEEPALIVE_COUNT + 1)

# RFC 5737: never routed on the Internet; the lab's testbed hosts live in them
DOCUMENTATION_NETS = tuple(ipaddress.IPv4Network(n) for n in
                           ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))

_loop_lock = threading.Lock()
_loop_started = False


def is_remote(uri: str) -> bool:
    """True for a URI that names a host (qemu+ssh://hv2/system, qemu+tcp://...); a URI
    without one (qemu:///system, qemu+unix:///system, test:///default) is this machine."""
    try:
        return bool(urlsplit(uri).hostname)
    except ValueError:
        return True  # malformed: libvirt will say so; never treat it as this machine


class HostGoneError(LabError):
    """A testbed host's address that no lab link reaches any more."""


def check_route(uri: str) -> None:
    """Raise HostGoneError when `uri` names a documentation address whose route leaves
    through an uplink (a default route's device) of this machine."""
    from lab.multihost.uplink import read_uplinks

    host = urlsplit(uri).hostname or ""
    try:
        addr = ipaddress.IPv4Address(host)
    except ValueError:
        return  # a name or IPv6: a real host, reached as the user set it up
    if not any(addr in net for net in DOCUMENTATION_NETS):
        return
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        try:
            routes = ipr.route("get", dst=str(addr))
        except NetlinkError:
            return  # no route at all: nothing can leave, the connect fails by itself
        oifs = {r.get_attr("RTA_OIF") for r in routes}
        devices = {link.get_attr("IFLA_IFNAME") for oif in oifs if oif
                   for link in ipr.get_links(oif)}
        uplinks = {u.device for u in read_uplinks(ipr)}
    if devices & uplinks:
        raise HostGoneError(f"{addr} of {uri} is a documentation address that only a lab "
                            f"testbed uses, and no lab link reaches it now (the route leaves "
                            f"through {', '.join(sorted(devices & uplinks))}, the uplink): "
                            "its testbed is gone, and what ran there with it",
                            "nothing is left to clean on that host")


def _ensure_event_loop() -> None:
    global _loop_started
    import libvirt

    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt events", daemon=True).start()
        _loop_started = True


def open_connection(uri: str) -> Any:
    """libvirt.open(uri); a remote connection gets keepalive. Raises libvirt.libvirtError,
    or HostGoneError for a testbed address no lab link reaches."""
    import libvirt

    if not is_remote(uri):
        return libvirt.open(uri)
    check_route(uri)
    _ensure_event_loop()
    conn = libvirt.open(uri)
    conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
    return conn
