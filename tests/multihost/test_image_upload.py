"""The guest image reaches a remote hypervisor of the one-machine testbed
(lab/multihost/testbed.py) through its libvirt URI only, verified by digest
(lab/multihost/images.py), and a LANA VM boots there from it.

In the testbed /var/lib/libvirt is a private bind mount of each host's daemon, so the pool
`lanalab` of hv2 is really hv2's: the uploaded files are looked at inside that daemon's mount
namespace (nsenter) and are absent from this one. Tests run in file order: the pushes, the
damaged volumes, the VM, then the dead daemon."""

from __future__ import annotations

import os
import subprocess
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from lab.errors import LabError
from lab.image.manifest import sha256_file
from lab.multihost.hostnet import add_bridge, link_exists
from lab.multihost.hostshell import NetnsShell
from lab.multihost.images import (
    CONNECT_TIMEOUT_S,
    LIBVIRT_TCP_PORT,
    POOL_NAME,
    create_run_volume,
    ensure_pool,
    image_files,
    open_host,
    push_image,
    stamp_name,
    volume_xml,
)
from lab.multihost.testbed import TwoHostTestbed
from lab.polling import poll
from lab.runstate import RunRecord, clean
from lab.vm.libvirt_backend import BridgeNic, LibvirtVM

pytestmark = [pytest.mark.root, pytest.mark.vm, pytest.mark.serial, pytest.mark.slow]

libvirt = pytest.importorskip("libvirt")

BOOT_TIMEOUT_S = 240.0  # TCG on a loaded 2-core machine
# an unreachable host must fail a push within this: the TCP probe's timeout, plus slack
DEAD_HOST_TIMEOUT_S = CONNECT_TIMEOUT_S + 5.0
# TEST-NET-2 but not the testbed's default /29: another test's testbed may be up meanwhile
MGMT_SUBNET = "198.51.100.16/29"


@pytest.fixture(scope="module")
def testbed() -> Iterator[TwoHostTestbed]:
    with TwoHostTestbed(mgmt_subnet=MGMT_SUBNET) as tb:
        yield tb


@pytest.fixture(scope="module")
def image() -> Any:
    from lab.image.build import ensure_image

    return ensure_image(progress=lambda _msg: None)


def virsh(uri: str, *args: str) -> str:
    done = subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout


def pool_volumes(uri: str) -> list[str]:
    lines = virsh(uri, "vol-list", POOL_NAME).splitlines()[2:]  # past the header
    return [line.split()[0] for line in lines if line.strip()]


def in_host(tb: TwoHostTestbed, n: int, *argv: str) -> subprocess.CompletedProcess[str]:
    """argv in hv`n`'s libvirtd mount namespace (where its /var/lib/libvirt is)."""
    pid = tb.hosts[n].pid
    assert pid is not None
    return subprocess.run(["nsenter", "-t", str(pid), "-m", *argv], capture_output=True,
                          text=True, timeout=120, check=False)


def host_sha256(tb: TwoHostTestbed, n: int, path: str) -> str:
    done = in_host(tb, n, "sha256sum", path)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


def test_push_puts_the_files_in_hv2s_own_pool(testbed: TwoHostTestbed, image: Any) -> None:
    hv1, hv2 = testbed.hosts[1], testbed.hosts[2]
    files = image_files(image)
    result = push_image(hv2.uri, image)
    mb = result.bytes_uploaded / 1e6
    print(f"first push: {len(result.uploaded)} volumes, {mb:.1f} MB in {result.seconds:.2f} s "
          f"({mb / max(result.seconds, 1e-6):.0f} MB/s)")
    assert sorted(result.uploaded) == sorted(f.volume for f in files)
    assert result.bytes_uploaded == sum(f.size for f in files)
    listed = pool_volumes(hv2.uri)
    for f in files:
        assert f.volume in listed and stamp_name(f.volume) in listed
    assert POOL_NAME not in virsh(hv1.uri, "pool-list", "--all", "--name").split()
    for f in files:
        path = getattr(result, f.role)
        assert path == f"/var/lib/libvirt/lanalab/{f.volume}"
        # hashed afresh here, not read from the manifest: the host holds the local bytes
        assert host_sha256(testbed, 2, path) == sha256_file(f.path) == f.sha256
        assert not os.path.exists(path), f"{path} is in the root mount namespace"


def test_second_push_uploads_nothing(testbed: TwoHostTestbed, image: Any) -> None:
    hv2 = testbed.hosts[2]
    again = push_image(hv2.uri, image)
    print(f"second push (stamps and sizes): {again.seconds * 1000:.1f} ms")
    assert (again.uploaded, again.replaced, again.bytes_uploaded) == ([], [], 0)
    full = push_image(hv2.uri, image, verify="full")
    print(f"third push (downloaded and hashed): {full.seconds:.2f} s")
    assert (full.uploaded, full.replaced, full.bytes_uploaded) == ([], [], 0)


