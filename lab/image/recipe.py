"""The image recipe (the files in images/) and the content digest that names an image.

Division of labour: `Recipe` reads the recipe's lists and knows where the sources are;
`recipe_digest` hashes everything an image is made from: the images/ files, the kernel/
sources (not their build outputs), the kernel release, the builder's own code and whether
LANA was left out. Same inputs, same digest: the build is skipped. Markdown files are
prose and left out, so editing a README does not rebuild; nor do the eBPF programs
(`*.bpf.c`), which the host compiles for each run (lab/ebpf/) and the image never carries.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILDER_DIR = Path(__file__).resolve().parent
# the builder modules whose code shapes the image (store/archive changes do not rebuild)
BUILDER_MODULES = ("recipe.py", "build.py", "kernel.py", "rootfs.py", "kmods.py", "lana.py",
                   "cpio.py", "initramfs.py", "disk.py", "manifest.py")
RECIPE_FORMAT = "lanalab-image/1"
SKIP_LANA_ENV = "LANALAB_SKIP_LANA"

# build outputs of kernel/ (Kbuild and the tools); never part of the digest
_BUILD_OUTPUTS = ("*.o", "*.ko", "*.mod", "*.mod.c", "*.cmd", "*.order", "*.a", "*.so",
                  "Module.symvers", "*.dwo", "*.lst", "*.tmp")
# sources of kernel/ the image never carries: eBPF programs, compiled on the host per run
_HOST_ONLY = ("*.bpf.c", "*.bpf.h")


def read_list(path: Path) -> list[str]:
    """Non-empty lines of a list file, comments (#) stripped."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


@dataclass(frozen=True)
class Recipe:
    """Where the recipe and the LANA sources live, and what the recipe asks for."""

    images_dir: Path = REPO_ROOT / "images"
    kernel_dir: Path = REPO_ROOT / "kernel"
    skip_lana: bool = False

    @classmethod
    def from_env(cls) -> Recipe:
        return cls(skip_lana=os.environ.get(SKIP_LANA_ENV, "") not in ("", "0"))

    @property
    def packages(self) -> list[str]:
        return read_list(self.images_dir / "packages.txt")

    @property
    def cmdline(self) -> str:
        return " ".join(read_list(self.images_dir / "cmdline.txt"))

    @property
    def guest_modules(self) -> list[str]:
        return read_list(self.images_dir / "guest-modules.txt")

    @property
    def initramfs_modules(self) -> list[str]:
        return read_list(self.images_dir / "initramfs-modules.txt")

    @property
    def boot_modules(self) -> list[str]:
        return read_list(self.images_dir / "boot-modules.txt")


def _is_build_output(path: Path) -> bool:
    if any(fnmatch.fnmatch(path.name, pattern) for pattern in _BUILD_OUTPUTS):
        return True
    with path.open("rb") as f:  # the tools' binaries (fbctl, vlink) have no suffix
        return f.read(4) == b"\x7fELF"


def source_files(root: Path, skip_build_outputs: bool = False) -> list[Path]:
    """Regular files under root, sorted, without hidden files and folders."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or not path.is_file():
                continue
            if skip_build_outputs and _is_build_output(path):
                continue
            found.append(path)
    return found


def _hash_tree(digest: hashlib._Hash, label: str, root: Path, skip_outputs: bool) -> None:
    for path in source_files(root, skip_outputs):
        if path.suffix == ".md":
            continue  # prose (README.md) does not change the image
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in _HOST_ONLY):
            continue  # eBPF programs: compiled on the host for each run, not in the image
        rel = path.relative_to(root).as_posix()
        executable = os.access(path, os.X_OK)
        digest.update(f"{label}:{rel}:{int(executable)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())


def recipe_digest(recipe: Recipe, kernel_release: str, builder_dir: Path = BUILDER_DIR) -> str:
    """sha256 (hex) of every input of the image."""
    digest = hashlib.sha256()
    digest.update(f"{RECIPE_FORMAT}\0release:{kernel_release}\0"
                  f"skip_lana:{int(recipe.skip_lana)}\0".encode())
    _hash_tree(digest, "images", recipe.images_dir, skip_outputs=False)
    if not recipe.skip_lana and recipe.kernel_dir.is_dir():
        _hash_tree(digest, "kernel", recipe.kernel_dir, skip_outputs=True)
    for name in BUILDER_MODULES:
        path = builder_dir / name
        if not path.is_file():
            continue
        digest.update(f"builder:{name}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
