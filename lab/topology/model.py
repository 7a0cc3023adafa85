"""The topology model: plain data, validated once, shared by every backend.

A topology names its nodes; the lab derives host interface names from the run prefix and
node indexes, so user-chosen names never hit Linux's 15-character interface limit.
A lab may span several libvirt hypervisors (docs/design/multihost.md): the local machine is
the implicit hypervisor `local`, the others are `[[hypervisor]]` tables, and a VM's `on`
pins it to one of them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from lab.errors import TopologyError

NIC_MODELS = ("virtio", "e1000e")
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
DELAY_RE = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")
LOCAL = "local"  # the machine the lab runs on: always a hypervisor, never declared
LOCAL_URI = "qemu:///system"
URI_SCHEMES = ("qemu", "qemu+ssh", "qemu+tcp")
URI_HINT = "write qemu:///system, qemu+ssh://user@host/system or qemu+tcp://host/system"


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
    on: str | None = None  # a hypervisor name; None: placed automatically


@dataclass(frozen=True)
class HypervisorSpec:
    """A libvirt host of the lab besides the local machine, reached through `uri`."""

    name: str
    uri: str  # qemu+ssh://user@host/system, qemu+tcp://host/system
    underlay: str  # IPv4 address the other hosts' VXLAN tunnels reach this host at
    vcpus: int | None = None  # capacity overrides; None: what libvirt reports free
    memory_mb: int | None = None
    # how the lab runs commands on the host (its bridges and VXLAN devices):
    # "ssh:[user@]host", or "netns:NAME" for a namespace of this machine (the one-machine
    # testbed); None: ssh to the user and host of a qemu+ssh URI
    shell: str | None = None


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
    hypervisors: tuple[HypervisorSpec, ...] = ()  # besides LOCAL, which is implicit

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

    def hypervisor_names(self) -> list[str]:
        return [LOCAL, *(hv.name for hv in self.hypervisors)]

    def hypervisor(self, name: str) -> HypervisorSpec:
        for hv in self.hypervisors:
            if hv.name == name:
                return hv
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
    "delay": (str, type(None)), "loss": (int, float, type(None)), "on": (str, type(None)),
}
_HYPERVISOR_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "uri": (str,), "underlay": (str,), "vcpus": (int, type(None)),
    "memory_mb": (int, type(None)), "shell": (str, type(None)),
}


def _check_types(where: str, item: object,
                 types: dict[str, tuple[type, ...]] = _FIELD_TYPES) -> None:
    for name, allowed in types.items():
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
    for i, hv in enumerate(topo.hypervisors):
        _check_types(f"{where}: hypervisor {i}", hv, _HYPERVISOR_TYPES)


def check_uri(where: str, uri: str) -> None:
    """A libvirt URI of the system instance, local or through ssh or plain TCP."""
    try:
        parts = urlsplit(uri)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is no number
    except ValueError as exc:
        raise TopologyError(f"{where}: bad libvirt URI {uri!r}", hint=URI_HINT) from exc
    if parts.scheme not in URI_SCHEMES:
        raise TopologyError(f"{where}: libvirt URI {uri!r} has scheme {parts.scheme!r}; "
                            f"the lab takes {', '.join(URI_SCHEMES)}", hint=URI_HINT)
    if parts.path != "/system":
        # bridges, taps and VXLAN devices need root: the session instance cannot make them
        raise TopologyError(f"{where}: libvirt URI {uri!r} must name the system instance "
                            "(path /system)", hint=URI_HINT)
    if parts.scheme == "qemu" and parts.netloc:
        raise TopologyError(f"{where}: {uri!r} is libvirt over TLS, which the lab does not "
                            "set up", hint=URI_HINT)
    if parts.scheme != "qemu" and not host:
        raise TopologyError(f"{where}: libvirt URI {uri!r} names no host", hint=URI_HINT)


SHELL_HINT = ('write shell = "ssh:root@hv2" (any ssh target), or shell = "netns:NAME" for a '
              "network namespace of this machine")
SHELL_TARGET_RE = re.compile(r"^[A-Za-z0-9_.@:\[\]-]+$")


def check_shell(where: str, shell: str) -> tuple[str, str]:
    """("ssh", target) or ("netns", name) from a hypervisor's `shell`."""
    kind, _, target = shell.partition(":")
    if kind not in ("ssh", "netns") or not target:
        raise TopologyError(f"{where}: shell {shell!r} is neither ssh:TARGET nor netns:NAME",
                            hint=SHELL_HINT)
    if target.startswith("-") or not SHELL_TARGET_RE.match(target):
        raise TopologyError(f"{where}: shell target {target!r} is not a host or namespace "
                            "name (letters, digits, . _ - @ : only; no leading -)",
                            hint=SHELL_HINT)
    return kind, target


