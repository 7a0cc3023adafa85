"""Pure builder of the libvirt domain XML for one lab VM (no I/O, golden-testable).

Division of labour: `LibvirtVM` decides names, file locations, taps and the accelerator;
this module only turns them into XML. The domain mirrors what lab.vm.qemu_argv gives qemu
directly: direct kernel boot, virtio-blk overlay with cache=unsafe, serial console to a
file, the guest agent on a virtio-serial port named org.qemu.guest_agent.0 (as a unix
socket), the 9p share with tag `lab`, NICs without option ROMs, no USB, no balloon, and a
guest reboot or crash ends the domain (qemu's -no-reboot). qemu runs as root without
relabelling (static DAC label), so libvirt never chowns the shared read-only image or the
run folder, which other labs use too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import BackendError
from lab.vm.qemu_argv import CONSOLE_LOGLEVEL, QGA_PORT_NAME, SHARE_TAG

# libvirt <model type=...> for the lab's NIC model names (same names as lab.vm.qemu_argv)
LIBVIRT_NIC_MODELS = {"virtio": "virtio", "virtio-net-pci": "virtio", "e1000e": "e1000e"}


@dataclass(frozen=True)
class DomainNic:
    """One guest NIC. `bridge=None`: <interface type='ethernet'> on the existing tap `tap`
    (libvirt does not create or delete it). `bridge` set: <interface type='bridge'>, libvirt
    creates the tap named `tap` (if given) and enslaves it to that bridge."""

    model: str
    mac: str
    tap: str | None = None
    bridge: str | None = None

    def libvirt_model(self) -> str:
        try:
            return LIBVIRT_NIC_MODELS[self.model]
        except KeyError:
            raise BackendError(f"NIC model `{self.model}` is not supported",
                               f"use one of: {', '.join(sorted(LIBVIRT_NIC_MODELS))}") from None


@dataclass(frozen=True)
class DomainSpec:
    """Everything the domain XML depends on. `cmdline` is the image's; the runtime's
    additions (console loglevel, hostname) are appended here, as qemu_argv does."""

    name: str  # libvirt domain name: unique on the hypervisor host (run prefix + VM name)
    vm_name: str  # the lab's name for the VM (guest hostname)
    kernel: Path
    initrd: Path
    cmdline: str
    overlay: Path
    console_log: Path
    qga_socket: Path | None  # None: libvirt picks the socket path on the host (remote VMs)
    nics: Sequence[DomainNic] = ()
    share: Path | None = None
    memory_mb: int = 512
    cpus: int = 1
    accel: str = "tcg"  # "tcg" -> domain type 'qemu', "kvm" -> 'kvm'
    hostdevs: Sequence[ET.Element] = field(default_factory=tuple)  # passthrough <hostdev>s
    title: str = ""


def domain_xml(spec: DomainSpec) -> str:
    """The <domain> document as a string (2-space indented, stable for golden files)."""
    root = domain_element(spec)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def domain_element(spec: DomainSpec) -> ET.Element:
    if spec.accel not in ("tcg", "kvm"):
        raise BackendError(f"accelerator `{spec.accel}` is not known to the libvirt backend",
                           "use `tcg` or `kvm`")
    dom = ET.Element("domain", type="kvm" if spec.accel == "kvm" else "qemu")
    _text(dom, "name", spec.name)
    if spec.title:
        _text(dom, "title", spec.title)
    _text(dom, "memory", str(spec.memory_mb), unit="MiB")
    _text(dom, "vcpu", str(spec.cpus))
    os_el = ET.SubElement(dom, "os")
    _text(os_el, "type", "hvm", arch="x86_64", machine="pc")
    _text(os_el, "kernel", str(spec.kernel))
    _text(os_el, "initrd", str(spec.initrd))
    _text(os_el, "cmdline", f"{spec.cmdline} {CONSOLE_LOGLEVEL} lana.hostname={spec.vm_name}")
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")  # guest power-off goes through ACPI, as with plain qemu
    if spec.accel == "kvm":
        ET.SubElement(dom, "cpu", mode="host-passthrough")  # qemu_argv: -cpu host
    ET.SubElement(dom, "clock", offset="utc")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _text(dom, event, "destroy")  # qemu's -no-reboot: a reboot or panic ends the VM
    dom.append(_devices(spec))
    seclabel = ET.SubElement(dom, "seclabel", type="static", model="dac", relabel="no")
    _text(seclabel, "label", "+0:+0")
    return dom


def _devices(spec: DomainSpec) -> ET.Element:
    devices = ET.Element("devices")
    disk = ET.SubElement(devices, "disk", type="file", device="disk")
    # the overlay is throwaway: skip host flushes (qemu_argv does the same)
    ET.SubElement(disk, "driver", name="qemu", type="qcow2", cache="unsafe")
    ET.SubElement(disk, "source", file=str(spec.overlay))
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    ET.SubElement(devices, "controller", type="usb", model="none")
    if spec.share is not None:
        fs = ET.SubElement(devices, "filesystem", type="mount", accessmode="squash")
        ET.SubElement(fs, "source", dir=str(spec.share))  # squash == qemu security_model=none
        ET.SubElement(fs, "target", dir=SHARE_TAG)
    for index, nic in enumerate(spec.nics):
        devices.append(_interface(spec.vm_name, index, nic))
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=str(spec.console_log))
    ET.SubElement(serial, "target", port="0")
    channel = ET.SubElement(devices, "channel", type="unix")
    if spec.qga_socket is not None:
        ET.SubElement(channel, "source", mode="bind", path=str(spec.qga_socket))
    else:
        ET.SubElement(channel, "source", mode="bind")
    ET.SubElement(channel, "target", type="virtio", name=QGA_PORT_NAME)
    for hostdev in spec.hostdevs:
        devices.append(hostdev)
    ET.SubElement(devices, "memballoon", model="none")
    return devices


def _interface(vm_name: str, index: int, nic: DomainNic) -> ET.Element:
    if nic.bridge is not None:
        iface = ET.Element("interface", type="bridge")
        ET.SubElement(iface, "source", bridge=nic.bridge)
        if nic.tap:
            ET.SubElement(iface, "target", dev=nic.tap)
    else:
        if not nic.tap:
            raise BackendError(f"vm `{vm_name}`: NIC {index} has neither a tap nor a bridge",
                               "give the NIC a tap the lab made, or a bridge to join")
        iface = ET.Element("interface", type="ethernet")
        ET.SubElement(iface, "target", dev=nic.tap, managed="no")  # the lab owns the tap
    ET.SubElement(iface, "mac", address=nic.mac)
    ET.SubElement(iface, "model", type=nic.libvirt_model())
    ET.SubElement(iface, "rom", enabled="no")  # no iPXE ROM: faster boot (qemu romfile=)
    return iface


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    el.text = text
    return el
