"""The VM runtime against a real guest: boot, agent commands and files, 9p share, both NIC
models, console Oops detection, stop, and cleanup after the lab process is SIGKILLed.
One guest is shared by the module (TCG boots take seconds); tests that end it come last."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from lab.errors import GuestKernelError, GuestTimeoutError
from lab.runstate import RunRecord, clean, list_runs, process_matches, run_base_dir
from lab.vm.image import GuestImage, ImageFolder
from lab.vm.qemu import Nic, QemuVM
from lab.vm.qemu_argv import stable_mac

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("share")
    (folder / "hello.txt").write_text("from the host\n")
    return folder


@pytest.fixture(scope="module")
def vm(vm_image: GuestImage, share: Path) -> Iterator[QemuVM]:
    """Name: vm. Scope: module. Depends: vm_image, share. A guest with a virtio and an
    e1000e NIC on taps it creates itself, the share at /lab."""
    run = RunRecord.create()
    guest = QemuVM("rt1", vm_image, run, share=share,
                   nics=[Nic(model="virtio", create=True), Nic(model="e1000e", create=True)])
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


def test_boot_reports_time_and_accel(vm: QemuVM) -> None:
    assert vm.boot_seconds is not None and 0 < vm.boot_seconds < 240
    assert vm.accel is not None and vm.accel.accel in ("kvm", "tcg")
    assert vm.files.qga_socket.stat().st_mode & 0o777 == 0o600
    assert vm.describe()["qga_socket"] == str(vm.files.qga_socket)
    # Debian's XZ bzImage is booted through its PVH entry (no in-guest decompression)
    assert vm.describe()["kernel"].endswith("/vmlinux")


def test_exec_returns_stdout_stderr_and_exit_code(vm: QemuVM) -> None:
    result = vm.exec("echo out; echo err >&2; exit 7")
    assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 7)
    assert vm.exec(["cat"], input=b"piped\n").stdout == "piped\n"
    assert vm.exec(["hostname"]).stdout.strip() == "rt1"


def test_another_process_can_use_the_agent_of_a_running_vm(vm: QemuVM) -> None:
    vm.exec(["true"])  # this process used the agent a moment ago
    code = ("import sys; from lab.vm.qga import GuestAgent; "
            "print(GuestAgent(sys.argv[1]).exec(['hostname']).stdout, end='')")
    done = subprocess.run([sys.executable, "-c", code, str(vm.files.qga_socket)],
                          capture_output=True, text=True, timeout=30)
    assert done.stdout == "rt1\n", done.stderr
    assert vm.exec(["true"]).exit_code == 0


def test_exec_timeout_is_an_error(vm: QemuVM) -> None:
    with pytest.raises(GuestTimeoutError, match="still running after 0.5 s"):
        vm.exec(["sleep", "30"], timeout=0.5)
    assert vm.exec(["true"]).exit_code == 0  # the agent is usable afterwards


def test_put_and_get_file(vm: QemuVM) -> None:
    data = os.urandom(200_000)
    vm.put_file("/tmp/blob", data)
    assert vm.get_file("/tmp/blob") == data
    assert vm.exec("wc -c < /tmp/blob").stdout.strip() == "200000"


def test_share_is_mounted_at_lab(vm: QemuVM, share: Path) -> None:
    assert vm.exec(["cat", "/lab/hello.txt"]).stdout == "from the host\n"
    vm.exec("echo from the guest > /lab/back.txt", check=True)
    assert (share / "back.txt").read_text() == "from the guest\n"


def test_both_nic_models_are_bound_to_their_drivers(vm: QemuVM) -> None:
    out = vm.exec("for i in /sys/class/net/eth*; do echo ${i##*/} "
                  "$(basename $(readlink $i/device/driver)) $(cat $i/address); done").stdout
    drivers = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert drivers["eth0"] == ["virtio_net", stable_mac("rt1", 0)]
    assert drivers["eth1"] == ["e1000e", stable_mac("rt1", 1)]
    for nic in vm.nics:
        assert nic.tap and _link_exists(nic.tap)


def test_console_warning_written_to_kmsg_raises(vm: QemuVM) -> None:
    vm.check_console()  # nothing so far
    vm.exec("echo '<4>WARNING: CPU: 0 PID: 1 at lab/test.c:1 lab_test+0x0/0x10' > /dev/kmsg; "
            "echo '<4>---[ end trace 0000000000000000 ]---' > /dev/kmsg", check=True)
    with pytest.raises(GuestKernelError) as err:
        _wait_for_console_problem(vm)
    assert err.value.headline.startswith("WARNING: CPU: 0 PID: 1 at lab/test.c:1")
    assert "end trace" in err.value.trace
    vm.check_console()  # reported once


WARN_MODULE = r"""
#include <linux/module.h>
static int __init lab_warn_init(void)
{
	WARN(1, "lanalab test warning");
	return -EAGAIN; /* do not stay loaded */
}
module_init(lab_warn_init);
MODULE_LICENSE("GPL");
"""


def test_console_real_kernel_warning_raises(vm: QemuVM, share: Path) -> None:
    release = vm.exec(["uname", "-r"]).stdout.strip()
    headers = Path(f"/usr/src/linux-headers-{release}")
    if not headers.is_dir():
        pytest.skip(f"kernel headers for the guest kernel missing: {headers}")
    src = share / "warnmod"
    src.mkdir()
    (src / "lab_warn.c").write_text(WARN_MODULE)
    (src / "Makefile").write_text("obj-m := lab_warn.o\n")
    subprocess.run(["make", "-s", "-C", str(headers), f"M={src}", "modules"], check=True,
                   capture_output=True, timeout=120)
    result = vm.exec(["insmod", "/lab/warnmod/lab_warn.ko"])
    assert result.exit_code != 0  # init returns -EAGAIN after warning
    with pytest.raises(GuestKernelError) as err:
        _wait_for_console_problem(vm)
    assert "lab_warn_init" in err.value.trace and "Call Trace" in err.value.trace
    assert err.value.headline.startswith("WARNING:")


def _wait_for_console_problem(vm: QemuVM, timeout: float = 10.0) -> None:
    """check_console() until it raises: the console lags the guest command a little."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        vm.check_console()
        time.sleep(0.05)


