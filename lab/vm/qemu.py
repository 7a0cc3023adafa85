"""One guest VM run directly under qemu (the embedded backend, no daemon).

Division of labour: `QemuVM` owns one qemu process and the files of one VM inside the run
folder (qcow2 overlay over the image's read-only rootfs, console log, agent and QMP sockets)
and, when asked, its taps. Everything is recorded in the run record before it is created
(the qemu process right after spawning it), so `lab.runstate.clean` removes it after a crash.
Commands and files go through the guest agent (lab.vm.qga); kernel trouble is read from the
console log (lab.vm.console). The qemu command line comes from lab.vm.qemu_argv.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lab.errors import (
    BackendError,
    GuestAgentError,
    GuestKernelError,
    GuestTimeoutError,
    PrivilegeError,
    VMBootError,
)
from lab.runstate import RunRecord, process_matches, process_starttime
from lab.vm.console import ConsoleWatcher, KernelProblem
from lab.vm.disk import check_boot_files, make_overlay
from lab.vm.image import GuestImage
from lab.vm.kvm import AccelVerdict, accel_verdict, cache_dir
from lab.vm.pvh import pvh_kernel
from lab.vm.qemu_argv import Nic, VMFiles, qemu_argv, stable_mac
from lab.vm.qga import ExecResult, GuestAgent
from lab.vm.qmp import qmp_command

__all__ = ["ExecResult", "Nic", "QemuVM"]

log = logging.getLogger(__name__)

READY_POLL_S = 0.05
SYNC_TRY_S = 0.5


class QemuVM:
    """A guest VM: start() returns at once, wait_ready() blocks until the agent answers."""

    def __init__(self, name: str, image: GuestImage, run: RunRecord,
                 nics: Sequence[Nic] = (), share: Path | None = None, memory_mb: int = 512,
                 cpus: int = 1, accel: AccelVerdict | None = None) -> None:
        self.name = name
        self.image = image
        self.run = run
        self.share = Path(share).resolve() if share is not None else None
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.nics = [self._resolve_nic(i, nic) for i, nic in enumerate(nics)]
        self.files = VMFiles.in_folder(run.folder, name)
        self.accel = accel
        self.agent = GuestAgent(self.files.qga_socket, name)
        self.console = ConsoleWatcher(self.files.console_log)
        self.boot_seconds: float | None = None
        self.stop_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._spawned_at = 0.0
        self._starttime = -1  # qemu's start time (clock ticks), once spawned
        self._created_taps: list[str] = []
        self._boot_kernel: Path | None = None

    def _resolve_nic(self, index: int, nic: Nic) -> Nic:
        tap = nic.tap
        if tap is None:
            if not nic.create:
                raise BackendError(f"vm `{self.name}`: NIC {index} has no tap",
                                   "pass Nic(tap=...) or Nic(create=True)")
            tag = hashlib.sha256(self.name.encode()).hexdigest()[:4]
            tap = self.run.ifname(f"{tag}n{index}")
        return Nic(tap, nic.model, nic.mac or stable_mac(self.name, index), nic.create)

    # ---- life cycle -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        if self._proc is None:
            return False
        self._proc.poll()  # reaps qemu if it is our child and has exited
        # By pid and start time, not by Popen alone: a lab owner that forked into the
        # background is not qemu's parent, and Popen.poll() reports a non-child as exited.
        if process_matches(self._proc.pid, self._starttime):
            return True
        self._proc.poll()  # it exited after the first poll: reap the zombie now
        return False

    def start(self) -> None:
        """Create the overlay and taps, launch qemu; returns without waiting for the guest."""
        if self._proc is not None:
            raise BackendError(f"vm `{self.name}` was already started")
        self._check_image()
        if self.accel is None:
            self.accel = accel_verdict(self.image.kernel)
        self._boot_kernel = pvh_kernel(Path(self.image.kernel), cache_dir())
        self._make_overlay()
        self._make_taps()
        argv = self.argv()
        log.debug("vm %s: %s", self.name, " ".join(argv))
        with open(self.files.qemu_log, "wb") as qemu_log:
            self._proc = self.run.spawn(  # recorded before qemu runs: clean finds it
                argv, stdout=qemu_log, stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for the lab must not kill qemu
                umask=0o077,  # sockets 0600: only root (the lab) may talk to the guest
            )
        self._spawned_at = time.monotonic()
        self._starttime = process_starttime(self._proc.pid) or -1

    def argv(self) -> list[str]:
        accel = self.accel or accel_verdict(self.image.kernel)
        kernel = self._boot_kernel or self.image.kernel
        return qemu_argv(self.name, kernel, self.image.initrd, self.image.cmdline,
                         self.files, self.nics, accel.qemu_args(), self.share,
                         self.memory_mb, self.cpus)

    def wait_ready(self, timeout: float | None = None) -> float:
        """Poll the guest agent until it answers; returns seconds from spawn to ready.
        Raises VMBootError (with the console tail) on timeout or qemu exit, GuestKernelError
        on a kernel panic."""
        if self._proc is None:
            raise BackendError(f"vm `{self.name}` is not started", "call start() first")
        if self.boot_seconds is not None:
            return self.boot_seconds
        if timeout is None:
            timeout = 60.0 if self.accel and self.accel.accel == "kvm" else 180.0
        deadline = self._spawned_at + timeout
        while True:
            self._raise_if_dead()
            self._raise_on_panic()
            if self.files.qga_socket.exists():
                try:
                    self._tighten_sockets()
                    self.agent.sync(SYNC_TRY_S)
                    self.boot_seconds = time.monotonic() - self._spawned_at
                    return self.boot_seconds
                except Exception:  # noqa: BLE001 - agent not up yet: poll again
                    pass
            if time.monotonic() >= deadline:
                raise VMBootError(
                    f"vm `{self.name}`: guest agent not ready after {timeout:g} s "
                    f"({self.accel.describe() if self.accel else 'accel unknown'})",
                    self.console.tail(30),
                    f"look at {self.files.console_log}; under TCG a first boot may need a "
                    "longer timeout",
                )
            time.sleep(READY_POLL_S)

    def _tighten_sockets(self) -> None:
        # qemu made them 0700 under umask 077; the lab only needs read/write
        for sock in (self.files.qga_socket, self.files.qmp_socket):
            if sock.exists() and sock.stat().st_mode & 0o777 != 0o600:
                sock.chmod(0o600)

    def _raise_if_dead(self) -> None:
        assert self._proc is not None
        if self.running():
            return
        code = self._proc.returncode
        qemu_out = _tail_text(self.files.qemu_log, 5)
        problems = self.console.poll(final=True)
        if problems:
            raise _kernel_error(self.name, problems)
        raise VMBootError(
            f"vm `{self.name}`: qemu exited with status {code} before the guest was ready"
            + (f" (qemu said: {qemu_out.strip()})" if qemu_out.strip() else ""),
            self.console.tail(30),
            f"see {self.files.qemu_log} and {self.files.console_log}",
        )

    def _raise_on_panic(self) -> None:
        panics = [p for p in self.console.poll() if p.is_panic]
        if panics:
            raise _kernel_error(self.name, panics)

    def stop(self, timeout: float = 20.0, graceful: bool = False) -> float:
        """Quit qemu (QMP quit; `graceful`: guest power-off first), SIGKILL after `timeout`,
        then delete the taps and overlay this VM made. Safe to call twice."""
        start = time.monotonic()
        if self._proc is not None and self.running():
            self._ask_to_quit(graceful, timeout)
            if not self._wait_exit(timeout):
                log.warning("vm %s: qemu did not quit, killing pid %d", self.name, self._proc.pid)
                self._signal(signal.SIGKILL)
                self._wait_exit(10)
        self._reap()
        self.agent.close()  # late console problems stay for check_console()
        self._delete_taps()
        self.files.overlay.unlink(missing_ok=True)
        self.stop_seconds = time.monotonic() - start
        return self.stop_seconds

    def _ask_to_quit(self, graceful: bool, timeout: float) -> None:
        if graceful and self.boot_seconds is not None:
            try:
                self.agent.shutdown()
                if self._wait_exit(min(timeout / 2, 10.0)):
                    return
            except Exception as exc:  # noqa: BLE001 - fall back to QMP
                log.debug("vm %s: agent shutdown failed: %s", self.name, exc)
        try:
            qmp_command(self.files.qmp_socket, "quit", timeout=min(timeout, 5.0))
        except BackendError as exc:
            log.debug("vm %s: %s; sending SIGTERM", self.name, exc)
            self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        if self._proc is not None and self.running():  # still the very qemu we started
            os.kill(self._proc.pid, sig)

    def _reap(self, timeout: float = 10.0) -> None:
        """running() turns False when qemu's main thread is a zombie, but the kernel lets
        the parent reap it only after its other threads have exited too: wait for that, so
        no process is left behind. For a qemu that is not our child this returns at once."""
        if self._proc is None or self._proc.returncode is not None:
            return
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("vm %s: qemu pid %d still not reaped after %.0f s", self.name,
                        self._proc.pid, timeout)

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def __enter__(self) -> QemuVM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- guest access -----------------------------------------------------------------

    def exec(self, argv: Sequence[str] | str, timeout: float = 60.0,
             input: bytes | None = None, check: bool = False) -> ExecResult:
        """Run argv in the guest (a string runs through /bin/sh -c)."""
        if isinstance(argv, str):
            argv = ["/bin/sh", "-c", argv]
        with self._explained_agent_errors():
            result = self.agent.exec(argv, timeout=timeout, input=input)
        return result.check() if check else result

    def put_file(self, path: str, data: bytes | str) -> None:
        with self._explained_agent_errors():
            self.agent.put_file(path, data.encode() if isinstance(data, str) else data)

    def get_file(self, path: str) -> bytes:
        with self._explained_agent_errors():
            return self.agent.get_file(path)

    @contextlib.contextmanager
    def _explained_agent_errors(self) -> Iterator[None]:
        """An agent failure caused by a dead VM or a kernel crash says so, with the trace."""
        if self._proc is None:
            raise BackendError(f"vm `{self.name}` is not started", "call start() first")
        try:
            yield
        except (GuestAgentError, GuestTimeoutError) as exc:
            # a crashing guest: qemu closes the socket a moment before it exits
            self._wait_exit(2.0)
            self.console.poll(final=not self.running())
            crashes = [p for p in self.console.problems if not p.headline.startswith("WARNING")]
            if crashes:
                raise _kernel_error(self.name, crashes) from exc
            if not self.running():
                raise VMBootError(f"vm `{self.name}`: qemu exited (status "
                                  f"{self._proc.returncode})", self.console.tail(20),
                                  "start a new VM") from exc
            raise

    def check_console(self) -> None:
        """Raise GuestKernelError if the guest kernel logged new Oops/BUG/panic/WARNING."""
        problems = self.console.poll(final=not self.running())
        if problems:
            raise _kernel_error(self.name, problems)

    def console_tail(self, lines: int = 40) -> str:
        return self.console.tail(lines)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "pid": self.pid,
            "accel": self.accel.accel if self.accel else None,
            "kernel": str(self._boot_kernel or self.image.kernel),
            "boot_seconds": self.boot_seconds,
            "console_log": str(self.files.console_log),
            "qga_socket": str(self.files.qga_socket),
            "qmp_socket": str(self.files.qmp_socket),
            "overlay": str(self.files.overlay),
            "share": str(self.share) if self.share else None,
            "nics_qemu": [{"tap": n.tap, "model": n.model, "mac": n.mac} for n in self.nics],
        }

    # ---- host resources ---------------------------------------------------------------

    def _check_image(self) -> None:
        check_boot_files(self.name, self.image, self.share)

    def _make_overlay(self) -> None:
        make_overlay(self.name, self.run, self.image, self.files.overlay)

    def _make_taps(self) -> None:
        if not self.nics:
            return
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        with IPRoute() as ipr:
            for nic in self.nics:
                assert nic.tap is not None
                if not nic.create:
                    if not ipr.link_lookup(ifname=nic.tap):
                        raise BackendError(f"vm `{self.name}`: tap `{nic.tap}` does not exist",
                                           "create it first, or pass Nic(create=True)")
                    continue
                if not nic.tap.startswith(self.run.prefix):
                    raise BackendError(
                        f"vm `{self.name}`: tap name `{nic.tap}` lacks the run prefix "
                        f"`{self.run.prefix}`", "name it with run.ifname(...) or pass tap=None")
                self.run.record("link", ifname=nic.tap, role=f"tap of vm {self.name}")
                try:
                    ipr.link("add", ifname=nic.tap, kind="tuntap", mode="tap")
                except (NetlinkError, OSError) as exc:
                    raise PrivilegeError(
                        f"vm `{self.name}`: cannot create tap `{nic.tap}` ({exc})",
                        "run the lab as root (CAP_NET_ADMIN and /dev/net/tun are needed); "
                        "if the name is taken, run `lanalab clean`") from None
                self._created_taps.append(nic.tap)
                ipr.link("set", index=ipr.link_lookup(ifname=nic.tap)[0], state="up")

    def _delete_taps(self) -> None:
        if not self._created_taps:
            return
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            for tap in self._created_taps:
                for index in ipr.link_lookup(ifname=tap):
                    ipr.link("del", index=index)
        self._created_taps = []


def _kernel_error(name: str, problems: list[KernelProblem]) -> GuestKernelError:
    trace = "\n\n".join(p.trace for p in problems)
    return GuestKernelError(name, problems[0].headline, trace)


def _tail_text(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
