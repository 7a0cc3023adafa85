"""Can this NIC be passed through to a lab VM? Each check says why not and what to do.

Division of labour: `preflight(target, root)` resolves a PCI address or interface name and
runs the checks in order, against lab.passthrough.sysfs.HostView (so tests use fake sysfs
trees). It only reads. Checks: the IOMMU is on; the device exists and is an Intel e1000e;
its current driver; its IOMMU group is viable (every other member bound to vfio-pci or
pci-stub, unbound, or a PCI bridge); it does not carry the host's default route; it has no
addresses. A NIC passes when no check fails; warnings say what the qemu backend still needs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.passthrough.sysfs import (
    E1000E_DEVICE_IDS,
    INTEL_VENDOR,
    VFIO_DRIVERS,
    HostView,
    PciDevice,
    looks_like_bdf,
    normalize_bdf,
)

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn or fail
    detail: str  # what was found
    fix: str = ""  # what to do about it (fail and warn)


@dataclass
class PreflightReport:
    target: str
    bdf: str | None = None
    interfaces: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.status != FAIL for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix))

    def text(self) -> str:
        what = self.bdf or self.target
        if self.bdf and self.interfaces:
            what += f" ({', '.join(self.interfaces)})"
        lines = [f"passthrough preflight for {what}"]
        for c in self.checks:
            lines.append(f"  [{c.status.upper():4}] {c.name}: {c.detail}")
            if c.fix and c.status != OK:
                lines.append(f"         what to do: {c.fix}")
        verdict = "can be passed through" if self.ok else \
            f"must not be passed through ({len(self.failed())} check(s) failed)"
        lines.append(f"verdict: {what} {verdict}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"target": self.target, "bdf": self.bdf, "ok": self.ok,
                           "interfaces": self.interfaces,
                           "checks": [asdict(c) for c in self.checks]}, indent=2)


def preflight(target: str, root: Path | str = "/") -> PreflightReport:
    """Run every check for `target` (PCI address like 0000:03:00.0, or an interface name)."""
    host = HostView(root)
    report = PreflightReport(target)
    _check_iommu(host, report)
    device = _resolve(host, target, report)
    if device is None:
        if report.interfaces:  # a host interface, though not a PCI one: say if it matters
            _check_default_route(host, report)
            _check_addresses(host, report)
        return report
    report.bdf, report.interfaces = device.bdf, list(device.netdevs) or report.interfaces
    _check_identity(device, report)
    _check_driver(device, report)
    _check_group(host, device, report)
    _check_default_route(host, report)
    _check_addresses(host, report)
    return report


def _check_iommu(host: HostView, report: PreflightReport) -> None:
    units, groups = host.iommu_units(), host.iommu_groups()
    if groups:
        report.add("iommu", OK, f"IOMMU on ({len(groups)} groups; units: "
                   f"{', '.join(units) or 'not listed'})")
    elif units:
        report.add("iommu", FAIL, f"IOMMU hardware present ({', '.join(units)}) but no IOMMU "
                   "groups: the kernel does not use it for DMA remapping",
                   "boot the host with intel_iommu=on iommu=pt (AMD: amd_iommu=on) on the "
                   "kernel command line, then reboot")
    else:
        report.add("iommu", FAIL, "no IOMMU: /sys/class/iommu and /sys/kernel/iommu_groups "
                   "are empty, so vfio cannot isolate the device's DMA",
                   "enable VT-d (Intel) or AMD-Vi/IOMMU in the firmware setup and boot with "
                   "intel_iommu=on iommu=pt (AMD: amd_iommu=on); a VM or container host "
                   "without a virtual IOMMU cannot pass devices through at all")


def _plausible_ifname(name: str) -> bool:
    """Linux's own rule (dev_valid_name), checked before the name becomes a sysfs path."""
    return 0 < len(name) <= 15 and name not in (".", "..") and not any(
        c in name for c in "/: \t\n")


def _resolve(host: HostView, target: str, report: PreflightReport) -> PciDevice | None:
    if looks_like_bdf(target):
        bdf = normalize_bdf(target)
        if not host.pci_exists(bdf):
            report.add("device", FAIL, f"no PCI device {bdf}",
                       "list the host's NICs with `lspci -D -nn | grep -i ethernet`")
            return None
    else:
        if not _plausible_ifname(target):
            report.add("device", FAIL, f"`{target[:40]}` is neither a PCI address nor an "
                       "interface name (at most 15 characters, no `/`)",
                       "name an interface from `ip -br link` or a PCI address from `lspci -D`")
            return None
        if not host.interface_exists(target):
            report.add("device", FAIL, f"no network interface `{target}`",
                       "name an interface from `ip -br link` or a PCI address from `lspci -D`")
            return None
        found = host.interface_bdf(target)
        report.interfaces = [target]
        if found is None:
            report.add("device", FAIL, f"`{target}` is not a PCI NIC (a virtual interface "
                       "such as a bridge, tap, veth or bond, or a device on another bus)",
                       "name the physical e1000e port; `ethtool -i IFNAME` shows its bus-info")
            return None
        bdf = found
    device = host.pci_device(bdf)
    report.add("device", OK, f"PCI device {bdf}")
    return device