def test_truncated_volume_is_replaced(testbed: TwoHostTestbed, image: Any) -> None:
    hv2 = testbed.hosts[2]
    initrd = next(f for f in image_files(image) if f.role == "initrd")
    path = f"/var/lib/libvirt/lanalab/{initrd.volume}"
    assert in_host(testbed, 2, "truncate", "-s", str(initrd.size - 4096), path).returncode == 0
    result = push_image(hv2.uri, image, progress=print)
    assert result.uploaded == [initrd.volume]
    assert result.replaced == [f"{initrd.volume}: size {initrd.size - 4096} bytes, expected "
                               f"{initrd.size}"]
    assert host_sha256(testbed, 2, path) == initrd.sha256


def test_corrupted_volume_is_found_by_full_verify(testbed: TwoHostTestbed, image: Any) -> None:
    hv2 = testbed.hosts[2]
    kernel = next(f for f in image_files(image) if f.role == "kernel")
    path = f"/var/lib/libvirt/lanalab/{kernel.volume}"
    offset = kernel.size // 2
    with open(kernel.path, "rb") as f:
        f.seek(offset)
        byte = f.read(1)[0]
    flipped = f"\\{(byte ^ 0xFF):03o}"  # printf's octal escape: same size, other content
    done = in_host(testbed, 2, "sh", "-c",
                   f"printf '{flipped}' | dd of={path} bs=1 seek={offset} conv=notrunc "
                   "status=none")
    assert done.returncode == 0, done.stderr
    assert host_sha256(testbed, 2, path) != kernel.sha256
    # stamp and size are right: the cheap check cannot see a flipped byte
    assert push_image(hv2.uri, image).uploaded == []
    result = push_image(hv2.uri, image, verify="full", progress=print)
    assert result.uploaded == [kernel.volume]
    assert result.replaced and result.replaced[0].startswith(f"{kernel.volume}: sha256 ")
    assert host_sha256(testbed, 2, path) == kernel.sha256


def test_unstamped_volume_is_replaced(testbed: TwoHostTestbed, image: Any) -> None:
    """An upload that died half way leaves a full-size volume without its stamp."""
    hv2 = testbed.hosts[2]
    rootfs = next(f for f in image_files(image) if f.role == "rootfs")
    virsh(hv2.uri, "vol-delete", stamp_name(rootfs.volume), "--pool", POOL_NAME)
    result = push_image(hv2.uri, image)
    assert result.uploaded == [rootfs.volume]
    assert result.replaced == [f"{rootfs.volume}: no stamp (an upload that did not finish)"]
    assert stamp_name(rootfs.volume) in pool_volumes(hv2.uri)
    print(f"rootfs uploaded again: {rootfs.size / 1e6:.1f} MB in {result.seconds:.2f} s")


def test_vm_boots_on_hv2_from_the_pushed_image(testbed: TwoHostTestbed, image: Any) -> None:
    """The domain names host paths only; cleanup from the run record removes the domain and
    the VM's volumes on hv2 and leaves the image volumes (a cache for the next lab)."""
    hv2 = testbed.hosts[2]
    shell = NetnsShell("hv2", hv2.netns)
    run = RunRecord.create()
    bridge = run.ifname("s0")
    vm = LibvirtVM("ivm1", image, run, nics=[BridgeNic(bridge=bridge, model="virtio")],
                   uri=hv2.uri)
    try:
        add_bridge(run, shell, bridge)
        start = time.monotonic()
        vm.start()
        placed = time.monotonic() - start
        vm.wait_ready(BOOT_TIMEOUT_S)
        pushed = vm.remote_image
        assert pushed is not None and pushed.uploaded == []  # the earlier tests sent it
        print(f"vm on hv2: start() {placed:.2f} s (image check {pushed.seconds * 1000:.0f} ms, "
              f"domain creation {vm.create_seconds:.2f} s), ready {vm.boot_seconds:.1f} s "
              "after creation")
        overlay = f"/var/lib/libvirt/lanalab/{run.prefix}-ivm1-overlay.qcow2"
        console = f"/var/lib/libvirt/lanalab/{run.prefix}-ivm1-console.log"
        live = vm._dom.XMLDesc(0)
        for path in (pushed.kernel, pushed.initrd, overlay, console):
            assert path in live
        assert str(run.folder) not in live and "/var/cache/lanalab" not in live
        recorded = [e for e in run.resources() if e["kind"] == "libvirt-volume"]
        assert recorded == [
            {"kind": "libvirt-volume", "uri": hv2.uri, "pool": POOL_NAME, "name": name}
            for name in (f"{run.prefix}-ivm1-overlay.qcow2", f"{run.prefix}-ivm1-console.log")]
        backing = virsh(hv2.uri, "vol-dumpxml", f"{run.prefix}-ivm1-overlay.qcow2",
                        "--pool", POOL_NAME)
        assert f"<path>{pushed.rootfs}</path>" in backing

        release = vm.exec(["uname", "-r"], check=True).stdout.strip()
        assert release == image.manifest["kernel_release"]
        vm.exec("modprobe lana && test -d /proc/net/lana", check=True)
        # the console is read back through libvirt into the run folder
        vm.exec("echo lana-console-mark > /dev/ttyS0", check=True)
        watcher = vm.console
        assert poll(lambda: watcher.contains("lana-console-mark"), 30.0, 0.2), \
            vm.console_tail()

        # cleanup from the record alone, as after a crash of the lab
        report = clean(run.id)
        assert report.errors == [], report.errors
        domain = vm.domain_name
        assert poll(lambda: domain not in virsh(hv2.uri, "list", "--all", "--name").split(),
                    30.0, 0.2)
        left = pool_volumes(hv2.uri)
        assert [v for v in left if v.startswith(run.prefix)] == []
        assert set(pushed.volumes.values()) <= set(left)
        assert in_host(testbed, 2, "test", "-e", overlay).returncode == 1
        assert not link_exists(shell, bridge) and not run.folder.exists()
        assert clean(run.id).already_gone == [f"run {run.id}"]
    finally:
        vm.stop()
        clean(run.id)
    # nothing keeps the stopped VM, and with it a libvirt connection, alive: a connection
    # collected late, after its host vanished, hangs the process in close()
    ref = weakref.ref(vm)
    del vm
    assert ref() is None


