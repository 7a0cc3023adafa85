"""What the VM runtime needs from a guest image, and how it finds one.

Division of labour: the image store (lab.image.store, built elsewhere) owns building and
resolving images. The runtime only needs the fields below, so it accepts anything shaped
like `GuestImage`; `find_image()` asks the store and, when the store is not importable (or
for a hand-made image), reads the folder named by `LANALAB_IMAGE_DIR` (contracts §3 layout).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lab.errors import ImageError


class GuestImage(Protocol):
    @property
    def path(self) -> Path: ...
    @property
    def kernel(self) -> Path: ...
    @property
    def initrd(self) -> Path: ...
    @property
    def rootfs(self) -> Path: ...
    @property
    def cmdline(self) -> str: ...


@dataclass(frozen=True)
class ImageFolder:
    """An image read straight from a folder: vmlinuz, initrd.img, rootfs.qcow2, manifest."""

    path: Path
    kernel: Path
    initrd: Path
    rootfs: Path
    manifest: dict[str, Any]
    cmdline: str

    @classmethod
    def load(cls, folder: Path) -> ImageFolder:
        folder = folder.resolve()
        files = {name: folder / name for name in ("vmlinuz", "initrd.img", "rootfs.qcow2")}
        missing = [name for name, path in files.items() if not path.is_file()]
        if missing:
            raise ImageError(f"image folder `{folder}` lacks {', '.join(missing)}",
                             "build the image with `lanalab image build`")
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            manifest = {}
        cmdline = manifest.get("cmdline") or "console=ttyS0 root=/dev/vda rw net.ifnames=0"
        return cls(folder, files["vmlinuz"], files["initrd.img"], files["rootfs.qcow2"],
                   manifest, cmdline)


def find_image(ref: str | None = None) -> GuestImage:
    """The image to boot: `LANALAB_IMAGE_DIR` if set, else lab.image.store.resolve_image()."""
    override = os.environ.get("LANALAB_IMAGE_DIR")
    if override:
        return ImageFolder.load(Path(override))
    try:
        from lab.image.store import resolve_image
    except ImportError:
        raise ImageError("no guest image store is available (lab.image is not installed)",
                         "set LANALAB_IMAGE_DIR to a folder with vmlinuz, initrd.img and "
                         "rootfs.qcow2") from None
    image: GuestImage = resolve_image(ref)
    return image