def _check_identity(device: PciDevice, report: PreflightReport) -> None:
    ids = f"{_hex4(device.vendor)}:{_hex4(device.device)}"
    if device.vendor != INTEL_VENDOR:
        report.add("vendor", FAIL, f"vendor:device {ids} is not Intel (vendor 0x8086)",
                   "the lab passes through e1000e NICs only (the guest's e1000e driver "
                   "must drive it); pick an Intel e1000e port, e.g. 82574L (8086:10d3)")
        return
    if device.device not in E1000E_DEVICE_IDS:
        report.add("vendor", FAIL, f"Intel device {ids} is not one the e1000e driver claims "
                   "(igb, ixgbe, i40e NICs use other drivers)",
                   "pick an e1000e NIC (82571-82574, 82583, ICH8-10, PCH I217/I218/I219)")
        return
    report.add("vendor", OK, f"Intel e1000e NIC {ids}")


def _check_driver(device: PciDevice, report: PreflightReport) -> None:
    bdf = device.bdf
    bind_cmds = (f"echo {bdf} > /sys/bus/pci/devices/{bdf}/driver/unbind; "
                 f"echo vfio-pci > /sys/bus/pci/devices/{bdf}/driver_override; "
                 f"echo {bdf} > /sys/bus/pci/drivers_probe (after `modprobe vfio-pci`)")
    if device.driver == "vfio-pci":
        report.add("driver", OK, "bound to vfio-pci: ready for qemu and libvirt")
    elif device.driver is None:
        report.add("driver", WARN, "bound to no driver",
                   f"libvirt (managed='yes') binds it to vfio-pci by itself; for the qemu "
                   f"backend bind it first: {bind_cmds}")
    elif device.driver == "e1000e":
        report.add("driver", WARN, "bound to the host's e1000e driver",
                   "libvirt (managed='yes') moves it to vfio-pci while the VM runs and gives "
                   f"it back afterwards; for the qemu backend bind it yourself: {bind_cmds}")
    else:
        report.add("driver", FAIL, f"bound to `{device.driver}`, which is neither e1000e "
                   "nor vfio-pci", f"unbind it and bind vfio-pci: {bind_cmds}")


def _check_group(host: HostView, device: PciDevice, report: PreflightReport) -> None:
    if device.iommu_group is None:
        report.add("iommu group", FAIL, f"{device.bdf} is in no IOMMU group",
                   "turn the IOMMU on (see the iommu check); if it is on, the platform "
                   "cannot isolate this slot: try another slot")
        return
    members = [m for m in host.group_members(device.iommu_group) if m != device.bdf]
    blockers = []
    for member in members:
        other = host.pci_device(member)
        if other.is_bridge or other.driver is None or other.driver in VFIO_DRIVERS:
            continue
        blockers.append(f"{member} (driver {other.driver})")
    group = f"IOMMU group {device.iommu_group}"
    if blockers:
        report.add("iommu group", FAIL,
                   f"{group} also holds {', '.join(blockers)}: vfio hands the whole group "
                   "to the VM, so it is not viable while the host drives those",
                   "bind every listed device to vfio-pci too (only if the host can spare "
                   "them), or move the NIC to a slot with its own group (ACS)")
        return
    others = f" with {len(members)} other device(s), all bridges or vfio-bound or unbound" \
        if members else " (the NIC alone)"
    report.add("iommu group", OK, f"{group} is viable{others}")


def _check_default_route(host: HostView, report: PreflightReport) -> None:
    carrying = sorted(set(report.interfaces) & host.default_route_interfaces())
    if carrying:
        report.add("default route", FAIL,
                   f"{', '.join(carrying)} carries the host's default route: handing it to "
                   "a VM cuts the host (and your ssh session) off the network",
                   "use a NIC the host does not need; the lab never takes the host's uplink")
    else:
        report.add("default route", OK, "does not carry the host's default route")


def _check_addresses(host: HostView, report: PreflightReport) -> None:
    found = {ifname: host.addresses(ifname) for ifname in report.interfaces}
    used = {ifname: addrs for ifname, addrs in found.items() if addrs}
    if used:
        listing = "; ".join(f"{i}: {', '.join(a)}" for i, a in used.items())
        report.add("addresses", FAIL, f"the host uses it ({listing})",
                   f"remove the addresses first (`ip addr flush dev {next(iter(used))}`) if "
                   "the host really does not need this NIC, else pick another one")
    else:
        report.add("addresses", OK, "no host addresses" if report.interfaces
                   else "no host interface (not driven by a network driver now)")


def _hex4(value: int | None) -> str:
    return "????" if value is None else f"{value:04x}"
