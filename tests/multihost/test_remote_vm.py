"""One LANA VM on a remote hypervisor of the one-machine testbed (lab/multihost/testbed.py),
reached only through hv2's libvirt URI, its NIC on a lab bridge inside hv2, and a frame path
from hv1 across the VXLAN underlay to it. Tests run in file order; the fault test ends the
VM and comes last.

Addresses stay inside the testbed's namespaces: the lab link is 10.0.0.0/24 (hv1's bridge
10.0.0.100, the guest 10.0.0.1), the underlay the testbed's 203.0.113.0/24."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.multihost.hostnet import (
    add_bridge,
    add_vxlan,
    link_counters,
    link_exists,
    vnis_in_use,
)
from lab.multihost.hostshell import NetnsShell
from lab.multihost.testbed import TwoHostTestbed
from lab.multihost.vxlan import (
    CROSSING_MTU,
    VNI_FIRST,
    VNI_LAST,
    device_name,
    pick_vni,
    tunnel_end,
)
from lab.polling import poll
from lab.runstate import RunRecord, clean, process_state
from lab.vm.libvirt_backend import BridgeNic, LibvirtVM
from lab.vm.libvirt_conn import SILENT_HOST_S

pytestmark = [pytest.mark.root, pytest.mark.vm, pytest.mark.serial, pytest.mark.slow]

libvirt = pytest.importorskip("libvirt")

BOOT_TIMEOUT_S = 240.0  # TCG on a loaded 2-core machine
AGENT_FAIL_TIMEOUT_S = 10.0  # a dead hypervisor daemon must fail an agent call within this
PINGS = 5
SPARE_SUBNET = "198.51.100.24/29"  # a second testbed's management links, beside the first
GUEST_ADDR, HV1_ADDR = "10.0.0.1", "10.0.0.100"


@dataclass
class RemoteLab:
    testbed: TwoHostTestbed
    run: RunRecord  # replaced by the fault test's run, so the fixture cleans that one
    vm: LibvirtVM
    hv1: NetnsShell
    hv2: NetnsShell
    bridges: dict[str, str]  # host -> bridge name
    vxlan: str
    vni: int


def virsh_names(uri: str, timeout: float = 30.0) -> list[str]:
    done = subprocess.run(["virsh", "-c", uri, "list", "--all", "--name"], capture_output=True,
                          text=True, timeout=timeout, check=True)
    return done.stdout.split()


def teardown(lab: RemoteLab) -> list[str]:
    """The lab's cleanup: the VM, then what the run recorded, on every host."""
    errors: list[str] = []
    try:
        lab.vm.stop()
    except LabError as exc:
        errors.append(str(exc))
    return errors + clean(lab.run.id).errors


@pytest.fixture(scope="module")
def testbed() -> Iterator[TwoHostTestbed]:
    start = time.monotonic()
    with TwoHostTestbed() as tb:
        print(f"testbed up in {time.monotonic() - start:.2f} s")
        yield tb


@pytest.fixture(scope="module")
def lab(testbed: TwoHostTestbed) -> Iterator[RemoteLab]:
    from lab.image.build import ensure_image

    image = ensure_image(progress=lambda _msg: None)
    run = RunRecord.create()
    hv1h, hv2h = testbed.hosts[1], testbed.hosts[2]
    hv1, hv2 = NetnsShell("hv1", hv1h.netns), NetnsShell("hv2", hv2h.netns)
    bridge = run.ifname("s0")  # the Fabric's name of switch 0, made on each host
    vm = LibvirtVM("rvm1", image, run, nics=[BridgeNic(bridge=bridge, model="virtio")],
                   uri=hv2h.uri)
    taken = vnis_in_use(hv1) | vnis_in_use(hv2)
    lab = RemoteLab(testbed, run, vm, hv1, hv2, {"hv1": bridge, "hv2": bridge},
                    device_name(run.id, 0), pick_vni(run.id, 0, taken))
    try:
        add_bridge(run, hv2, bridge)
        start = time.monotonic()
        vm.start()
        vm.wait_ready(BOOT_TIMEOUT_S)
        print(f"vm on hv2 ready {vm.boot_seconds:.1f} s after creation "
              f"({time.monotonic() - start:.1f} s with the overlay)")
        yield lab
    finally:
        errors = teardown(lab)
        assert not errors, errors


