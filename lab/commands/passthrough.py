"""`lanalab passthrough check BDF|IFNAME`: may this NIC be handed to a VM, and how."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("passthrough", help="pass a real e1000e NIC through to a VM (vfio-pci)",
                       description="Passthrough of a real Intel e1000e NIC to a lab VM.")
    actions = p.add_subparsers(dest="passthrough_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="preflight: IOMMU, IOMMU group, vendor/device, driver, routes, addresses",
        description="Check whether a NIC can be passed through safely; every failed check "
        "says why and what to do. Only reads sysfs/procfs; changes nothing. Exit code 0 when "
        "the NIC can be passed through, 1 otherwise.")
    check.add_argument("target", metavar="BDF|IFNAME",
                       help="PCI address (0000:03:00.0) or interface name (enp3s0)")
    check.add_argument("--root", default="/",
                       help="read sysfs/procfs below this folder (default /; for tests)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from lab.passthrough import hostdev_xml, preflight, qemu_args

    report = preflight(args.target, args.root)
    if args.json:
        print(report.to_json())
        return 0 if report.ok else 1
    print(report.text())
    if report.ok and report.bdf:
        print("\nqemu backend (device bound to vfio-pci first):\n  "
              + " ".join(qemu_args(report.bdf)))
        print("libvirt backend (managed: libvirt binds vfio-pci itself):")
        print("".join(f"  {line}\n" for line in hostdev_xml(report.bdf).splitlines()), end="")
    return 0 if report.ok else 1
