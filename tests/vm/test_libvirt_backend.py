"""The libvirt backend against the real image: one transient domain under qemu:///system
with TCG (domain type 'qemu'), a virtio and an e1000e NIC on lab taps, the share at /lab.
libvirtd is started by the test's run when it is not running, and stopped again by that
run's cleanup; a daemon that was already running is left alone. Tests that end the VM
come last."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from lab.runstate import RunRecord, clean, process_matches, process_starttime
from lab.vm.backends import agent_for, make_vm
from lab.vm.image import GuestImage, ImageFolder
from lab.vm.libvirt_backend import LibvirtVM
from lab.vm.libvirtd import daemon_running
from lab.vm.qemu_argv import Nic, stable_mac

pytestmark = [pytest.mark.vm, pytest.mark.serial]  # starts and stops libvirtd

libvirt = pytest.importorskip("libvirt")
URI = "qemu:///system"


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lvshare")
    (folder / "hello.txt").write_text("from the host\n")
    return folder


@pytest.fixture(scope="module")
def daemon_was_running() -> bool:
    return daemon_running()


@pytest.fixture(scope="module")
def vm(vm_image: GuestImage, share: Path, daemon_was_running: bool) -> Iterator[LibvirtVM]:
    run = RunRecord.create()
    guest = make_vm("libvirt", "lv1", vm_image, run, share=share,
                    nics=[Nic(model="virtio", create=True), Nic(model="e1000e", create=True)])
    assert isinstance(guest, LibvirtVM)
    try:
        guest.start()
        guest.wait_ready(240)
        yield guest
    finally:
        guest.stop()
        clean(run.id)


def _link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def _domain_names() -> list[str]:
    conn = libvirt.open(URI)
    try:
        return [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()


def test_boots_as_a_transient_tcg_domain(vm: LibvirtVM, daemon_was_running: bool) -> None:
    assert vm.boot_seconds is not None and 0 < vm.boot_seconds < 240
    assert vm.daemon is not None and vm.daemon.started_by_lab == (not daemon_was_running)
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(vm.domain_name)
        assert dom.isActive() and not dom.isPersistent()
        live = dom.XMLDesc(0)
        assert "<domain type='qemu'" in live  # TCG here: /dev/kvm does not work
        assert "type='network'" not in live  # never libvirt's NAT network
        nets = {n.name(): n.isActive() for n in conn.listAllNetworks()}
        assert not any(nets.values()), f"a libvirt network is running: {nets}"
    finally:
        conn.close()
    assert vm.pid is not None and Path(f"/proc/{vm.pid}").exists()  # qemu, recorded
    kinds = {(e["kind"], e.get("name")) for e in vm.run.resources()}
    assert ("libvirt-domain", vm.domain_name) in kinds


def test_exec_through_the_agent(vm: LibvirtVM) -> None:
    result = vm.exec("echo out; echo err >&2; exit 7")
    assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 7)
    assert vm.exec(["hostname"]).stdout.strip() == "lv1"
    assert vm.exec(["cat"], input=b"piped\n").stdout == "piped\n"


def test_files_and_share(vm: LibvirtVM, share: Path) -> None:
    data = os.urandom(100_000)
    vm.put_file("/tmp/blob", data)
    assert vm.get_file("/tmp/blob") == data
    assert vm.exec(["cat", "/lab/hello.txt"]).stdout == "from the host\n"
    vm.exec("echo back > /lab/back.txt", check=True)
    assert (share / "back.txt").read_text() == "back\n"


def test_another_process_reaches_the_agent_from_the_description(vm: LibvirtVM) -> None:
    """What `lanalab exec` does on a running lab: only lab.json's description is known."""
    desc = vm.describe()
    assert desc["backend"] == "libvirt" and desc["uri"] == URI
    code = ("import json,sys; from lab.vm.backends import agent_for; "
            "a = agent_for(json.loads(sys.argv[1])); "
            "print(a.exec(['cat', '/proc/sys/kernel/hostname']).stdout, end='')")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(desc)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.stdout == "lv1\n", done.stderr
    assert agent_for(desc).exec(["true"]).exit_code == 0  # and this process still can