def check_underlay(where: str, underlay: str) -> ipaddress.IPv4Address:
    """The unicast IPv4 address other hosts reach this one at (VXLAN's outer header)."""
    try:
        addr = ipaddress.IPv4Address(underlay)
    except ValueError as exc:
        raise TopologyError(f"{where}: underlay {underlay!r} is not an IPv4 address",
                            hint="write one address without a prefix, like 203.0.113.2 (the "
                                 "MTU rule counts VXLAN over IPv4)") from exc
    if (addr.is_loopback or addr.is_multicast or addr.is_unspecified
            or addr == ipaddress.IPv4Address("255.255.255.255")):
        raise TopologyError(f"{where}: underlay {addr} cannot carry tunnels between hosts "
                            "(loopback, multicast, broadcast or unspecified)",
                            hint="give the address of this host on the network that joins "
                                 "the hypervisors")
    return addr


def _check_hypervisors(topo: Topology) -> None:
    where = topo.source
    uris: dict[str, str] = {}
    underlays: dict[ipaddress.IPv4Address, str] = {}
    for hv in topo.hypervisors:
        _check_name(f"{where}: hypervisor", hv.name)
        place = f"{where}: hypervisor {hv.name}"
        if hv.name == LOCAL:
            raise TopologyError(f"{place}: {LOCAL!r} is the machine the lab runs on and is "
                                "always there; it cannot be declared",
                                hint=f"give this hypervisor another name; on = {LOCAL!r} "
                                     "pins a VM to the local machine")
        if [h.name for h in topo.hypervisors].count(hv.name) > 1:
            raise TopologyError(f"{where}: hypervisor name {hv.name!r} is used twice")
        check_uri(place, hv.uri)
        if hv.uri in uris:
            raise TopologyError(f"{place}: URI {hv.uri} is already hypervisor "
                                f"{uris[hv.uri]}", hint="one [[hypervisor]] table per host")
        uris[hv.uri] = hv.name
        addr = check_underlay(place, hv.underlay)
        if addr in underlays:
            raise TopologyError(f"{place}: underlay {addr} is already hypervisor "
                                f"{underlays[addr]}'s", hint="each host has its own underlay")
        underlays[addr] = hv.name
        if hv.shell is not None:
            check_shell(place, hv.shell)
        if hv.vcpus is not None and not 1 <= hv.vcpus <= 4096:
            raise TopologyError(f"{place}: vcpus must be 1..4096, not {hv.vcpus}")
        if hv.memory_mb is not None and not 128 <= hv.memory_mb <= 1 << 24:
            raise TopologyError(f"{place}: memory_mb must be 128..{1 << 24}, "
                                f"not {hv.memory_mb}")
    known = topo.hypervisor_names()
    for vm in topo.vms:
        if vm.on is not None and vm.on not in known:
            raise TopologyError(f"{where}: vm {vm.name}: on = {vm.on!r} names no hypervisor",
                                hint=f"hypervisors: {', '.join(known)} (declare others with "
                                     "[[hypervisor]])")


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
    _check_hypervisors(topo)
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
