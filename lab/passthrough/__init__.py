"""Passthrough of a real e1000e NIC to a lab VM (vfio-pci): a preflight that says whether a
NIC can be handed over safely and why not, and the qemu/libvirt fragments that do it.

    from lab.passthrough import preflight
    report = preflight("enp3s0")            # or "0000:03:00.0"; root="/tmp/fake" in tests
    print(report.text()); report.ok
    qemu_args(report.bdf); hostdev_xml(report.bdf)
"""

from lab.passthrough.preflight import Check, PreflightReport, preflight
from lab.passthrough.render import hostdev_element, hostdev_xml, qemu_args

__all__ = ["Check", "PreflightReport", "hostdev_element", "hostdev_xml", "preflight",
           "qemu_args"]