def test_domain_is_on_hv2_only(lab: RemoteLab) -> None:
    hv1, hv2 = lab.testbed.hosts[1], lab.testbed.hosts[2]
    assert lab.vm.domain_name in virsh_names(hv2.uri)
    assert lab.vm.domain_name not in virsh_names(hv1.uri)
    recorded = [e for e in lab.run.resources() if e["kind"] == "libvirt-domain"]
    assert recorded == [{"kind": "libvirt-domain", "name": lab.vm.domain_name, "uri": hv2.uri}]
    # no local libvirtd was started or needed for the remote URI
    assert lab.vm.daemon is not None and not lab.vm.daemon.started_by_lab


def test_nic_is_on_the_bridge_inside_hv2(lab: RemoteLab) -> None:
    tap = lab.vm.nics[0].tap
    assert tap is not None
    master = lab.hv2.out(["cat", f"/sys/class/net/{tap}/master/uevent"])
    assert f"INTERFACE={lab.bridges['hv2']}" in master
    # neither the tap nor the bridge exists in the root namespace
    root = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True,
                          check=True).stdout
    assert f'"{tap}"' not in root and f'"{lab.bridges["hv2"]}"' not in root
    bridges = [e for e in lab.run.resources() if e.get("ifname") == lab.bridges["hv2"]]
    assert bridges and bridges[0]["host"] == "hv2" and bridges[0]["netns"] == lab.hv2.netns


def test_guest_exec_and_lana(lab: RemoteLab) -> None:
    release = lab.vm.exec(["uname", "-r"], check=True).stdout.strip()
    assert release == lab.vm.image.manifest["kernel_release"]  # the lab's image booted
    fblocks = lab.vm.exec("modprobe lana && cat /proc/net/lana/fblocks", check=True)
    assert fblocks.exit_code == 0
    assert lab.vm.exec("test -d /proc/net/lana").exit_code == 0


def test_ping_across_vxlan(lab: RemoteLab) -> None:
    tb = lab.testbed
    hv1h, hv2h = tb.hosts[1], tb.hosts[2]
    assert VNI_FIRST <= lab.vni <= VNI_LAST
    run = lab.run
    add_bridge(run, lab.hv1, lab.bridges["hv1"])
    ends = {
        "hv1": tunnel_end("hv1", hv1h.underlay_addr, [hv2h.underlay_addr], lab.vxlan, lab.vni,
                    lab.bridges["hv1"]),
        "hv2": tunnel_end("hv2", hv2h.underlay_addr, [hv1h.underlay_addr], lab.vxlan, lab.vni,
                    lab.bridges["hv2"]),
    }
    add_vxlan(run, lab.hv1, lab.vxlan, ends["hv1"])
    add_vxlan(run, lab.hv2, lab.vxlan, ends["hv2"])
    for shell in (lab.hv1, lab.hv2):
        shown = shell.out(["ip", "-d", "link", "show", "dev", lab.vxlan])
        assert f"vxlan id {lab.vni}" in shown and f"mtu {CROSSING_MTU}" in shown
    hv1_mac = lab.hv1.out(["cat", f"/sys/class/net/{lab.bridges['hv1']}/address"]).strip()
    guest_mac = lab.vm.nics[0].mac
    assert guest_mac
    lab.hv1.run(["ip", "addr", "add", f"{HV1_ADDR}/24", "dev", lab.bridges["hv1"]])
    # static neighbours and no guest IPv6: the only frames on the link are the pings, so
    # the VXLAN counters must grow by exactly their number
    lab.hv1.run(["ip", "neigh", "replace", GUEST_ADDR, "lladdr", guest_mac, "dev",
                 lab.bridges["hv1"], "nud", "permanent"])
    lab.vm.exec(f"sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 && "
                f"ip link set eth0 mtu {CROSSING_MTU} up && "
                f"ip addr add {GUEST_ADDR}/24 dev eth0 && "
                f"ip neigh replace {HV1_ADDR} lladdr {hv1_mac} dev eth0 nud permanent",
                check=True)
    # the guest's link comes up after its carrier: the first ping proves the path
    assert poll(lambda: lab.hv1.run(["ping", "-n", "-q", "-c", "1", "-W", "1", GUEST_ADDR],
                                    check=False).returncode == 0, 30.0, 0.2), \
        "hv1 cannot reach the guest on hv2 across the VXLAN link"
    before = {h: link_counters(s, lab.vxlan) for h, s in (("hv1", lab.hv1), ("hv2", lab.hv2))}
    ping = lab.hv1.out(["ping", "-n", "-c", str(PINGS), "-i", "0.2", "-W", "2", GUEST_ADDR])
    after = {h: link_counters(s, lab.vxlan) for h, s in (("hv1", lab.hv1), ("hv2", lab.hv2))}
    grew = {h: {k: after[h][k] - before[h][k] for k in ("tx_packets", "rx_packets")}
            for h in after}
    rtt = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)", ping)
    print(f"ping across VXLAN: {PINGS} echoes, rtt min/avg/max {rtt.groups() if rtt else '?'} "
          f"ms; counters grew {grew}")
    assert f"{PINGS} received" in ping, ping
    assert grew == {"hv1": {"tx_packets": PINGS, "rx_packets": PINGS},
                    "hv2": {"tx_packets": PINGS, "rx_packets": PINGS}}


