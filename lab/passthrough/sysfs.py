"""Read what passthrough needs from sysfs and procfs under a root folder (pure reads).

Division of labour: `HostView(root)` knows where the kernel keeps PCI devices, IOMMU groups,
network interfaces and routes; the preflight (lab.passthrough.preflight) judges them.
`root` is "/" on a real host and a fake tree in tests; nothing here writes anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

INTEL_VENDOR = 0x8086
PCI_CLASS_BRIDGE_PCI = 0x0604  # PCI-to-PCI bridges (pcieport): harmless in a vfio group
VFIO_DRIVERS = ("vfio-pci", "pci-stub")  # drivers that keep a group viable for vfio

# PCI device ids the guest's e1000e driver claims (vendor 0x8086), taken from the
# modules.alias of the guest kernel (Debian 6.1.0-56-amd64). 0x10D3 is the 82574L that
# qemu's emulated e1000e models.
_E1000E_IDS_TEXT = """
0D4C 0D4D 0D4E 0D4F 0D53 0D55 0DC5 0DC6 0DC7 0DC8 1049 104A 104B 104C 104D 105E 105F
1060 107D 107E 107F 108B 108C 1096 1098 109A 10A4 10A5 10B9 10BA 10BB 10BC 10BD 10BF
10C0 10C2 10C3 10C4 10C5 10CB 10CC 10CD 10CE 10D3 10D5 10D9 10DA 10DE 10DF 10E5 10EA
10EB 10EF 10F0 10F5 10F6 1501 1502 1503 150C 1525 153A 153B 1559 155A 156F 1570 15A0
15A1 15A2 15A3 15B7 15B8 15B9 15BB 15BC 15BD 15BE 15D6 15D7 15D8 15DF 15E0 15E1 15E2
15E3 15F4 15F5 15F9 15FA 15FB 15FC 1A1C 1A1D 1A1E 1A1F 294C 550A 550B 550C 550D 550E
550F 5510 5511
"""
E1000E_DEVICE_IDS = frozenset(int(x, 16) for x in _E1000E_IDS_TEXT.split())

_BDF = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")


def looks_like_bdf(text: str) -> bool:
    return _BDF.match(text) is not None


def normalize_bdf(text: str) -> str:
    """`03:00.0` or `0000:03:00.0` -> `0000:03:00.0` (lower case)."""
    match = _BDF.match(text.strip())
    if match is None:
        raise LabError(f"`{text}` is not a PCI address",
                       "write it as DDDD:BB:SS.F or BB:SS.F, e.g. 0000:03:00.0 (see `lspci -D`)")
    domain, bus, slot, function = match.groups()
    return f"{(domain or '0000').lower()}:{bus.lower()}:{slot.lower()}.{function}"


@dataclass(frozen=True)
class PciDevice:
    bdf: str
    vendor: int | None
    device: int | None
    pci_class: int | None  # 24-bit class code, e.g. 0x020000 for an Ethernet controller
    driver: str | None
    iommu_group: str | None
    netdevs: tuple[str, ...]

    @property
    def is_bridge(self) -> bool:
        return self.pci_class is not None and self.pci_class >> 8 == PCI_CLASS_BRIDGE_PCI


class HostView:
    """sysfs/procfs of one host (or of a fake tree) below `root`."""

    def __init__(self, root: Path | str = "/") -> None:
        self.root = Path(root)

    def _p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    # ---- IOMMU ------------------------------------------------------------------------

    def iommu_units(self) -> list[str]:
        return _names(self._p("/sys/class/iommu"))

    def iommu_groups(self) -> list[str]:
        return _names(self._p("/sys/kernel/iommu_groups"))

    def group_members(self, group: str) -> list[str]:
        return _names(self._p(f"/sys/kernel/iommu_groups/{group}/devices"))

    # ---- PCI devices and interfaces ---------------------------------------------------

    def pci_exists(self, bdf: str) -> bool:
        return self._p(f"/sys/bus/pci/devices/{bdf}").is_dir()

    def pci_device(self, bdf: str) -> PciDevice:
        folder = self._p(f"/sys/bus/pci/devices/{bdf}")
        return PciDevice(bdf=bdf, vendor=_hex(folder / "vendor"), device=_hex(folder / "device"),
                         pci_class=_hex(folder / "class"), driver=_link_name(folder / "driver"),
                         iommu_group=_link_name(folder / "iommu_group"),
                         netdevs=tuple(_names(folder / "net")))

    def interface_exists(self, ifname: str) -> bool:
        return self._p(f"/sys/class/net/{ifname}").exists()

    def interface_bdf(self, ifname: str) -> str | None:
        """The PCI address behind an interface, None for a virtual or non-PCI one."""
        device = self._p(f"/sys/class/net/{ifname}/device")
        name = _link_name(device)
        if name is None or not looks_like_bdf(name):
            return None
        return normalize_bdf(name)

    # ---- routes and addresses ---------------------------------------------------------

    def default_route_interfaces(self) -> set[str]:
        """Interfaces with an IPv4 or IPv6 default route (/proc/net/route, ipv6_route)."""
        found = set()
        for fields in _table(self._p("/proc/net/route"), skip_header=True):
            if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
                found.add(fields[0])
        for fields in _table(self._p("/proc/net/ipv6_route")):
            if len(fields) >= 10 and set(fields[0]) == {"0"} and fields[1] == "00" \
                    and fields[9] != "lo":
                found.add(fields[9])
        return found

    def addresses(self, ifname: str) -> list[str]:
        """What shows an interface is in use by the host: IPv4 subnets routed through it
        (/proc/net/route: every IPv4 address adds one), IPv6 addresses other than
        link-local (/proc/net/if_inet6), and on the real host the IPv4 addresses
        themselves (netlink, read-only)."""
        found: list[str] = []
        for fields in _table(self._p("/proc/net/route"), skip_header=True):
            if len(fields) >= 8 and fields[0] == ifname and fields[2] == "00000000" \
                    and fields[1] != "00000000":
                found.append(f"{_ipv4(fields[1])}/{_prefixlen(fields[7])} (route)")
        for fields in _table(self._p("/proc/net/if_inet6")):
            if len(fields) >= 6 and fields[5] == ifname and fields[3] != "20":  # 20: link
                found.append(f"{_ipv6(fields[0])}/{int(fields[2], 16)}")
        if self.root.resolve() == Path("/"):
            found += [a for a in _netlink_ipv4(ifname) if a not in found]
        return found


def _names(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


def _hex(path: Path) -> int | None:
    try:
        return int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return None


def _link_name(path: Path) -> str | None:
    """Basename of a symlink's target (sysfs `driver`, `iommu_group`, `device` links)."""
    try:
        return Path(os.readlink(path)).name
    except OSError:
        return None


def _table(path: Path, skip_header: bool = False) -> list[list[str]]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [line.split() for line in lines[1 if skip_header else 0:] if line.strip()]


def _ipv4(little_endian_hex: str) -> str:
    value = int(little_endian_hex, 16)
    return ".".join(str((value >> shift) & 0xFF) for shift in (0, 8, 16, 24))


def _prefixlen(little_endian_mask: str) -> int:
    return bin(int(little_endian_mask, 16)).count("1")


def _ipv6(hex32: str) -> str:
    import ipaddress

    return str(ipaddress.IPv6Address(bytes.fromhex(hex32)))


def _netlink_ipv4(ifname: str) -> list[str]:
    try:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            indexes = ipr.link_lookup(ifname=ifname)
            if not indexes:
                return []
            return [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                    for a in ipr.get_addr(index=indexes[0], family=2)]
    except Exception:  # noqa: BLE001 - the proc files above already gave an answer
        return []