def test_stop_leaves_no_process_tap_or_overlay(vm: QemuVM) -> None:
    pid, taps = vm.pid, [nic.tap for nic in vm.nics]
    assert pid is not None
    took = vm.stop()
    assert took < 10
    assert not Path(f"/proc/{pid}").exists()
    assert not any(_link_exists(tap) for tap in taps if tap)
    assert not vm.files.overlay.exists()
    report = clean(vm.run.id)
    assert report.ok and all("run folder" in item for item in report.removed)


def test_boot_panic_is_reported_with_the_console(panicking_image: ImageFolder) -> None:
    """A junk initrd: the kernel cannot mount a root and panics; wait_ready says so."""
    run = RunRecord.create()
    guest = QemuVM("broken", panicking_image, run)
    try:
        guest.start()
        with pytest.raises(GuestKernelError) as err:
            guest.wait_ready(120)
        assert err.value.headline.startswith("Kernel panic")
        assert "Call Trace" in err.value.trace or "end Kernel panic" in err.value.trace
    finally:
        guest.stop()
        assert clean(run.id).ok


CRASHER = """
import json, sys, time
from pyroute2 import IPRoute
from lab.runstate import RunRecord
from lab.vm.image import find_image
from lab.vm.qemu import Nic, QemuVM

run = RunRecord.create()
tap = run.ifname("own0")
run.record("link", ifname=tap)
with IPRoute() as ipr:
    ipr.link("add", ifname=tap, kind="tuntap", mode="tap")
vm = QemuVM("victim", find_image(), run, nics=[Nic(model="e1000e", create=True)])
vm.start()
while not vm.files.qga_socket.exists():
    time.sleep(0.02)
print(json.dumps({"run": run.id, "pid": vm.pid, "taps": [tap, vm.nics[0].tap]}), flush=True)
time.sleep(600)
"""


def test_clean_after_sigkill_removes_qemu_and_taps(vm_image: GuestImage) -> None:
    env = dict(os.environ, LANALAB_IMAGE_DIR=str(vm_image.path))
    child = subprocess.Popen([sys.executable, "-c", CRASHER], stdout=subprocess.PIPE, env=env,
                             text=True)
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    qemu_pid = info["pid"]
    [start] = [e["starttime"] for e in RunRecord.open(info["run"]).resources()
               if e["kind"] == "process" and e["pid"] == qemu_pid]
    assert process_matches(qemu_pid, start), "qemu should outlive its killed owner"
    assert all(_link_exists(tap) for tap in info["taps"])
    report = clean()  # no run id: every run whose owner is dead
    assert report.ok, report.errors
    assert not process_matches(qemu_pid, start)
    assert not any(_link_exists(tap) for tap in info["taps"])
    assert not (run_base_dir() / info["run"]).exists()


def test_oneshot_runs_a_command_and_cleans(vm_image: GuestImage, share: Path) -> None:
    env = dict(os.environ, LANALAB_IMAGE_DIR=str(vm_image.path))
    oneshot = subprocess.Popen([sys.executable, "-m", "lab.vm.oneshot", "--share", str(share),
                                "--", "cat /lab/hello.txt; exit 5"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = oneshot.communicate(timeout=300)
    assert (oneshot.returncode, out) == (5, "from the host\n"), err
    left = [r.run_id for r in list_runs() if r.owner_pid == oneshot.pid]
    assert left == [], f"its run was not cleaned: {left}"


def test_oneshot_reports_a_guest_kernel_crash(vm_image: GuestImage) -> None:
    env = dict(os.environ, LANALAB_IMAGE_DIR=str(vm_image.path))
    done = subprocess.run([sys.executable, "-m", "lab.vm.oneshot", "--",
                           "echo c > /proc/sysrq-trigger"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    assert "guest kernel reported" in done.stderr and "sysrq" in done.stderr