def test_teardown_leaves_nothing(lab: RemoteLab) -> None:
    """The lab's own cleanup, run here (the fixture's then finds nothing to do)."""
    tb = lab.testbed
    hv2uri = tb.hosts[2].uri
    run = lab.run
    overlay = lab.vm.files.overlay
    links = [(e["host"], e["ifname"]) for e in run.resources() if "host" in e]
    assert len(links) == 4  # a bridge and a vxlan device on each host
    start = time.monotonic()
    errors = teardown(lab)
    print(f"teardown took {time.monotonic() - start:.2f} s")
    assert errors == []
    assert lab.vm.domain_name not in virsh_names(hv2uri)
    assert not overlay.exists() and not run.folder.exists()
    shells = {"hv1": lab.hv1, "hv2": lab.hv2}
    assert [(h, n) for h, n in links if link_exists(shells[h], n)] == []
    assert clean(run.id).already_gone == [f"run {run.id}"]


def another_vm_on_hv2(lab: RemoteLab, name: str) -> tuple[RunRecord, LibvirtVM]:
    """A fresh run with one VM booted on hv2 (on a bridge there), which becomes the one
    the module's fixture cleans."""
    from lab.image.build import ensure_image

    run = RunRecord.create()
    lab.run = run
    bridge = run.ifname("s0")
    vm = LibvirtVM(name, ensure_image(progress=lambda _m: None), run,
                   nics=[BridgeNic(bridge=bridge, model="virtio")], uri=lab.testbed.hosts[2].uri)
    lab.vm = vm
    add_bridge(run, lab.hv2, bridge)
    vm.start()
    vm.wait_ready(BOOT_TIMEOUT_S)
    assert vm.exec(["true"]).exit_code == 0
    return run, vm


def test_silent_hypervisor_fails_within_keepalive(testbed: TwoHostTestbed,
                                                  lab: RemoteLab) -> None:
    """hv2 stops answering without a word (packets to its libvirtd dropped, no RST): the
    next agent call fails within libvirt's keepalive time, not TCP's minutes; once hv2
    answers again, cleanup removes the domain."""
    hv2 = testbed.hosts[2]
    run, vm = another_vm_on_hv2(lab, "rvm3")
    testbed.silence_libvirtd(2)
    try:
        start = time.monotonic()
        with pytest.raises(LabError) as err:
            vm.exec(["uname", "-r"], timeout=5)
        took = time.monotonic() - start
        print(f"agent call on a silent host failed after {took:.1f} s: {err.value}")
        assert took < SILENT_HOST_S + 10
        assert f"lost the connection to libvirt at {hv2.uri}" in str(err.value)
    finally:
        testbed.unsilence_libvirtd(2)
    report = clean(run.id)
    assert report.errors == [], report.errors
    assert poll(lambda: vm.domain_name not in virsh_names(hv2.uri), 30.0, 0.2)


