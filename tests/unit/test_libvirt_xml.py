"""Golden files for the libvirt domain XML (passthrough included), checked against
libvirt's own schema. Regenerate after an intended change with
    LANALAB_REGEN_GOLDEN=1 .venv/bin/pytest tests/unit/test_libvirt_xml.py
and review the diff of tests/golden/ before committing it."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.errors import BackendError
from lab.passthrough import hostdev_element
from lab.vm.libvirt_xml import DomainNic, DomainSpec, domain_xml

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
RUN = Path("/run/lanalab/lab1234")
CMDLINE = "console=ttyS0,115200 root=/dev/vda rw net.ifnames=0 panic=-1 quiet loglevel=4"


def _spec(**kw: object) -> DomainSpec:
    args: dict[str, object] = dict(
        name="lab1234-h1", vm_name="h1", kernel=Path("/img/vmlinuz"),
        initrd=Path("/img/initrd.img"), cmdline=CMDLINE, overlay=RUN / "h1.qcow2",
        console_log=RUN / "h1.console.log", qga_socket=RUN / "h1.qga.sock",
        title="LANA lab VM h1 (run lab1234)")
    args.update(kw)
    return DomainSpec(**args)  # type: ignore[arg-type]


CASES = {
    # TCG, a virtio and an e1000e NIC on the lab's taps, the 9p share
    "libvirt-tcg-taps-share.xml": _spec(
        nics=[DomainNic("virtio", "02:00:00:00:00:01", "lab1234-h1n0"),
              DomainNic("e1000e", "02:00:00:00:00:02", "lab1234-h1n1")],
        share=Path("/work/main")),
    # KVM, bigger VM, a NIC that libvirt plugs into a lab bridge itself
    "libvirt-kvm-bridge.xml": _spec(
        accel="kvm", memory_mb=1024, cpus=2,
        nics=[DomainNic("e1000e", "02:00:00:00:00:03", "lab1234-h1n0", bridge="lab1234-s1")]),
    # a real e1000e passed through next to an emulated one
    "libvirt-passthrough.xml": _spec(
        nics=[DomainNic("e1000e", "02:00:00:00:00:04", "lab1234-h1n0")],
        hostdevs=[hostdev_element("0000:03:00.0")]),
}


def _compare_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LANALAB_REGEN_GOLDEN") == "1":
        path.write_text(text)
        return
    assert path.is_file(), f"{path} is missing: run with LANALAB_REGEN_GOLDEN=1 once"
    assert text == path.read_text(), f"{name} differs from the golden file; if intended, " \
        "regenerate with LANALAB_REGEN_GOLDEN=1 and review the diff"


@pytest.mark.parametrize("name", sorted(CASES))
def test_domain_xml_matches_golden(name: str) -> None:
    _compare_golden(name, domain_xml(CASES[name]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_domain_xml_is_valid_for_libvirt(name: str, tmp_path: Path) -> None:
    if shutil.which("virt-xml-validate") is None:
        pytest.skip("virt-xml-validate (libvirt-clients) is not installed")
    path = tmp_path / name
    path.write_text(domain_xml(CASES[name]))
    done = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_domain_carries_what_the_runtime_relies_on() -> None:
    dom = ET.fromstring(domain_xml(CASES["libvirt-tcg-taps-share.xml"]))
    assert dom.get("type") == "qemu"  # TCG
    assert dom.findtext("os/cmdline", "").endswith("loglevel=4 loglevel=5 lana.hostname=h1")
    channel = dom.find("devices/channel")
    assert channel is not None
    assert channel.find("target").get("name") == "org.qemu.guest_agent.0"  # type: ignore[union-attr]
    assert channel.find("source").get("path") == str(RUN / "h1.qga.sock")  # type: ignore[union-attr]
    assert dom.find("devices/serial/source").get("path") == str(RUN / "h1.console.log")  # type: ignore[union-attr]
    targets = [t.attrib for t in dom.findall("devices/interface/target")]
    assert targets == [{"dev": "lab1234-h1n0", "managed": "no"},
                       {"dev": "lab1234-h1n1", "managed": "no"}]
    assert [r.get("enabled") for r in dom.findall("devices/interface/rom")] == ["no", "no"]
    assert dom.findtext("on_reboot") == "destroy"
    assert dom.find("seclabel").get("relabel") == "no"  # type: ignore[union-attr]
    # never libvirt's NAT network: only the lab's taps and bridges
    assert not dom.findall("devices/interface[@type='network']")


def test_bad_nic_is_refused_with_a_hint() -> None:
    with pytest.raises(BackendError, match="neither a tap nor a bridge"):
        domain_xml(_spec(nics=[DomainNic("virtio", "02:00:00:00:00:01")]))
    with pytest.raises(BackendError, match="not supported"):
        domain_xml(_spec(nics=[DomainNic("rtl8139", "02:00:00:00:00:01", "t0")]))
