"""The image store: built images under $LANALAB_CACHE/images/<digest[:16]>/.

Division of labour: the store finds and describes images; it never builds (lab.image.build
does). An image folder is complete once it exists under its final name: builds and imports
write into a temporary folder and rename it, so a half-written image is never found.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import ImageError
from lab.image.manifest import MANIFEST, load_manifest

DEFAULT_CACHE = Path("/var/cache/lanalab")
CACHE_ENV = "LANALAB_CACHE"
BUILD_HINT = "run `lanalab image build` (or `lanalab image import ARCHIVE`)"


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def images_root() -> Path:
    return cache_root() / "images"


def image_dir(digest: str) -> Path:
    return images_root() / digest[:16]


@dataclass(frozen=True)
class ImageInfo:
    """A built image: its folder, boot files, root disk, manifest and kernel command line."""

    path: Path
    kernel: Path
    initrd: Path
    rootfs: Path
    manifest: dict[str, Any]
    cmdline: str

    @property
    def digest(self) -> str:
        return str(self.manifest["digest"])

    @classmethod
    def load(cls, folder: Path) -> ImageInfo:
        folder = folder.resolve()
        manifest = load_manifest(folder)
        info = cls(folder, folder / "vmlinuz", folder / "initrd.img", folder / "rootfs.qcow2",
                   manifest, str(manifest.get("cmdline", "")))
        missing = [p.name for p in (info.kernel, info.initrd, info.rootfs) if not p.is_file()]
        if missing:
            raise ImageError(f"image `{folder.name}` lacks {', '.join(missing)}",
                             f"delete {folder} and {BUILD_HINT}")
        return info


def list_images() -> list[ImageInfo]:
    """Complete images in the store, newest first."""
    root = images_root()
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            found.append(ImageInfo.load(folder))
        except ImageError:
            continue  # an unreadable folder is not an image; `lanalab doctor` reports it
    return sorted(found, key=lambda i: str(i.manifest.get("built_at", "")), reverse=True)


def _open_files(proc: Path = Path("/proc")) -> set[Path]:
    """Files some process has open (those we may read: all of them, as root)."""
    found = set()
    for fd in proc.glob("[0-9]*/fd/*"):
        try:
            found.add(Path(os.readlink(fd)))
        except OSError:
            continue  # the process or descriptor went away, or is not ours to see
    return found


def prune_images(keep: int = 4, min_age: float = 3600.0) -> list[Path]:
    """Delete all but the `keep` newest images, sparing any built in the last `min_age`
    seconds (a lab may be about to start VMs from it) and any a process has open (a
    running VM's backing file). Returns what was deleted."""
    doomed = []
    now = time.time()
    candidates = [i for i in list_images()[keep:]
                  if now - (i.path / MANIFEST).stat().st_mtime >= min_age]
    busy = _open_files() if candidates else set()
    for info in candidates:
        if any(path.parent == info.path for path in busy):
            continue
        shutil.rmtree(info.path, ignore_errors=True)
        doomed.append(info.path)
    return doomed


def current_digest() -> str:
    """The digest the current recipe, sources and kernel ABI would build."""
    from lab.image.abi import resolve_kernel_release
    from lab.image.recipe import Recipe, recipe_digest

    return recipe_digest(Recipe.from_env(), resolve_kernel_release())


def resolve_image(ref: str | None = None) -> ImageInfo:
    """The image named by ref (a folder, or a digest or its prefix); with no ref, the image
    of the current recipe if built, else the newest one."""
    if ref and Path(ref).is_dir():
        return ImageInfo.load(Path(ref))
    images = list_images()
    if ref:
        matches = [i for i in images if i.digest.startswith(ref.lower())]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ImageError(f"image `{ref}` is ambiguous ({len(matches)} images match)",
                             "give more digits (see `lanalab image list`)")
        raise ImageError(f"no image `{ref}` in {images_root()}",
                         "see `lanalab image list` for the images there are")
    try:
        folder = image_dir(current_digest())
        if folder.is_dir():
            return ImageInfo.load(folder)
    except ImageError:
        pass  # no apt lists or headers: any built image is better than none
    if images:
        return images[0]
    raise ImageError(f"no guest image in {images_root()}", BUILD_HINT)
