"""Shared fixtures. VM fixtures boot real guests from the lab's image (built by
`./lab.sh test` before pytest starts, or here on first use)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (VMs, taps, bridges): run ./lab.sh test as root")
    for item in items:
        if "vm" in item.keywords or "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def image():  # -> lab.image.store.ImageInfo
    from lab.image.build import ensure_image

    return ensure_image(progress=lambda msg: None)


@dataclass
class Guest:
    """A booted VM with helpers that make test code short and failures readable."""

    vm: object  # lab.vm.qemu.QemuVM

    def run(self, command: str, timeout: float = 120.0):  # -> ExecResult
        return self.vm.exec(["sh", "-c", command], timeout=timeout)

    def sh(self, command: str, timeout: float = 120.0) -> str:
        """Run a shell command; fail the test with its output unless it exits 0."""
        result = self.run(command, timeout)
        if result.exit_code != 0:
            pytest.fail(f"guest command failed ({result.exit_code}): {command}\n"
                        f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result.stdout

    def fails(self, command: str, timeout: float = 60.0):  # -> ExecResult
        """Run a command that must fail; return its result to check the message."""
        result = self.run(command, timeout)
        if result.exit_code == 0:
            pytest.fail(f"guest command unexpectedly succeeded: {command}\n{result.stdout}")
        return result

    def wait_for(self, condition: str, timeout: float = 30.0, what: str = "",
                 log: str | None = None) -> None:
        """Poll the shell `condition` in the guest until it holds; fail the test (with
        `log`'s content) if it does not within about `timeout` s. Waiting on what can be
        seen, not for a fixed time: under TCG on a loaded host any fixed time is too short."""
        tries = max(1, int(timeout / 0.1))
        result = self.run(f"i=0; until {condition}; do i=$((i + 1)); "
                          f"[ $i -ge {tries} ] && exit 1; sleep 0.1; done", timeout * 3 + 30)
        if result.exit_code != 0:
            shown = self.run(f"cat {log}").stdout if log else ""
            pytest.fail(f"waited {timeout:g} s for {what or condition}, in vain"
                        + (f"\n{log}: {shown}" if log else ""))

    def start(self, command: str, log: str, ready: str, timeout: float = 30.0) -> None:
        """Run `command` in the guest's background, its output in `log`, and return once
        `ready` shows in that log: a sniffer prints it after binding its socket, tcpdump
        says "listening on" once it captures. Traffic sent afterwards reaches it."""
        self.sh(f"rm -f {log}; ( ( {command} ) > {log} 2>&1 < /dev/null & )")
        self.wait_for(f"grep -qF -- {shlex.quote(ready)} {log}", timeout,
                      f"`{command}` to say {ready!r}", log)

    def put(self, path: str, data: bytes | str) -> None:
        self.vm.put_file(path, data.encode() if isinstance(data, str) else data)

    def quote(self, text: str) -> str:
        return shlex.quote(text)


def _boot_guest(image, nics: int = 0) -> Iterator[Guest]:
    from lab.runstate import RunRecord, clean
    from lab.vm.qemu import Nic, QemuVM

    run = RunRecord.create()
    vm = QemuVM("guest", image, run,
                nics=[Nic(tap=run.ifname(f"t0n{i}"), model="virtio", create=True)
                      for i in range(nics)],
                share=REPO_ROOT)
    try:
        vm.start()
        vm.wait_ready(120)
        yield Guest(vm)
        vm.check_console()  # a kernel Oops/BUG/WARNING during the module fails it here
    finally:
        try:
            vm.stop()
        finally:
            clean(run.id)


@pytest.fixture(scope="module")
def guest(image) -> Iterator[Guest]:
    """One fresh guest per test module: kernel state cannot leak between modules."""
    yield from _boot_guest(image)


@pytest.fixture
def checked_guest(guest: Guest) -> Iterator[Guest]:
    """The module's guest, with its console checked for kernel errors after each test."""
    yield guest
    guest.vm.check_console()


@pytest.fixture(scope="session")
def default_lab(image):  # -> lab.labrun.LabRun
    """The default topology (two VMs, one Mininet host), shared by tests that only read
    or that clean up after themselves."""
    from lab.labrun import LabRun
    from lab.topology.loader import load_topology

    lab = LabRun(load_topology("default"), image)
    lab.up()
    try:
        yield lab
    finally:
        lab.down()
