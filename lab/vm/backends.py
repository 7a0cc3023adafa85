"""Choose the VM backend per lab: `qemu` (direct, no daemon, the default) or `libvirt`.

Division of labour: `make_vm()` builds a QemuVM or a LibvirtVM from the same arguments, so
LabRun does not care which; `agent_for()` gives other processes (lanalab exec, status) the
guest agent of a VM from its description in lab.json, whichever backend made it.
The libvirt URI comes from the `uri` argument, else `LANALAB_LIBVIRT_URI`, else
qemu:///system; a remote one (qemu+ssh://host/system) places the VM on that host
(docs/backends.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from lab.errors import BackendError
from lab.runstate import RunRecord
from lab.vm.image import GuestImage
from lab.vm.kvm import AccelVerdict
from lab.vm.qemu_argv import Nic
from lab.vm.qga import ExecResult, GuestAgent

BACKENDS = ("qemu", "libvirt")
DEFAULT_BACKEND = "qemu"


class LabVM(Protocol):
    """What LabRun and the tests use of a VM, whichever backend runs it."""

    name: str
    nics: list[Nic]
    boot_seconds: float | None

    def start(self) -> None: ...
    def running(self) -> bool: ...
    def wait_ready(self, timeout: float | None = None) -> float: ...
    def exec(self, argv: Sequence[str] | str, timeout: float = 60.0,
             input: bytes | None = None, check: bool = False) -> ExecResult: ...
    def put_file(self, path: str, data: bytes | str) -> None: ...
    def get_file(self, path: str) -> bytes: ...
    def check_console(self) -> None: ...
    def console_tail(self, lines: int = 40) -> str: ...
    def stop(self, timeout: float = 20.0, graceful: bool = False) -> float: ...
    def describe(self) -> dict[str, Any]: ...


def backend_name(backend: str | None = None) -> str:
    """The backend to use: the argument, else LANALAB_BACKEND, else qemu."""
    name = (backend or os.environ.get("LANALAB_BACKEND") or DEFAULT_BACKEND).strip().lower()
    if name not in BACKENDS:
        raise BackendError(f"unknown VM backend `{name}`",
                           f"use one of: {', '.join(BACKENDS)} (topology `backend:` or "
                           "LANALAB_BACKEND)")
    return name


def libvirt_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("LANALAB_LIBVIRT_URI") or "qemu:///system"


def make_vm(backend: str | None, name: str, image: GuestImage, run: RunRecord,
            nics: Sequence[Nic] = (), share: Path | None = None, memory_mb: int = 512,
            cpus: int = 1, uri: str | None = None, hostdevs: Sequence[str] = (),
            accel: AccelVerdict | None = None) -> LabVM:
    """A VM of the chosen backend. `hostdevs`: PCI addresses to pass through (run
    `lanalab passthrough check` first); `uri`: libvirt only; `accel`: None probes."""
    chosen = backend_name(backend)
    if accel is not None and accel.icount_shift is not None and chosen != "qemu":
        raise BackendError(f"vm `{name}`: the instruction clock (qemu -icount) needs the "
                           "qemu backend", "run it with --backend qemu")
    if chosen == "libvirt":
        from lab.vm.libvirt_backend import LibvirtVM

        return LibvirtVM(name, image, run, nics=nics, share=share, memory_mb=memory_mb,
                         cpus=cpus, accel=accel, uri=libvirt_uri(uri), hostdevs=hostdevs)
    if hostdevs:
        raise BackendError(f"vm `{name}`: PCI passthrough is wired for the libvirt backend",
                           "use backend libvirt (managed hostdev), or add "
                           "lab.passthrough.qemu_args(BDF) to the qemu command line")
    from lab.vm.qemu import QemuVM

    return QemuVM(name, image, run, nics=nics, share=share, memory_mb=memory_mb, cpus=cpus,
                  accel=accel)


def agent_for(description: dict[str, Any]) -> GuestAgent:
    """The guest agent of a VM described in lab.json (QemuVM/LibvirtVM.describe())."""
    name = str(description.get("name", "guest"))
    if description.get("backend") == "libvirt":
        from lab.vm.libvirt_backend import LibvirtAgent

        return LibvirtAgent.connect(description["uri"], description["domain"], name)
    return GuestAgent(Path(description["qga_socket"]), name)