def test_dead_hypervisor_fails_fast_and_cleans_after_restart(testbed: TwoHostTestbed,
                                                            lab: RemoteLab) -> None:
    """SIGKILL hv2's libvirtd under a running VM: the next agent call fails with a clear
    error within AGENT_FAIL_TIMEOUT_S; after restart_libvirtd the cleanup removes the
    domain (its qemu outlived the daemon)."""
    hv2 = testbed.hosts[2]
    run, vm = another_vm_on_hv2(lab, "rvm2")
    bridge = run.ifname("s0")
    testbed.kill_libvirtd(2)
    try:
        start = time.monotonic()
        with pytest.raises(LabError) as err:
            vm.exec(["uname", "-r"], timeout=AGENT_FAIL_TIMEOUT_S)
        took = time.monotonic() - start
        print(f"agent call failed {took:.2f} s after the daemon died: {err.value}")
        assert took < AGENT_FAIL_TIMEOUT_S
        assert "rvm2" in str(err.value) and f"lost the connection to libvirt at {hv2.uri}" \
            in str(err.value)
    finally:
        # also when an assertion failed: without its daemon, the domain's qemu would
        # outlive the testbed
        testbed.restart_libvirtd(2)
    # the restarted daemon finds the running domain again
    assert poll(lambda: vm.domain_name in virsh_names(hv2.uri), 30.0, 0.2)
    report = clean(run.id)
    assert report.errors == [], report.errors
    assert poll(lambda: vm.domain_name not in virsh_names(hv2.uri), 30.0, 0.2)
    assert not link_exists(lab.hv2, bridge)


def test_a_testbed_that_goes_takes_its_vms_and_cleanup_stays_home(lab: RemoteLab) -> None:
    """A second testbed goes while a VM runs on it: its qemu ends with it, and the run's
    cleanup afterwards finds the domain and volumes gone without a packet to the vanished
    address (which now routes through the uplink: lab.vm.libvirt_conn.check_route)."""
    from lab.image.build import ensure_image
    from lab.vm.libvirt_conn import HostGoneError, check_route

    with TwoHostTestbed(mgmt_subnet=SPARE_SUBNET) as other:
        hv2 = other.hosts[2]
        run = RunRecord.create()
        bridge = run.ifname("s0")
        vm = LibvirtVM("rvm4", ensure_image(progress=lambda _m: None), run,
                       nics=[BridgeNic(bridge=bridge, model="virtio")], uri=hv2.uri)
        add_bridge(run, NetnsShell("hv2", hv2.netns), bridge)
        vm.start()
        pid_file = Path(hv2.folder) / "run" / "qemu" / f"{vm.domain_name}.pid"
        qemu = int(pid_file.read_text())  # hv2's libvirtd wrote it in hv2's /run/libvirt
        report = other.stop()
        assert report.ok, report.errors
        assert any(f"qemu of domain {vm.domain_name}" in r for r in report.removed)
    assert process_state(qemu) in (None, "Z")  # ended (a zombie until its parent reaps it)
    with pytest.raises(HostGoneError, match="no lab link reaches it now"):
        check_route(hv2.uri)
    start = time.monotonic()
    vm.stop()  # nothing of it is left to end: stop() must say so quickly
    assert time.monotonic() - start < AGENT_FAIL_TIMEOUT_S
    cleaned = clean(run.id)
    assert cleaned.errors == [], cleaned.errors
    assert f"libvirt-domain name={vm.domain_name} uri={hv2.uri}" in cleaned.already_gone
