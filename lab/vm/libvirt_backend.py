"""One guest VM run as a transient libvirt domain (the `libvirt` backend).

Division of labour: `LibvirtVM` has QemuVM's interface (start, wait_ready, exec, put_file,
get_file, check_console, stop, describe) and keeps the same files in the run folder
(qcow2 overlay, console log, agent socket). The domain XML comes from lab.vm.libvirt_xml;
libvirtd itself is started by lab.vm.libvirtd when the URI is the local qemu:///system.
The domain is recorded in the run record (kind `libvirt-domain`, uri + name) before it is
created, its qemu process right after, so `lab.runstate.clean` removes both after a crash.

The guest agent: libvirt connects to the agent channel itself (it claims any virtio port
named org.qemu.guest_agent.0) and qemu serves one client per socket, so the lab talks to
the agent through libvirt (virDomainQemuAgentCommand). That also works for VMs on remote
hypervisor hosts, where the socket is not reachable at all. `LibvirtAgent` speaks the same
requests as lab.vm.qga.GuestAgent, whose exec and file logic it reuses.

Remote hypervisors (a URI that is not this machine's, `LibvirtVM.local` False): nothing of
this machine's file system is named in the domain. Before the domain is made, the image is
pushed into the host's `lanalab` storage pool (lab.multihost.images: uploaded only when the
host lacks it, verified by digest), and the VM's qcow2 overlay and console log are volumes
in that pool, `<run prefix>-<vm>-overlay.qcow2` and `-console.log`, recorded as
`libvirt-volume` before they are made. LANALAB_IMAGE_VERIFY=full downloads and hashes the
image volumes found there instead of checking their stamps and sizes. The agent socket's
path is libvirt's choice on the host. The console log is read back through libvirt (a
volume download from where the last read ended) into the run folder's `<vm>.console.log`
each time the lab looks at the console (wait_ready, check_console, console_tail, stop), so
ConsoleWatcher works as for local VMs; that local copy is only as fresh as the last look.
A 9p share is refused: it is a folder of this machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import (
    BackendError,
    GuestAgentError,
    GuestKernelError,
    GuestTimeoutError,
    VMBootError,
)
from lab.runstate import RunRecord, process_matches, process_starttime
from lab.vm.console import ConsoleWatcher, KernelProblem
from lab.vm.disk import check_boot_files, make_overlay
from lab.vm.image import GuestImage
from lab.vm.kvm import AccelVerdict, accel_verdict, cache_dir
from lab.vm.libvirt_conn import is_remote, open_connection
from lab.vm.libvirt_xml import DomainNic, DomainSpec, domain_xml
from lab.vm.libvirtd import DaemonStatus, ensure_libvirtd
from lab.vm.qemu_argv import Nic, VMFiles, stable_mac
from lab.vm.qga import ExecResult, GuestAgent

__all__ = ["BridgeNic", "LibvirtAgent", "LibvirtVM", "Nic"]

log = logging.getLogger(__name__)

DEFAULT_URI = "qemu:///system"
READY_POLL_S = 0.1
VIR_ERR_NO_DOMAIN = 42
LIBVIRT_LOG_DIR = Path("/var/log/libvirt/qemu")
VIR_ERR_AGENT_UNRESPONSIVE = 86
VERIFY_ENV = "LANALAB_IMAGE_VERIFY"  # remote hypervisors: how a found image is checked


def _libvirt() -> Any:
    try:
        import libvirt
    except ImportError:
        raise BackendError("the libvirt backend needs libvirt-python",
                           "pip install 'lanalab[libvirt]' (or libvirt-python) into the "
                           "lab's venv, or use the qemu backend") from None
    # libvirt prints every error to stderr by default; the lab raises its own errors
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


@dataclass(frozen=True)
class BridgeNic(Nic):
    """A NIC that joins `bridge` through a tap libvirt makes (<interface type='bridge'>);
    the tap is named `tap` (recorded by the lab) or, when None, by the VM.
    Example: BridgeNic(bridge="lab1a2b-s1", model="e1000e")."""

    bridge: str = ""


class LibvirtAgent(GuestAgent):
    """The guest agent reached through libvirt: the same requests as GuestAgent."""

    def __init__(self, domain: Any, name: str = "guest", uri: str = "") -> None:
        super().__init__(Path("/nonexistent"), name, keep_open=True)
        self.domain = domain
        self.uri = uri  # only for messages: a dead connection cannot tell its URI

    @classmethod
    def connect(cls, uri: str, domain_name: str, name: str = "guest") -> LibvirtAgent:
        """For other processes (lanalab exec on a running lab): look the domain up."""
        libvirt = _libvirt()
        try:
            dom = open_connection(uri).lookupByName(domain_name)
        except libvirt.libvirtError as exc:
            raise GuestAgentError(f"vm `{name}`: libvirt domain `{domain_name}` at {uri} is "
                                  f"not reachable ({exc.get_error_message()})",
                                  "is the lab still up? `lanalab status` lists it") from None
        return cls(dom, name, uri)

    def close(self) -> None:
        pass  # libvirt owns the connection to the agent

    def shutdown(self, mode: str = "powerdown") -> None:
        """Ask the guest to power off (or reboot) through libvirt's own agent call."""
        libvirt = _libvirt()
        try:
            if mode == "reboot":
                self.domain.reboot(libvirt.VIR_DOMAIN_REBOOT_GUEST_AGENT)
            else:
                self.domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT)
        except libvirt.libvirtError as exc:
            raise GuestAgentError(f"vm `{self.name}`: guest agent could not {mode} the guest "
                                  f"({exc.get_error_message()})") from None

    def sync(self, timeout: float = 1.0) -> None:
        self.request("guest-ping", timeout=timeout)

    def request(self, command: str, arguments: dict[str, Any] | None = None,
                timeout: float = 30.0) -> Any:
        libvirt = _libvirt()
        import libvirt_qemu

        payload: dict[str, Any] = {"execute": command}
        if arguments is not None:
            payload["arguments"] = arguments
        seconds = max(1, math.ceil(timeout))  # libvirt takes whole seconds
        try:
            reply = libvirt_qemu.qemuAgentCommand(self.domain, json.dumps(payload), seconds, 0)
        except libvirt.libvirtError as exc:
            code, text = exc.get_error_code(), exc.get_error_message()
            if exc.get_error_domain() == libvirt.VIR_FROM_RPC:
                # the connection itself broke (the hypervisor's libvirtd died or is cut
                # off), not the agent: say so, the guest may well be fine
                raise GuestAgentError(
                    f"vm `{self.name}`: lost the connection to libvirt"
                    f"{' at ' + self.uri if self.uri else ''} during `{command}` ({text})",
                    "is the hypervisor's libvirtd up? Once it is back, `lanalab clean` "
                    "removes the domain") from None
            if code == VIR_ERR_AGENT_UNRESPONSIVE or "not connected" in text:
                raise GuestAgentError(
                    f"vm `{self.name}`: guest agent not answering through libvirt ({text})",
                    "wait until the VM is ready (wait_ready) or check the console log",
                ) from None
            if "timed out" in text or "timeout" in text.lower():
                raise GuestTimeoutError(
                    f"vm `{self.name}`: guest agent gave no reply to `{command}` within "
                    f"{seconds} s", "the guest may be hung or busy; look at its console log",
                ) from None
            raise GuestAgentError(f"vm `{self.name}`: guest agent refused `{command}`: "
                                  f"{text}") from None
        return json.loads(reply).get("return")


