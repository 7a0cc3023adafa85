"""What every VM backend does before a boot: check the image files, make the overlay."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lab.errors import BackendError, ImageError
from lab.runstate import RunRecord
from lab.vm.image import GuestImage


def check_boot_files(vm: str, image: GuestImage, share: Path | None) -> None:
    """Raise a clear error for a missing image file or share folder."""
    for path in (image.kernel, image.initrd, image.rootfs):
        if not Path(path).is_file():
            raise ImageError(f"vm `{vm}`: image file `{path}` is missing",
                             "rebuild the image with `lanalab image build`")
    if share is not None and not share.is_dir():
        raise BackendError(f"vm `{vm}`: share folder `{share}` does not exist")


def make_overlay(vm: str, run: RunRecord, image: GuestImage, overlay: Path) -> None:
    """A copy-on-write qcow2 over the image's read-only rootfs, recorded before it exists."""
    run.record("path", path=str(overlay))
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
            "-b", str(Path(image.rootfs).resolve()), str(overlay)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise BackendError(f"vm `{vm}`: cannot create the disk overlay "
                           f"({done.stderr.strip()})", "check the image and free space")
