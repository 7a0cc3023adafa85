"""The passthrough preflight against fake sysfs/procfs trees built like the kernel's
(symlinks for driver, iommu_group and device), plus the qemu/libvirt fragments and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lab.commands import passthrough as passthrough_command
from lab.errors import LabError
from lab.passthrough import hostdev_xml, preflight, qemu_args
from lab.passthrough.sysfs import normalize_bdf

NIC = "0000:03:00.0"
ROUTE_HEADER = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\t"
                "Window\tIRTT\n")


class FakeHost:
    """A host tree: PCI devices, IOMMU units and groups, interfaces, routes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for folder in ("sys/bus/pci/devices", "sys/class/net", "sys/class/iommu",
                       "sys/kernel/iommu_groups", "proc/net"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        self.routes: list[str] = []

    def iommu_unit(self, name: str = "dmar0") -> None:
        (self.root / "sys/class/iommu" / name).mkdir()

    def pci(self, bdf: str, vendor: int = 0x8086, device: int = 0x10D3,
            pci_class: int = 0x020000, driver: str | None = "e1000e", group: str | None = "7",
            ifname: str | None = None) -> None:
        folder = self.root / "sys/devices/pci0000:00" / bdf
        folder.mkdir(parents=True)
        (folder / "vendor").write_text(f"0x{vendor:04x}\n")
        (folder / "device").write_text(f"0x{device:04x}\n")
        (folder / "class").write_text(f"0x{pci_class:06x}\n")
        (self.root / "sys/bus/pci/devices" / bdf).symlink_to(folder)
        if driver is not None:
            drv = self.root / "sys/bus/pci/drivers" / driver
            drv.mkdir(parents=True, exist_ok=True)
            (folder / "driver").symlink_to(drv)
        if group is not None:
            gdir = self.root / "sys/kernel/iommu_groups" / group
            (gdir / "devices").mkdir(parents=True, exist_ok=True)
            (gdir / "devices" / bdf).symlink_to(folder)
            (folder / "iommu_group").symlink_to(gdir)
        if ifname is not None:
            (folder / "net" / ifname).mkdir(parents=True)
            net = self.root / "sys/devices/virtual/net" / ifname  # any folder will do
            net.mkdir(parents=True)
            (net / "device").symlink_to(folder)
            (self.root / "sys/class/net" / ifname).symlink_to(net)

    def virtual_interface(self, ifname: str) -> None:
        (self.root / "sys/devices/virtual/net" / ifname).mkdir(parents=True)
        (self.root / "sys/class/net" / ifname).symlink_to(
            self.root / "sys/devices/virtual/net" / ifname)

    def route(self, iface: str, dest: str, gateway: str, mask: str) -> None:
        self.routes.append(f"{iface}\t{dest}\t{gateway}\t0003\t0\t0\t0\t{mask}\t0\t0\t0\n")
        (self.root / "proc/net/route").write_text(ROUTE_HEADER + "".join(self.routes))

    def inet6(self, line: str) -> None:
        with open(self.root / "proc/net/if_inet6", "a") as f:
            f.write(line + "\n")


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    """A host with an IOMMU, an e1000e NIC `enp3s0` alone in group 7 and the uplink eth0
    (another NIC) carrying the default route and 10.0.2.15/24."""
    fake = FakeHost(tmp_path)
    fake.iommu_unit()
    fake.pci(NIC, ifname="enp3s0")
    fake.pci("0000:00:19.0", device=0x15B7, group="3", ifname="eth0")
    fake.route("eth0", "00000000", "0202000A", "00000000")  # default via 10.0.2.2
    fake.route("eth0", "0002000A", "00000000", "00FFFFFF")  # 10.0.2.0/24 (its address)
    fake.inet6("fe80000000000000a8bbccfffe001122 03 40 20 80 enp3s0")  # link-local only
    return fake


def _statuses(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.name: c.status for c in report.checks}


def test_good_nic_passes_by_name_and_by_address(host: FakeHost) -> None:
    for target in ("enp3s0", NIC, "03:00.0"):
        report = preflight(target, host.root)
        assert report.ok, report.text()
        assert report.bdf == NIC and report.interfaces == ["enp3s0"]
    statuses = _statuses(report)
    assert statuses == {"iommu": "ok", "device": "ok", "vendor": "ok", "driver": "warn",
                        "iommu group": "ok", "default route": "ok", "addresses": "ok"}
    # still on the host driver: the warning says how the qemu backend gets it on vfio-pci
    assert "driver_override" in report.check("driver").fix
    assert "can be passed through" in report.text()


def test_nic_bound_to_vfio_has_no_warnings(tmp_path: Path) -> None:
    fake = FakeHost(tmp_path)
    fake.iommu_unit()
    fake.pci(NIC, driver="vfio-pci")  # no netdev once vfio-pci holds it
    report = preflight(NIC, tmp_path)
    assert report.ok and all(c.status == "ok" for c in report.checks), report.text()


def test_iommu_off_fails_with_kernel_parameters_to_set(tmp_path: Path) -> None:
    fake = FakeHost(tmp_path)
    fake.pci(NIC, group=None, ifname="enp3s0")
    report = preflight("enp3s0", tmp_path)
    assert not report.ok
    assert _statuses(report)["iommu"] == "fail" and _statuses(report)["iommu group"] == "fail"
    assert "intel_iommu=on" in report.check("iommu").fix
    assert "firmware" in report.check("iommu").fix


def test_iommu_hardware_present_but_unused(tmp_path: Path) -> None:
    fake = FakeHost(tmp_path)
    fake.iommu_unit("dmar0")
    fake.pci(NIC, group=None)
    check = preflight(NIC, tmp_path).check("iommu")
    assert check.status == "fail" and "dmar0" in check.detail and "no IOMMU groups" in check.detail


def test_shared_group_with_a_host_driven_device_is_not_viable(host: FakeHost) -> None:
    host.pci("0000:03:00.1", device=0x10D3, driver="snd_hda_intel", group="7")
    host.pci("0000:00:1c.0", pci_class=0x060400, driver="pcieport", group="7")  # bridge: fine
    report = preflight("enp3s0", host.root)
    assert not report.ok
    check = report.check("iommu group")
    assert check.status == "fail"
    assert "0000:03:00.1 (driver snd_hda_intel)" in check.detail
    assert "00:1c.0" not in check.detail
    assert "vfio-pci" in check.fix


def test_shared_group_with_vfio_bridge_and_unbound_members_is_viable(host: FakeHost) -> None:
    host.pci("0000:03:00.1", driver="vfio-pci", group="7")
    host.pci("0000:03:00.2", driver=None, group="7")
    host.pci("0000:00:1c.0", pci_class=0x060400, driver="pcieport", group="7")
    check = preflight(NIC, host.root).check("iommu group")
    assert check.status == "ok" and "3 other device(s)" in check.detail


def test_wrong_vendor_and_non_e1000e_intel_fail(host: FakeHost) -> None:
    host.pci("0000:04:00.0", vendor=0x10EC, device=0x8168, driver="r8169", group="8",
             ifname="enp4s0")
    report = preflight("enp4s0", host.root)
    assert not report.ok
    assert "10ec:8168 is not Intel" in report.check("vendor").detail
    assert report.check("driver").status == "fail"  # r8169 is neither e1000e nor vfio-pci
    host.pci("0000:05:00.0", device=0x1533, driver="igb", group="9")  # an I210: igb
    check = preflight("0000:05:00.0", host.root).check("vendor")
    assert check.status == "fail" and "8086:1533" in check.detail


def test_nic_carrying_the_default_route_is_refused(host: FakeHost) -> None:
    report = preflight("eth0", host.root)
    assert report.bdf == "0000:00:19.0" and report.check("vendor").status == "ok"
    assert not report.ok
    route = report.check("default route")
    assert route.status == "fail" and "cuts the host" in route.detail
    assert "10.0.2.0/24" in report.check("addresses").detail


def test_ipv6_default_route_is_refused_too(host: FakeHost) -> None:
    (host.root / "proc/net/ipv6_route").write_text(
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "fe800000000000000000000000000001 00000400 00000001 00000000 00000003   enp3s0\n")
    assert preflight("enp3s0", host.root).check("default route").status == "fail"


def test_nic_with_an_address_is_refused(host: FakeHost) -> None:
    host.inet6("20010db8000000000000000000000005 03 40 00 80 enp3s0")  # global
    report = preflight("enp3s0", host.root)
    check = report.check("addresses")
    assert not report.ok and check.status == "fail"
    assert "2001:db8::5/64" in check.detail and "fe80" not in check.detail
    assert "ip addr flush dev enp3s0" in check.fix
    host.route("enp3s0", "0001A8C0", "00000000", "00FFFFFF")  # 192.168.1.0/24 on it
    assert "192.168.1.0/24" in preflight("enp3s0", host.root).check("addresses").detail


def test_unknown_and_virtual_targets_explain_themselves(host: FakeHost) -> None:
    host.virtual_interface("br0")
    for target, words in (("br0", "not a PCI NIC"), ("nope0", "no network interface"),
                          ("0000:09:00.0", "no PCI device")):
        report = preflight(target, host.root)
        assert not report.ok and words in report.check("device").detail
    with pytest.raises(LabError, match="not a PCI address"):
        normalize_bdf("3:0.0")


def test_fragments_for_qemu_and_libvirt() -> None:
    assert qemu_args("03:00.0") == ["-device", "vfio-pci,host=0000:03:00.0"]
    assert hostdev_xml("0000:0a:1f.3") == (
        '<hostdev mode="subsystem" type="pci" managed="yes">\n'
        "  <source>\n"
        '    <address domain="0x0000" bus="0x0a" slot="0x1f" function="0x3" />\n'
        "  </source>\n"
        "</hostdev>\n")


def _cli(argv: list[str]) -> int:
    """`lanalab passthrough ...` through the command's own register() (as lab.cli wires it)."""
    import argparse

    parser = argparse.ArgumentParser(prog="lanalab")
    passthrough_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_check_prints_the_verdict_and_fragments(host: FakeHost,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["passthrough", "check", "enp3s0", "--root", str(host.root)]) == 0
    out = capsys.readouterr().out
    assert "verdict: 0000:03:00.0 (enp3s0) can be passed through" in out
    assert "-device vfio-pci,host=0000:03:00.0" in out and "<hostdev" in out
    assert _cli(["passthrough", "check", "eth0", "--root", str(host.root), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and {"name": "default route"}.items() <= next(
        c for c in data["checks"] if c["name"] == "default route").items()


def test_this_machine_has_no_iommu_and_nothing_is_touched() -> None:
    """The real host (no IOMMU here): the preflight only reads, and says so for eth0."""
    if not Path("/sys/class/net/eth0").exists():
        pytest.skip("no eth0 on this host")
    before = os.listdir("/sys/class/net")
    report = preflight("eth0")
    assert not report.ok
    from lab.passthrough.sysfs import HostView

    if "eth0" in HostView("/").default_route_interfaces():
        assert report.check("default route").status == "fail"
    assert os.listdir("/sys/class/net") == before
