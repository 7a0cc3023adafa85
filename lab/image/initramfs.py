"""The small initramfs: busybox-static, the modules that reach the root disk, the init
script from images/initramfs/ and lanalab-init as `load-modules` (one process loads a
list of modules). About 5 MB instead of Debian's 31 MB (which cost ~6 s of boot under
TCG), and uncompressed: unpacking is then a copy, not a decompression.
"""

from __future__ import annotations

import lzma
from pathlib import Path

from lab.errors import ImageError
from lab.image.cpio import CpioWriter
from lab.image.kmods import ModDep, load_order, module_name, read_deps

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


def boot_module_paths(rootfs: Path, release: str, boot: list[str], initramfs_own: list[str],
                      deps: ModDep) -> list[str]:
    """Paths (relative to the root) of the drivers the initramfs loads from the root file
    system, in load order, without those the initramfs has loaded already."""
    own = set(initramfs_own)
    paths = []
    for rel in load_order(boot, deps):
        if rel in own:
            continue
        path = f"lib/modules/{release}/{rel}"
        if not (rootfs / path).is_file():
            raise ImageError(f"boot module `{rel}` is not in the guest root file system",
                             "add it to images/guest-modules.txt")
        paths.append(path)
    return paths


def build_initramfs(out: Path, kernel_root: Path, release: str, modules: list[str],
                    init_script: Path, rootfs: Path, boot_modules: list[str],
                    loader: Path, busybox: Path = BUSYBOX) -> dict[str, list[str]]:
    """Write the initramfs to out; return the modules it loads (its own, and from the
    root file system), in order."""
    moddir = kernel_root / "lib/modules" / release
    deps = read_deps(moddir)
    order = load_order(modules, deps)
    boot = boot_module_paths(rootfs, release, boot_modules, order, deps)
    with out.open("wb") as f:
        cpio = CpioWriter(f)
        for folder in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"):
            cpio.directory(folder)
        cpio.char_device("dev/console", 5, 1)
        cpio.file("bin/busybox", _static_busybox(busybox), 0o755)
        cpio.symlink("bin/sh", "busybox")
        cpio.file("bin/load-modules", loader.read_bytes(), 0o755)
        cpio.file("init", init_script.read_bytes(), 0o755)
        names = []
        for rel in order:
            name = module_name(rel) + ".ko"
            cpio.file(f"lib/modules/{name}", _module_bytes(moddir / rel))
            names.append(name)
        cpio.file("modules.load", "".join(f"{n}\n" for n in names).encode())
        cpio.file("modules.boot", "".join(f"{p}\n" for p in boot).encode())
        cpio.close()
    return {"initramfs": [n.removesuffix(".ko") for n in names],
            "from_root": [module_name(p) for p in boot]}
