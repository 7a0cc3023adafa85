"""The topology model: plain data, validated once, shared by every backend.

A topology names its nodes; the lab derives host interface names from the run prefix and
node indexes, so user-chosen names never hit Linux's 15-character interface limit.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Protocol

from lab.errors import TopologyError

NIC_MODELS = ("virtio", "e1000e")
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
DELAY_RE = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")


class LinkShape(Protocol):
    """Optional shaping of a link end: bandwidth works everywhere, delay and loss need netem."""

    @property
    def bw(self) -> float | None: ...  # Mbit/s

    @property
    def delay(self) -> str | None: ...  # "10ms"

    @property
    def loss(self) -> float | None: ...  # percent


@dataclass(frozen=True)
class NicSpec:
    switch: str
    model: str = "virtio"
    ip: str | None = None  # "10.0.0.1/24"; None leaves the guest interface unaddressed
    bw: float | None = None
    delay: str | None = None
    loss: float | None = None


@dataclass(frozen=True)
class VmSpec:
    name: str
    nics: tuple[NicSpec, ...] = ()
    memory_mb: int = 512
    cpus: int = 1


@dataclass(frozen=True)
class HostLink:
    switch: str
    ip: str | None = None
    bw: float | None = None
    delay: str | None = None
    loss: float | None = None


@dataclass(frozen=True)
class HostSpec:
    """A lightweight Mininet host (a shell in its own network namespace)."""

    name: str
    links: tuple[HostLink, ...] = ()


@dataclass(frozen=True)
class SwitchSpec:
    """A Linux bridge (Mininet's LinuxBridge); the host kernel has no Open vSwitch."""

    name: str


@dataclass(frozen=True)
class Topology:
    name: str
    description: str = ""
    switches: tuple[SwitchSpec, ...] = ()
    vms: tuple[VmSpec, ...] = ()
    hosts: tuple[HostSpec, ...] = ()
    source: str = field(default="<python>", compare=False)

    def __post_init__(self) -> None:
        validate(self)

    def node_names(self) -> list[str]:
        nodes: tuple[SwitchSpec | VmSpec | HostSpec, ...] = (*self.switches, *self.vms,
                                                              *self.hosts)
        return [n.name for n in nodes]

    def vm(self, name: str) -> VmSpec:
        for vm in self.vms:
            if vm.name == name:
                return vm
        raise KeyError(name)


def _check_name(where: str, name: str) -> None:
    if not NAME_RE.match(name):
        raise TopologyError(
            f"{where}: bad name {name!r}",
            hint="names are 1-12 characters: a lower-case letter, then letters or digits",
        )


def _check_ip(where: str, ip: str | None, seen: set[ipaddress.IPv4Address]) -> None:
    if ip is None:
        return
    try:
        iface = ipaddress.ip_interface(ip)
    except ValueError as exc:
        raise TopologyError(f"{where}: bad address {ip!r}", hint="write it as 10.0.0.1/24") from exc
    if not isinstance(iface, ipaddress.IPv4Interface) or iface.network.prefixlen == 32:
        raise TopologyError(f"{where}: {ip!r} needs an IPv4 address with a prefix length like /24")
    if iface.ip in seen:
        raise TopologyError(f"{where}: address {iface.ip} is used twice")
    seen.add(iface.ip)


def _check_shape(where: str, shape: LinkShape) -> None:
    if shape.bw is not None and not 0 < shape.bw <= 100_000:
        raise TopologyError(f"{where}: bw must be in (0, 100000] Mbit/s, not {shape.bw}")
    if shape.delay is not None and not DELAY_RE.match(shape.delay):
        raise TopologyError(f"{where}: bad delay {shape.delay!r}", hint="write e.g. 10ms or 500us")
    if shape.loss is not None and not 0 <= shape.loss <= 100:
        raise TopologyError(f"{where}: loss is a percentage 0..100, not {shape.loss}")


# The type each field must have, for the error a file with `memory_mb = "x"` deserves.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "switch": (str,), "model": (str,), "ip": (str, type(None)),
    "memory_mb": (int,), "cpus": (int,), "bw": (int, float, type(None)),
    "delay": (str, type(None)), "loss": (int, float, type(None)),
}


def _check_types(where: str, item: object) -> None:
    for name, allowed in _FIELD_TYPES.items():
        if not hasattr(item, name):
            continue
        value = getattr(item, name)
        # bool is an int to Python, never a sensible size, count or rate here
        if not isinstance(value, allowed) or isinstance(value, bool):
            wanted = " or ".join("nothing" if t is type(None) else t.__name__ for t in allowed)
            raise TopologyError(f"{where}: {name} = {value!r} should be a {wanted}")


def _check_all_types(topo: Topology) -> None:
    where = topo.source
    for item in (*topo.switches, *topo.vms, *topo.hosts):
        _check_types(where, item)
    for vm in topo.vms:
        for i, nic in enumerate(vm.nics):
            _check_types(f"{where}: vm {vm.name} nic {i}", nic)
    for host in topo.hosts:
        for i, link in enumerate(host.links):
            _check_types(f"{where}: host {host.name} link {i}", link)


def validate(topo: Topology) -> None:
    """Raise TopologyError, naming the offending place, unless the topology is sound."""
    _check_all_types(topo)
    where = topo.source
    names = topo.node_names()
    for name in names:
        _check_name(where, name)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TopologyError(f"{where}: node names used twice: {', '.join(dupes)}")
    if not topo.vms and not topo.hosts:
        raise TopologyError(f"{where}: the topology has no VMs and no hosts")
    switches = {s.name for s in topo.switches}
    addresses: set[ipaddress.IPv4Address] = set()
    for vm in topo.vms:
        if not 128 <= vm.memory_mb <= 16384:
            raise TopologyError(f"{where}: vm {vm.name}: memory_mb must be 128..16384")
        if not 1 <= vm.cpus <= 8:
            raise TopologyError(f"{where}: vm {vm.name}: cpus must be 1..8")
        if len(vm.nics) > 8:
            raise TopologyError(f"{where}: vm {vm.name}: at most 8 NICs")
        for i, nic in enumerate(vm.nics):
            place = f"{where}: vm {vm.name} nic {i}"
            if nic.switch not in switches:
                raise TopologyError(f"{place}: no switch named {nic.switch!r}",
                                    hint=f"switches: {', '.join(sorted(switches)) or 'none'}")
            if nic.model not in NIC_MODELS:
                raise TopologyError(f"{place}: unknown NIC model {nic.model!r}",
                                    hint=f"use one of: {', '.join(NIC_MODELS)}")
            _check_ip(place, nic.ip, addresses)
            _check_shape(place, nic)
    for host in topo.hosts:
        for i, link in enumerate(host.links):
            place = f"{where}: host {host.name} link {i}"
            if link.switch not in switches:
                raise TopologyError(f"{place}: no switch named {link.switch!r}")
            _check_ip(place, link.ip, addresses)
            _check_shape(place, link)
