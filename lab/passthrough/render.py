"""The qemu and libvirt fragments that pass a host PCI device to a guest (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from lab.passthrough.sysfs import normalize_bdf


def qemu_args(bdf: str) -> list[str]:
    """qemu argv fragment; the device must already be bound to vfio-pci on the host."""
    return ["-device", f"vfio-pci,host={normalize_bdf(bdf)}"]


def hostdev_element(bdf: str) -> ET.Element:
    """libvirt <hostdev>: managed='yes' makes libvirt bind the device to vfio-pci while the
    domain runs and give it back to its host driver afterwards."""
    domain, bus, slot_fn = normalize_bdf(bdf).split(":")
    slot, function = slot_fn.split(".")
    hostdev = ET.Element("hostdev", mode="subsystem", type="pci", managed="yes")
    source = ET.SubElement(hostdev, "source")
    ET.SubElement(source, "address", domain=f"0x{domain}", bus=f"0x{bus}", slot=f"0x{slot}",
                  function=f"0x{function}")
    return hostdev


def hostdev_xml(bdf: str) -> str:
    element = hostdev_element(bdf)
    ET.indent(element, space="  ")
    return ET.tostring(element, encoding="unicode") + "\n"
