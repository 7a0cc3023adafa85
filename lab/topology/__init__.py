"""Topologies: what a lab is made of (VMs, Mininet hosts, switches, links)."""

from lab.topology.model import (
    HostLink,
    HostSpec,
    LinkShape,
    NicSpec,
    SwitchSpec,
    Topology,
    VmSpec,
)

__all__ = ["HostLink", "HostSpec", "LinkShape", "NicSpec", "SwitchSpec", "Topology", "VmSpec"]
