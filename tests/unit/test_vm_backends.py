"""Backend selection (lab.vm.backends) and the libvirt VM's XML, without starting anything."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from lab.errors import BackendError
from lab.runstate import RunRecord
from lab.vm.backends import backend_name, libvirt_uri, make_vm
from lab.vm.image import ImageFolder
from lab.vm.kvm import AccelVerdict
from lab.vm.libvirt_backend import BridgeNic, LibvirtVM
from lab.vm.qemu import QemuVM
from lab.vm.qemu_argv import Nic, stable_mac

IMAGE = ImageFolder(Path("/img"), Path("/img/vmlinuz"), Path("/img/initrd.img"),
                    Path("/img/rootfs.qcow2"), {}, "console=ttyS0 root=/dev/vda")


@pytest.fixture
def run(tmp_path: Path) -> RunRecord:
    return RunRecord("lab1234", tmp_path)  # a record that is never written to here


def test_backend_name_from_argument_env_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANALAB_BACKEND", raising=False)
    assert backend_name(None) == "qemu"
    monkeypatch.setenv("LANALAB_BACKEND", "libvirt")
    assert backend_name(None) == "libvirt" and backend_name("qemu") == "qemu"
    with pytest.raises(BackendError, match="unknown VM backend `xen`"):
        backend_name("xen")
    monkeypatch.setenv("LANALAB_LIBVIRT_URI", "qemu+ssh://hv2/system")
    assert libvirt_uri(None) == "qemu+ssh://hv2/system"
    assert libvirt_uri("qemu:///system") == "qemu:///system"


def test_make_vm_builds_either_backend(run: RunRecord) -> None:
    nics = [Nic(tap="lab1234-t0", model="e1000e")]
    assert isinstance(make_vm("qemu", "h1", IMAGE, run, nics=nics), QemuVM)
    vm = make_vm("libvirt", "h1", IMAGE, run, nics=nics, uri="qemu+ssh://hv2/system",
                 hostdevs=["03:00.0"])
    assert isinstance(vm, LibvirtVM) and vm.uri == "qemu+ssh://hv2/system"
    with pytest.raises(BackendError, match="passthrough is wired for the libvirt backend"):
        make_vm("qemu", "h1", IMAGE, run, hostdevs=["03:00.0"])


def test_instruction_clock_reaches_qemu_and_is_refused_for_libvirt(run: RunRecord) -> None:
    clock = AccelVerdict("tcg", "test", "forced", icount_shift=0)
    vm = make_vm("qemu", "h1", IMAGE, run, accel=clock)
    argv = vm.argv()  # type: ignore[attr-defined]
    assert argv[argv.index("-icount") + 1] == "shift=0,sleep=on"
    assert "-icount" not in AccelVerdict("tcg", "test", "forced").qemu_args()
    assert "-icount" not in replace(clock, accel="kvm").qemu_args()  # KVM: no such clock
    assert "instruction clock" in clock.describe()
    with pytest.raises(BackendError, match="needs the qemu backend"):
        make_vm("libvirt", "h1", IMAGE, run, accel=clock)


def test_libvirt_vm_xml_names_taps_bridges_and_hostdevs(run: RunRecord) -> None:
    vm = LibvirtVM("h1", IMAGE, run, hostdevs=["0000:03:00.0"],
                   nics=[Nic(tap="lab1234-t0", model="e1000e"), Nic(model="virtio", create=True),
                         BridgeNic(bridge="lab1234-s1")])
    dom = ET.fromstring(vm.xml())
    assert dom.findtext("name") == "lab1234-h1" and dom.get("type") == "qemu"
    ifaces = dom.findall("devices/interface")
    assert [i.get("type") for i in ifaces] == ["ethernet", "ethernet", "bridge"]
    assert ifaces[0].find("target").get("dev") == "lab1234-t0"  # type: ignore[union-attr]
    assert ifaces[1].find("target").get("dev").startswith("lab1234-")  # type: ignore[union-attr]
    assert ifaces[2].find("source").get("bridge") == "lab1234-s1"  # type: ignore[union-attr]
    macs = [i.find("mac").get("address") for i in ifaces]  # type: ignore[union-attr]
    assert macs == [stable_mac("h1", i) for i in range(3)]
    address = dom.find("devices/hostdev/source/address")
    assert address is not None and address.get("bus") == "0x03"
    assert dom.find("devices/disk/source").get("file") == str(run.folder / "h1.qcow2")  # type: ignore[union-attr]


def test_nic_without_tap_is_refused(run: RunRecord) -> None:
    with pytest.raises(BackendError, match="NIC 0 has no tap"):
        LibvirtVM("h1", IMAGE, run, nics=[Nic(model="virtio")])
    with pytest.raises(BackendError, match="names no bridge"):
        LibvirtVM("h1", IMAGE, run, nics=[BridgeNic()])
