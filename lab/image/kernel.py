"""The guest kernel: Debian's linux-image of the resolved ABI, fetched and unpacked into
the cache, never installed on the host (its initramfs-tools hooks are slow and its
initramfs is 31 MB; the lab makes its own small one).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lab.errors import ImageError
from lab.image.shell import run

_COMPLETE = ".complete"


def image_package(release: str) -> str:
    return f"linux-image-{release}"


def fetch_kernel_deb(cache: Path, release: str) -> Path:
    """The linux-image .deb of release in $LANALAB_CACHE/debs/ (downloaded if absent)."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    pattern = f"{image_package(release)}_*.deb"
    if not list(debs.glob(pattern)):
        run(["apt-get", "download", "-o", "APT::Sandbox::User=root", image_package(release)],
            cwd=debs, timeout=900, failure=f"cannot download {image_package(release)}",
            hint="the mirror may have dropped this ABI: run scripts/setup-host.sh (apt-get "
                 "update and the matching headers), then build again")
    found = sorted(debs.glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ImageError(f"apt-get download left no {pattern} in {debs}",
                         "run the download by hand to see why")
    return found[-1]


def deb_version(deb: Path) -> str:
    return run(["dpkg-deb", "-f", deb, "Version"], timeout=60).strip()


def unpack_kernel(cache: Path, deb: Path, release: str) -> Path:
    """Unpack deb once into $LANALAB_CACHE/kernels/<release>/ (with modules.dep)."""
    dest = cache / "kernels" / release
    if (dest / _COMPLETE).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{release}-", dir=dest.parent))
    try:
        run(["dpkg-deb", "-x", deb, tmp], timeout=600,
            failure=f"cannot unpack {deb.name}", hint=f"delete {deb} and build again")
        if not (tmp / "boot" / f"vmlinuz-{release}").is_file():
            raise ImageError(f"{deb.name} has no boot/vmlinuz-{release}",
                             f"delete {deb} and build again")
        run(["depmod", "-a", "-b", tmp, release], timeout=300,
            failure="depmod failed on the unpacked kernel")
        (tmp / _COMPLETE).write_text(deb.name + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest
