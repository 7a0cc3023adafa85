"""The small initramfs: busybox-static, the modules that reach the root disk, and the init
script from images/initramfs/. About 3 MB instead of Debian's 31 MB (which cost ~6 s of
boot under TCG), and uncompressed: unpacking is then a copy, not a decompression.
"""

from __future__ import annotations

import lzma
from pathlib import Path

from lab.errors import ImageError
from lab.image.cpio import CpioWriter
from lab.image.kmods import load_order, module_name, read_deps

BUSYBOX = Path("/bin/busybox")


def _module_bytes(path: Path) -> bytes:
    # busybox insmod loads plain .ko files only; Debian trixie ships .ko.xz
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(path.read_bytes())
    if path.name.endswith(".ko"):
        return path.read_bytes()
    raise ImageError(f"module `{path}` is compressed in a format the initramfs builder "
                     "cannot unpack", "extend lab/image/initramfs.py")


def _static_busybox(busybox: Path) -> bytes:
    data = busybox.read_bytes() if busybox.is_file() else b""
    if not data.startswith(b"\x7fELF") or b"/lib64/ld-linux" in data[:4096]:
        raise ImageError(f"`{busybox}` is missing or not the static busybox",
                         "run scripts/setup-host.sh (installs busybox-static)")
    return data


def build_initramfs(out: Path, kernel_root: Path, release: str, modules: list[str],
                    init_script: Path, busybox: Path = BUSYBOX) -> list[str]:
    """Write the initramfs to out; return the module names it loads, in order."""
    moddir = kernel_root / "lib/modules" / release
    order = load_order(modules, read_deps(moddir))
    with out.open("wb") as f:
        cpio = CpioWriter(f)
        for folder in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"):
            cpio.directory(folder)
        cpio.char_device("dev/console", 5, 1)
        cpio.file("bin/busybox", _static_busybox(busybox), 0o755)
        cpio.symlink("bin/sh", "busybox")
        cpio.file("init", init_script.read_bytes(), 0o755)
        names = []
        for rel in order:
            name = module_name(rel) + ".ko"
            cpio.file(f"lib/modules/{name}", _module_bytes(moddir / rel))
            names.append(name)
        cpio.file("modules.load", "".join(f"{n}\n" for n in names).encode())
        cpio.close()
    return [n.removesuffix(".ko") for n in names]
