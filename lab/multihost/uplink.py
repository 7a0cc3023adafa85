"""Keep the lab's tunnels off a host's uplink.

The underlay must be an address of the lab's own network between the hypervisors: an
address of the device the default route leaves through would put lab VXLAN traffic (and
its floods) on the machine's way to the world. The check takes the routes as data; the
reader next to it fills that data from the host with pyroute2.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lab.errors import LabError


@dataclass(frozen=True)
class Uplink:
    """A device that a default route leaves through, with its IPv4 addresses."""

    device: str
    addresses: tuple[str, ...]


def check_underlay_off_uplink(host: str, underlay: str, uplinks: Iterable[Uplink]) -> None:
    """Raise LabError when `underlay` belongs to one of the host's uplink devices."""
    addr = ipaddress.IPv4Address(underlay)
    for uplink in uplinks:
        if addr in {ipaddress.IPv4Address(a) for a in uplink.addresses}:
            raise LabError(
                f"hypervisor {host}: underlay {addr} is an address of {uplink.device}, the "
                "device of the default route; the lab's tunnels stay off the uplink",
                hint="give the hypervisors a network of their own (a second NIC, a VLAN or a "
                     "veth) and use its address as the underlay")


def _oifs(route: Any) -> list[int]:
    """Output interface indexes of a pyroute2 route message (multipath: one per hop)."""
    oif = route.get_attr("RTA_OIF")
    if oif is not None:
        return [oif]
    return [hop["oif"] for hop in route.get_attr("RTA_MULTIPATH") or []]


def read_uplinks(ipr: Any = None) -> tuple[Uplink, ...]:
    """The host's IPv4 default-route devices and their addresses, read over netlink (an
    open pyroute2 IPRoute may be passed in; otherwise one is opened and closed)."""
    if ipr is None:
        from pyroute2 import IPRoute

        with IPRoute() as own:
            return read_uplinks(own)
    uplinks: dict[int, Uplink] = {}
    for route in ipr.get_default_routes(family=socket.AF_INET):
        for index in _oifs(route):
            if index in uplinks:
                continue
            names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links(index)]
            addrs = tuple(a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
                          for a in ipr.get_addr(index=index, family=socket.AF_INET))
            uplinks[index] = Uplink(names[0] if names else f"if{index}", addrs)
    return tuple(uplinks.values())