def test_share_is_refused_for_a_remote_vm(testbed: TwoHostTestbed, image: Any,
                                          tmp_path: Any) -> None:
    run = RunRecord.create()
    try:
        with pytest.raises(LabError, match="9p share cannot reach the hypervisor"):
            LibvirtVM("ivm2", image, run, share=tmp_path, uri=testbed.hosts[2].uri)
        assert run.resources() == []
    finally:
        clean(run.id)


def test_silent_host_fails_within_the_connect_timeout(testbed: TwoHostTestbed,
                                                     image: Any) -> None:
    """A host that drops the lab's packets (no refusal comes back): the push gives up after
    CONNECT_TIMEOUT_S, not after the kernel's TCP timeout of minutes. The rule lives in hv2's
    namespace only and goes with it."""
    hv2 = testbed.hosts[2]
    rule = ["INPUT", "-p", "tcp", "--dport", str(LIBVIRT_TCP_PORT), "-j", "DROP"]
    argv = ["ip", "netns", "exec", hv2.netns, "iptables", "-w"]
    subprocess.run([*argv, "-I", *rule], check=True, capture_output=True, timeout=30)
    try:
        start = time.monotonic()
        with pytest.raises(LabError) as err:
            push_image(hv2.uri, image)
        took = time.monotonic() - start
        print(f"push to a silent host failed in {took:.2f} s: {err.value}")
        assert CONNECT_TIMEOUT_S - 1.0 <= took < DEAD_HOST_TIMEOUT_S
        assert f"libvirt on {hv2.mgmt_addr} is not reachable" in str(err.value)
        assert "timed out" in str(err.value)
    finally:
        subprocess.run([*argv, "-D", *rule], check=True, capture_output=True, timeout=30)
    assert push_image(hv2.uri, image).uploaded == []  # the volumes were there all along


def test_dead_libvirtd_fails_fast_and_volumes_clean_after_restart(testbed: TwoHostTestbed,
                                                                 image: Any) -> None:
    hv2 = testbed.hosts[2]
    run = RunRecord.create()
    name = f"{run.prefix}-ivm3-overlay.qcow2"
    conn = open_host(hv2.uri)
    try:
        pool = ensure_pool(conn)
        create_run_volume(run, conn, pool, name, volume_xml(name, 4096))
    finally:
        conn.close()
    testbed.kill_libvirtd(2)
    try:
        start = time.monotonic()
        with pytest.raises(LabError) as err:
            push_image(hv2.uri, image)
        took = time.monotonic() - start
        print(f"push to a dead libvirtd failed in {took:.2f} s: {err.value}")
        assert took < DEAD_HOST_TIMEOUT_S
        assert f"libvirt on {hv2.mgmt_addr} is not reachable at {hv2.uri}" in str(err.value)
        vm = LibvirtVM("ivm4", image, run, uri=hv2.uri)
        with pytest.raises(LabError, match="not reachable"):
            vm.start()
        assert not any(e.get("name", "").startswith(f"{run.prefix}-ivm4")
                       for e in run.resources() if e["kind"] == "libvirt-volume")
        report = clean(run.id)
        assert any(hv2.mgmt_addr in e and "unreachable" in e and name in e
                   for e in report.errors), report.errors
        assert run.folder.exists()  # the record stays for the next clean
    finally:
        testbed.restart_libvirtd(2)
    report = clean(run.id)
    assert report.errors == [], report.errors
    assert name not in pool_volumes(hv2.uri)
