"""Pure builder of the qemu command line for one lab VM (no I/O, golden-testable).

Division of labour: `QemuVM` decides file locations, taps and the accelerator; this module
only turns them into argv. Choices here are measured ones: -nodefaults and romfile= (no
iPXE option ROM) keep boot fast; virtio-blk root; the guest agent on a virtio-serial port
named org.qemu.guest_agent.0; -no-reboot so a guest reboot or panic ends qemu.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.errors import BackendError

NIC_DEVICES = {"virtio": "virtio-net-pci", "virtio-net-pci": "virtio-net-pci",
               "e1000e": "e1000e"}
QGA_PORT_NAME = "org.qemu.guest_agent.0"
SHARE_TAG = "lab"
SHARE_READONLY_ENV = "LANALAB_SHARE_READONLY"  # "1": the share is read-only in the guest
# Console loglevel 5 prints KERN_WARNING and worse: WARN() splats reach the console log
# (and the Oops detector) even when the image's cmdline says `quiet`/`loglevel=4`.
CONSOLE_LOGLEVEL = "loglevel=5"


@dataclass(frozen=True)
class Nic:
    """One guest NIC on a host tap. `tap=None` with `create=True`: the VM names the tap.
    `create=True`: the VM records, creates and later deletes the tap; else it must exist."""

    tap: str | None = None
    model: str = "virtio"
    mac: str | None = None
    create: bool = False

    def device(self) -> str:
        try:
            return NIC_DEVICES[self.model]
        except KeyError:
            raise BackendError(f"NIC model `{self.model}` is not supported",
                               f"use one of: {', '.join(sorted(NIC_DEVICES))}") from None


@dataclass(frozen=True)
class VMFiles:
    """Where one VM keeps its state inside the run folder."""

    overlay: Path
    console_log: Path
    qemu_log: Path
    qga_socket: Path
    qmp_socket: Path

    @classmethod
    def in_folder(cls, folder: Path, name: str) -> VMFiles:
        return cls(overlay=folder / f"{name}.qcow2", console_log=folder / f"{name}.console.log",
                   qemu_log=folder / f"{name}.qemu.log", qga_socket=folder / f"{name}.qga.sock",
                   qmp_socket=folder / f"{name}.qmp.sock")


def stable_mac(vm_name: str, index: int) -> str:
    """Locally administered unicast MAC derived from the VM name and NIC index."""
    digest = hashlib.sha256(f"{vm_name}/{index}".encode()).digest()
    octets = [(digest[0] & 0xFC) | 0x02, *digest[1:6]]
    return ":".join(f"{b:02x}" for b in octets)


def qemu_argv(name: str, kernel: Path, initrd: Path, cmdline: str, files: VMFiles,
              nics: Sequence[Nic], accel_args: Sequence[str], share: Path | None = None,
              memory_mb: int = 512, cpus: int = 1, qemu: str = "qemu-system-x86_64") -> list[str]:
    argv = [qemu, "-name", name, "-machine", "pc", *accel_args,
            "-m", str(memory_mb), "-smp", str(cpus),
            "-nodefaults", "-nographic", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", f"{cmdline} {CONSOLE_LOGLEVEL} lana.hostname={name}",
            # the overlay is throwaway: skip host flushes
            "-drive", f"file={_opt(files.overlay)},if=virtio,format=qcow2,cache=unsafe",
            "-chardev", f"file,id=console,path={_opt(files.console_log)}",
            "-serial", "chardev:console",
            "-chardev", f"socket,id=qga,path={_opt(files.qga_socket)},server=on,wait=off",
            "-device", "virtio-serial-pci,id=vserial",
            "-device", f"virtserialport,chardev=qga,name={QGA_PORT_NAME}",
            "-qmp", f"unix:{_opt(files.qmp_socket)},server=on,wait=off"]
    for index, nic in enumerate(nics):
        if not nic.tap:
            raise BackendError(f"vm `{name}`: NIC {index} has no tap name")
        mac = nic.mac or stable_mac(name, index)
        argv += ["-netdev", f"tap,id=net{index},ifname={nic.tap},script=no,downscript=no",
                 "-device", f"{nic.device()},netdev=net{index},mac={mac},romfile="]
    if share is not None:
        # the lab service's labs: the guest's root must not write the host's files
        readonly = ",readonly=on" if os.environ.get(SHARE_READONLY_ENV) == "1" else ""
        argv += ["-virtfs", f"local,path={_opt(share)},mount_tag={SHARE_TAG},security_model=none,"
                 f"id=labshare{readonly}"]
    return argv


def _opt(path: Path) -> str:
    """A path inside a qemu option list: commas are doubled."""
    return str(path).replace(",", ",,")