def test_e1000e_nic_is_driven_by_e1000e_both_ways(vm: LibvirtVM) -> None:
    out = vm.exec("for i in /sys/class/net/eth*; do echo ${i##*/} "
                  "$(basename $(readlink $i/device/driver)) $(cat $i/address); done").stdout
    drivers = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert drivers["eth0"] == ["virtio_net", stable_mac("lv1", 0)]
    assert drivers["eth1"] == ["e1000e", stable_mac("lv1", 1)]
    tap = vm.nics[1].tap
    assert tap is not None and _link_exists(tap)
    vm.exec("ip link set eth1 up", check=True)
    # guest -> host: frames sent by the guest's e1000e driver arrive on the lab's tap
    rx_before = int(Path(f"/sys/class/net/{tap}/statistics/rx_packets").read_text())
    send = ("import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
            "s.bind(('eth1', 0)); "
            "[s.send(b'\\xff' * 6 + bytes.fromhex('02aabbccddee') + b'\\x88\\xb5' + b'x' * 50)"
            " for _ in range(5)]")
    vm.exec(["python3", "-c", send], check=True)
    _wait_for(lambda: int(Path(f"/sys/class/net/{tap}/statistics/rx_packets").read_text())
              >= rx_before + 5, "5 guest frames on the tap")
    # host -> guest: frames written to the tap are received by the guest's e1000e driver
    rx_path = "/sys/class/net/eth1/statistics/rx_packets"
    guest_before = int(vm.exec(["cat", rx_path]).stdout)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((tap, 0))
        frame = bytes.fromhex(stable_mac("lv1", 1).replace(":", "")) + \
            bytes.fromhex("02aabbccddee") + b"\x88\xb5" + b"y" * 50
        for _ in range(5):
            s.send(frame)
    _wait_for(lambda: int(vm.exec(["cat", rx_path]).stdout) >= guest_before + 5,
              "5 host frames in the guest")


def _wait_for(condition, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_console_is_logged_and_clean(vm: LibvirtVM) -> None:
    assert vm.console.contains("lanalab: guest ready")
    vm.check_console()


# qemu+unix:// goes through libvirt's remote driver, as qemu+ssh://host/system would: the
# lab treats it as another host (no local image checks, no daemon start, no pid records)
CRASHER = """
import sys, time
from lab.runstate import RunRecord
from lab.vm.image import find_image
from lab.vm.libvirt_backend import LibvirtVM, Nic
run = RunRecord.create()
vm = LibvirtVM("lvcrash", find_image(), run, nics=[Nic(model="e1000e", create=True)],
               uri="qemu+unix:///system")
vm.start()
print(run.id, vm.domain_name, vm.nics[0].tap, vm.pid, flush=True)
time.sleep(600)
"""


def test_kill_9_of_the_lab_leaves_nothing_after_clean(vm: LibvirtVM, vm_image: GuestImage) -> None:
    """A lab process killed right after creating its domain (through the remote driver):
    `clean` removes the domain, its qemu and the tap. The daemon (already running now) is
    not the crashed run's."""
    env = {**os.environ, "LANALAB_IMAGE_DIR": str(Path(vm_image.kernel).parent)}
    proc = subprocess.Popen([sys.executable, "-c", CRASHER], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    run_id, domain, tap, _ = proc.stdout.readline().split()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert domain in _domain_names() and _link_exists(tap)
    qemu_pid = int(Path(f"/run/libvirt/qemu/{domain}.pid").read_text())
    report = clean(run_id)
    assert report.ok, report.errors
    assert domain not in _domain_names()
    assert not _link_exists(tap)
    assert process_starttime(qemu_pid) is None
    # a remote host keeps libvirt's log of the domain: here that host is this one
    Path(f"/var/log/libvirt/qemu/{domain}.log").unlink(missing_ok=True)


def test_boot_panic_is_reported_with_the_console(panicking_image: ImageFolder) -> None:
    """A junk initrd: the kernel panics, the domain ends (panic=-1 reboots, on_reboot is
    destroy), and wait_ready raises the panic with its trace."""
    from lab.errors import GuestKernelError

    run = RunRecord.create()
    guest = LibvirtVM("lvbroken", panicking_image, run)
    try:
        guest.start()
        with pytest.raises(GuestKernelError) as err:
            guest.wait_ready(120)
        assert err.value.headline.startswith("Kernel panic")
    finally:
        guest.stop()
        assert clean(run.id).ok
    # run alone, this run started libvirtd and clean stopped it: no daemon, no domain
    assert not daemon_running() or guest.domain_name not in _domain_names()


def test_stop_and_clean_leave_no_domain_tap_or_daemon(vm: LibvirtVM,
                                                      daemon_was_running: bool) -> None:
    pid, taps = vm.pid, [nic.tap for nic in vm.nics]
    took = vm.stop()
    assert took < 20
    assert vm.domain_name not in _domain_names()
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    assert not any(_link_exists(tap) for tap in taps if tap)
    assert not vm.files.overlay.exists()
    daemon = next((e for e in vm.run.resources()
                   if e["kind"] == "process" and e.get("argv0") == "libvirtd"), None)
    assert (daemon is not None) == (not daemon_was_running)  # recorded only if we started it
    report = clean(vm.run.id)
    # a run that started libvirtd needs lab.runstate to remove domains before processes
    assert report.ok, f"{report.errors} (lab.runstate must clean libvirt-domain records " \
        "before process records, or the daemon is gone first)"
    if daemon is not None:  # the run started libvirtd: its cleanup stopped it again
        assert not process_matches(daemon["pid"], daemon["starttime"])
        assert not daemon_running()
    else:
        assert daemon_running()