class LibvirtVM:
    """A guest VM as a transient libvirt domain; QemuVM's interface."""

    backend = "libvirt"

    def __init__(self, name: str, image: GuestImage, run: RunRecord,
                 nics: Sequence[Nic] = (), share: Path | None = None, memory_mb: int = 512,
                 cpus: int = 1, accel: AccelVerdict | None = None, uri: str = DEFAULT_URI,
                 hostdevs: Sequence[str] = (), keep_daemon: bool = False,
                 progress: Callable[[str], None] = print) -> None:
        self.name = name
        self.image = image
        self.run = run
        self.uri = uri
        if share is not None and not self.local:
            raise BackendError(f"vm `{name}`: a 9p share cannot reach the hypervisor at {uri} "
                               f"(the share `{share}` is a folder of this machine)",
                               "give VMs on other hosts no share; copy files in with "
                               "put_file, or place the VM on the local hypervisor")
        self.progress = progress  # image upload lines for a remote hypervisor
        self.share = Path(share).resolve() if share is not None else None
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.accel = accel
        self.hostdevs = list(hostdevs)  # PCI addresses passed through (lab.passthrough)
        self.keep_daemon = keep_daemon
        self.nics = [self._resolve_nic(i, nic) for i, nic in enumerate(nics)]
        self.files = VMFiles.in_folder(run.folder, name)
        self.domain_name = f"{run.prefix}-{name}"
        self.console = (ConsoleWatcher(self.files.console_log) if self.local
                        else _PulledConsole(self.files.console_log, self._pull_console))
        self.daemon: DaemonStatus | None = None
        self.boot_seconds: float | None = None
        self.create_seconds: float | None = None
        self.stop_seconds: float | None = None
        self._conn: Any = None
        self._dom: Any = None
        self._qemu_pid: int | None = None
        self._qemu_starttime: int | None = None
        self._created_at = 0.0
        self._created_taps: list[str] = []
        self._boot_kernel: Path | None = None
        self.agent: LibvirtAgent | None = None
        # remote hypervisors only: the image and the VM's volumes in the host's pool
        self.remote_image: Any = None  # lab.multihost.images.RemoteImage
        self._host_overlay: str | None = None
        self._host_console: str | None = None
        self._console_vol: Any = None
        self._run_volumes: list[str] = []

    def _resolve_nic(self, index: int, nic: Nic) -> Nic:
        mac = nic.mac or stable_mac(self.name, index)
        tag = hashlib.sha256(self.name.encode()).hexdigest()[:4]
        if isinstance(nic, BridgeNic):
            if not nic.bridge:
                raise BackendError(f"vm `{self.name}`: NIC {index} names no bridge")
            return BridgeNic(tap=nic.tap or self.run.ifname(f"{tag}n{index}"),
                             model=nic.model, mac=mac, bridge=nic.bridge)
        tap = nic.tap
        if tap is None:
            if not nic.create:
                raise BackendError(f"vm `{self.name}`: NIC {index} has no tap",
                                   "pass Nic(tap=...), Nic(create=True) or BridgeNic(bridge)")
            tap = self.run.ifname(f"{tag}n{index}")
        return Nic(tap, nic.model, mac, nic.create)

    # ---- life cycle -------------------------------------------------------------------

    @property
    def local(self) -> bool:
        """This machine's libvirtd (qemu:///system, qemu+unix:///system): the VM's files
        are local paths; else they are volumes on the host (lab.multihost.images)."""
        return not is_remote(self.uri)

    @property
    def libvirt_log(self) -> Path:
        return LIBVIRT_LOG_DIR / f"{self.domain_name}.log"

    @property
    def pid(self) -> int | None:
        return self._qemu_pid

    def running(self) -> bool:
        return self._dom is not None and self._domain_active()

    def spec(self) -> DomainSpec:
        from lab.passthrough.render import hostdev_element

        accel = self.accel.accel if self.accel else "tcg"
        if self.remote_image is not None and self._host_overlay and self._host_console:
            return self._remote_spec(accel)
        return DomainSpec(
            name=self.domain_name, vm_name=self.name,
            kernel=self._boot_kernel or Path(self.image.kernel), initrd=Path(self.image.initrd),
            cmdline=self.image.cmdline, overlay=self.files.overlay,
            console_log=self.files.console_log, qga_socket=self.files.qga_socket,
            nics=[DomainNic(n.model, n.mac or "", n.tap, getattr(n, "bridge", None))
                  for n in self.nics],
            share=self.share, memory_mb=self.memory_mb, cpus=self.cpus, accel=accel,
            hostdevs=[hostdev_element(bdf) for bdf in self.hostdevs],
            title=f"LANA lab VM {self.name} (run {self.run.id})")

    def _remote_spec(self, accel: str) -> DomainSpec:
        """Host paths only: the pushed image's volumes and the VM's own volumes."""
        assert self.remote_image is not None and self._host_overlay and self._host_console
        return DomainSpec(
            name=self.domain_name, vm_name=self.name,
            kernel=Path(self.remote_image.kernel), initrd=Path(self.remote_image.initrd),
            cmdline=self.image.cmdline, overlay=Path(self._host_overlay),
            console_log=Path(self._host_console), qga_socket=None,
            nics=[DomainNic(n.model, n.mac or "", n.tap, getattr(n, "bridge", None))
                  for n in self.nics],
            share=None, memory_mb=self.memory_mb, cpus=self.cpus, accel=accel,
            title=f"LANA lab VM {self.name} (run {self.run.id})")

    def xml(self) -> str:
        return domain_xml(self.spec())

    def start(self) -> None:
        """Create the overlay and taps, then the transient domain; returns without waiting
        for the guest."""
        if self._dom is not None:
            raise BackendError(f"vm `{self.name}` was already started")
        libvirt = _libvirt()
        self._check_image()
        # a remote URI returns at once: no local libvirtd is started or needed for it
        self.daemon = ensure_libvirtd(self.run, self.uri, keep=self.keep_daemon)
        self._choose_accel()
        if self.local:
            self._make_overlay()
        else:
            self._conn = self._open_remote()
            self._place_on_host()
        self._make_taps()
        xml = self.xml()
        (self.run.folder / f"{self.name}.domain.xml").write_text(xml)  # for the curious
        if self._conn is None:
            try:
                self._conn = open_connection(self.uri)
            except libvirt.libvirtError as exc:
                raise BackendError(f"cannot connect to libvirt at {self.uri} "
                                   f"({exc.get_error_message()})",
                                   "check the URI; for qemu+ssh:// the remote user needs "
                                   "access to libvirtd there (see docs/backends.md)") from None
        if self.local:  # libvirt's log of the domain (qemu's stderr): the lab's to remove
            self.run.record("path", path=str(self.libvirt_log))
        self.run.record("libvirt-domain", uri=self.uri, name=self.domain_name)
        start = time.monotonic()
        try:
            self._dom = self._conn.createXML(xml, 0)
        except libvirt.libvirtError as exc:
            raise BackendError(f"vm `{self.name}`: libvirt refused the domain "
                               f"({exc.get_error_message()})",
                               f"the XML is in {self.run.folder / (self.name + '.domain.xml')}"
                               ) from None
        self._created_at = start
        self.create_seconds = time.monotonic() - start
        self.agent = LibvirtAgent(self._dom, self.name, self.uri)
        self._record_qemu_pid()

    def _open_remote(self) -> Any:
        from lab.multihost.images import open_host

        return open_host(self.uri)  # a clear error naming the host within its timeout

    def _place_on_host(self) -> None:
        """Push the image into the host's pool, then make the VM's overlay (over the pushed
        rootfs) and console log there, each recorded before it is made."""
        from lab.multihost.images import (
            create_run_volume,
            ensure_pool,
            overlay_xml,
            push_image,
            run_volume_name,
            volume_xml,
        )

        verify = os.environ.get(VERIFY_ENV, "size").strip().lower() or "size"
        if verify not in ("size", "full"):
            raise BackendError(f"${VERIFY_ENV} is `{verify}`", "use `size` (stamp and size of "
                               "the image volumes on the host) or `full` (download and hash)")
        self.remote_image = push_image(self._conn, self.image, self.progress, verify=verify)
        pool = ensure_pool(self._conn, self.remote_image.pool)
        overlay = run_volume_name(self.run.prefix, self.name, "overlay.qcow2")
        console = run_volume_name(self.run.prefix, self.name, "console.log")
        self._run_volumes.append(overlay)
        vol = create_run_volume(self.run, self._conn, pool, overlay,
                                overlay_xml(overlay, self.remote_image.rootfs), self.uri)
        self._host_overlay = str(vol.path())
        self._run_volumes.append(console)
        self._console_vol = create_run_volume(self.run, self._conn, pool, console,
                                              volume_xml(console, 0), self.uri)
        self._host_console = str(self._console_vol.path())

    def _pull_console(self) -> None:
        """Append what the remote console log gained since the last pull to the local copy."""
        if self._conn is None or self._console_vol is None:
            return
        from lab.multihost.images import download

        path = self.files.console_log
        offset = path.stat().st_size if path.exists() else 0
        try:
            data = download(self._conn, self._console_vol, offset)
        except Exception as exc:  # noqa: BLE001 - the console is best effort; the agent
            log.debug("vm %s: console pull failed: %s", self.name, exc)  # reports the host
            return
        if data:
            with open(path, "ab") as f:
                f.write(data)

    def _delete_run_volumes(self) -> None:
        """stop() of a remote VM: its overlay and console log go from the host's pool (the
        records stay: cleanup finds them gone, or removes them if this fails)."""
        if not self._run_volumes or self._conn is None or self.remote_image is None:
            return
        from lab.multihost.images import delete_volume

        for name in self._run_volumes:
            try:
                delete_volume(self._conn, self.remote_image.pool, name)
            except Exception as exc:  # noqa: BLE001 - `lanalab clean` retries from the record
                log.warning("vm %s: volume %s stays on %s until `lanalab clean`: %s",
                            self.name, name, self.uri, exc)
                return
        self._run_volumes = []
        self._console_vol = None

    def _choose_accel(self) -> None:
        if self.accel is not None:
            return
        if self.local:
            self.accel = accel_verdict(self.image.kernel)
            from lab.vm.pvh import pvh_kernel  # same fast kernel entry as the qemu backend

            self._boot_kernel = pvh_kernel(Path(self.image.kernel), cache_dir())
        else:  # the lab cannot probe KVM on another host: LANALAB_ACCEL=kvm opts in
            import os

            forced = os.environ.get("LANALAB_ACCEL", "tcg").strip().lower() or "tcg"
            self.accel = AccelVerdict(forced, "remote hypervisor (LANALAB_ACCEL)", "forced")

    def _record_qemu_pid(self) -> None:
        """Local domains whose libvirtd this run started: record qemu too, so cleanup ends
        it even when the daemon is stopped first. With a daemon the run did not start,
        libvirt ends qemu when cleanup destroys the domain (killing qemu first would race
        libvirt's own teardown of the transient domain)."""
        if not self.local:
            return
        pidfile = Path(f"/run/libvirt/qemu/{self.domain_name}.pid")
        try:
            self._qemu_pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        self._qemu_starttime = process_starttime(self._qemu_pid)
        if any(e.get("kind") == "process" and e.get("argv0") == "libvirtd"
               for e in self.run.resources()):
            self.run.record_process(self._qemu_pid, "qemu-system-x86_64")

    def wait_ready(self, timeout: float | None = None) -> float:
        """Poll the guest agent until it answers; seconds from domain creation to ready.
        Raises VMBootError (console tail) on timeout or domain exit, GuestKernelError on a
        kernel panic."""
        if self._dom is None or self.agent is None:
            raise BackendError(f"vm `{self.name}` is not started", "call start() first")
        if self.boot_seconds is not None:
            return self.boot_seconds
        if timeout is None:
            timeout = 60.0 if self.accel and self.accel.accel == "kvm" else 180.0
        deadline = self._created_at + timeout
        while True:
            self._raise_if_dead()
            panics = [p for p in self.console.poll() if p.is_panic]
            if panics:
                raise _kernel_error(self.name, panics)
            try:
                self.agent.sync(1.0)
                self.boot_seconds = time.monotonic() - self._created_at
                self._tighten_socket()
                return self.boot_seconds
            except (GuestAgentError, GuestTimeoutError):
                pass
            if time.monotonic() >= deadline:
                raise VMBootError(
                    f"vm `{self.name}`: guest agent not ready after {timeout:g} s "
                    f"(libvirt domain {self.domain_name}, "
                    f"{self.accel.describe() if self.accel else 'accel unknown'})",
                    self.console.tail(30),
                    f"look at {self.files.console_log} and {self.libvirt_log}",
                )
            time.sleep(READY_POLL_S)

    def _tighten_socket(self) -> None:
        sock = self.files.qga_socket
        if self.local and sock.exists() and sock.stat().st_mode & 0o777 != 0o600:
            sock.chmod(0o600)

    def _domain_active(self) -> bool:
        libvirt = _libvirt()
        try:
            return bool(self._dom.isActive())
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == VIR_ERR_NO_DOMAIN:
                return False  # a transient domain that ended is gone entirely
            if not self.local:  # no local qemu to ask: the host is lost, say so at once
                raise BackendError(f"vm `{self.name}`: lost the connection to libvirt at "
                                   f"{self.uri} ({exc.get_error_message()})",
                                   "is the hypervisor's libvirtd up? Once it is back, "
                                   "`lanalab clean` removes the domain") from None
            # libvirtd unreachable (stopped by the lab that started it?): ask the kernel
            return self._qemu_alive()

    def _still_running(self) -> bool:
        """For stop(): a remote VM whose host cannot be reached counts as not running here;
        lab.runstate.clean destroys it through a new connection once the host answers."""
        try:
            return self._domain_active()
        except BackendError as exc:
            log.warning("%s", exc)
            return False

    def _qemu_alive(self) -> bool:
        return (self._qemu_pid is not None and self._qemu_starttime is not None
                and process_matches(self._qemu_pid, self._qemu_starttime))

    def _raise_if_dead(self) -> None:
        if self._domain_active():
            return
        problems = self.console.poll(final=True)
        if problems:
            raise _kernel_error(self.name, problems)
        qemu_said = _qemu_errors(self.libvirt_log) if self.local else ""
        raise VMBootError(
            f"vm `{self.name}`: libvirt domain {self.domain_name} ended before the guest was "
            "ready" + (f" (qemu said: {qemu_said})" if qemu_said else ""), self.console.tail(30),
            f"see {self.files.console_log} and {self.libvirt_log}")

    def stop(self, timeout: float = 20.0, graceful: bool = False) -> float:
        """End the domain (guest power-off first if `graceful`, else at once), then delete
        the taps and overlay this VM made. Safe to call twice."""
        start = time.monotonic()
        if self._dom is not None and self._still_running():
            if graceful and self.boot_seconds is not None and self.agent is not None:
                try:
                    self.agent.shutdown()
                except Exception as exc:  # noqa: BLE001 - fall back to destroy
                    log.debug("vm %s: agent shutdown failed: %s", self.name, exc)
                self._wait_inactive(min(timeout / 2, 10.0))
            if self._still_running():
                try:
                    self._dom.destroy()
                except _libvirt().libvirtError as exc:
                    if self._qemu_alive():  # libvirtd is gone: end our qemu ourselves
                        assert self._qemu_pid is not None
                        log.warning("vm %s: libvirt unreachable (%s); killing qemu pid %d",
                                    self.name, exc.get_error_message(), self._qemu_pid)
                        os.kill(self._qemu_pid, signal.SIGKILL)
                    elif self._still_running():
                        raise BackendError(f"vm `{self.name}`: libvirt could not destroy "
                                           f"{self.domain_name} ({exc.get_error_message()})",
                                           "run `lanalab clean`") from None
            self._wait_inactive(timeout)
        if not self.local:
            self.console.poll(final=True)  # the last lines, while the volume is there
            self._delete_run_volumes()
            # libvirt objects hold the connection: with them gone, close() really closes it
            # (else it closes whenever they are collected, and a close to a host that has
            # vanished meanwhile waits for TCP's retransmission timeout, minutes)
            self._console_vol = None
            self._dom = None
            self.agent = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._delete_taps()
        self.files.overlay.unlink(missing_ok=True)
        self.stop_seconds = time.monotonic() - start
        return self.stop_seconds

    def _wait_inactive(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._domain_active():
                return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> LibvirtVM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- guest access -----------------------------------------------------------------

    def _agent(self) -> LibvirtAgent:
        if self.agent is None:
            raise BackendError(f"vm `{self.name}` is not started", "call start() first")
        return self.agent

    def exec(self, argv: Sequence[str] | str, timeout: float = 60.0,
             input: bytes | None = None, check: bool = False) -> ExecResult:
        """Run argv in the guest (a string runs through /bin/sh -c)."""
        if isinstance(argv, str):
            argv = ["/bin/sh", "-c", argv]
        result = self._agent().exec(argv, timeout=timeout, input=input)
        return result.check() if check else result

    def put_file(self, path: str, data: bytes | str) -> None:
        self._agent().put_file(path, data.encode() if isinstance(data, str) else data)

    def get_file(self, path: str) -> bytes:
        return self._agent().get_file(path)

    def check_console(self) -> None:
        """Raise GuestKernelError if the guest kernel logged new Oops/BUG/panic/WARNING."""
        problems = self.console.poll(final=not self.running())
        if problems:
            raise _kernel_error(self.name, problems)

    def console_tail(self, lines: int = 40) -> str:
        return self.console.tail(lines)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "backend": self.backend, "pid": self.pid,
            "uri": self.uri, "domain": self.domain_name,
            "accel": self.accel.accel if self.accel else None,
            "kernel": str(self._boot_kernel or self.image.kernel),
            "boot_seconds": self.boot_seconds,
            "console_log": str(self.files.console_log),
            # libvirt holds this socket; other processes reach the agent with
            # LibvirtAgent.connect(uri, domain) (lab.vm.backends.agent_for)
            "qga_socket": str(self.files.qga_socket),
            "overlay": self._host_overlay or str(self.files.overlay),
            "host_console_log": self._host_console,  # remote: on the host, pulled into
            "image_volumes": self.remote_image.volumes if self.remote_image else None,
            "share": str(self.share) if self.share else None,
            "hostdevs": list(self.hostdevs),
            "libvirtd": self.daemon.describe() if self.daemon else None,
            "nics_qemu": [{"tap": n.tap, "model": n.model, "mac": n.mac,
                           "bridge": getattr(n, "bridge", None)} for n in self.nics],
        }

    # ---- host resources ---------------------------------------------------------------

    def _check_image(self) -> None:
        # remote URIs too: the image goes up from these files (share: refused for them)
        check_boot_files(self.name, self.image, self.share)

    def _make_overlay(self) -> None:
        """Local domains: the overlay in the run folder (remote ones: _place_on_host)."""
        make_overlay(self.name, self.run, self.image, self.files.overlay)

    def _make_taps(self) -> None:
        for nic in self.nics:
            if isinstance(nic, BridgeNic) and nic.tap:
                # libvirt creates and deletes this tap; recorded for cleanup after a crash.
                # On a remote URI it lives on that host: the uri says so, and local cleanup
                # finds no such link here
                where = {} if self.local else {"uri": self.uri}
                self.run.record("link", ifname=nic.tap, role=f"libvirt tap of vm {self.name}",
                                **where)
        wanted = [n.tap for n in self.nics if n.create and n.tap and not isinstance(n, BridgeNic)]
        if not wanted:
            return
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            for tap in wanted:
                self.run.record("link", ifname=tap, role=f"tap of vm {self.name}")
                ipr.link("add", ifname=tap, kind="tuntap", mode="tap")
                self._created_taps.append(tap)
                ipr.link("set", index=ipr.link_lookup(ifname=tap)[0], state="up")

    def _delete_taps(self) -> None:
        if not self._created_taps:
            return
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            for tap in self._created_taps:
                for index in ipr.link_lookup(ifname=tap):
                    ipr.link("del", index=index)
        self._created_taps = []


class _PulledConsole(ConsoleWatcher):
    """A ConsoleWatcher over the local copy of a remote console log, pulled before each read.
    It holds its VM's pull method weakly: no cycle keeps a VM (and its libvirt connection)
    alive until the cyclic collector runs."""

    def __init__(self, path: Path, pull: Callable[[], None]) -> None:
        super().__init__(path)
        self._pull = weakref.WeakMethod(pull)

    def _read_new_lines(self) -> None:
        pull = self._pull()
        if pull is not None:
            pull()
        super()._read_new_lines()


def _kernel_error(name: str, problems: list[KernelProblem]) -> GuestKernelError:
    trace = "\n\n".join(p.trace for p in problems)
    return GuestKernelError(name, problems[0].headline, trace)


def _qemu_errors(log_file: Path) -> str:
    """qemu's own complaint in libvirt's domain log (its lines start with the binary name)."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    said = [line.split(": ", 1)[-1] for line in lines if line.startswith("qemu-system")
            and "terminating on signal" not in line]
    return said[-1].strip() if said else ""
