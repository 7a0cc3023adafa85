"""Kernel modules: which ones the guest and the initramfs get, resolved from modules.dep.

Division of labour: pure functions parse modules.dep and compute dependency closures in
load order (tested without a kernel); `install_guest_modules` copies the chosen subset of
an extracted linux-image into the root file system and runs depmod there. The whole module
tree is 390 MB; the guest needs networking, virtio, 9p and ext4, about a tenth of it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from lab.errors import ImageError
from lab.image.shell import run

_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
_INDEX_FILES = ("modules.builtin", "modules.builtin.modinfo", "modules.order")

ModDep = dict[str, list[str]]


def module_name(relpath: str) -> str:
    """"kernel/net/9p/9pnet_virtio.ko" -> "9pnet_virtio" (dashes read as underscores)."""
    base = relpath.rsplit("/", 1)[-1]
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def parse_modules_dep(text: str) -> ModDep:
    """modules.dep as {module path: [paths of the modules it needs]}."""
    deps: ModDep = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        path, _, needs = line.partition(":")
        deps[path.strip()] = needs.split()
    return deps


def load_order(names: Iterable[str], deps: ModDep) -> list[str]:
    """Paths of the named modules and everything they need, dependencies first."""
    by_name = {module_name(path): path for path in deps}
    order: list[str] = []
    seen: set[str] = set()

    def visit(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        for needed in deps.get(path, []):
            visit(needed)
        order.append(path)

    for name in names:
        path = by_name.get(name.replace("-", "_"))
        if path is None:
            raise ImageError(f"kernel module `{name}` is not in this kernel's modules.dep",
                             "fix the module name in images/*modules.txt (is it built in?)")
        visit(path)
    return order


def select_modules(rules: Iterable[str], deps: ModDep) -> list[str]:
    """Apply guest-modules.txt rules: "folder/" takes a subtree, a name takes a module;
    both bring their dependencies. Returns module paths in load order."""
    names: list[str] = []
    for rule in rules:
        if rule.endswith("/"):
            subtree = [path for path in deps if path.startswith(rule)]
            if not subtree:
                raise ImageError(f"module folder `{rule}` has no modules in this kernel",
                                 "fix images/guest-modules.txt")
            names.extend(module_name(path) for path in sorted(subtree))
        else:
            names.append(rule)
    return load_order(names, deps)


def read_deps(moddir: Path) -> ModDep:
    dep_file = moddir / "modules.dep"
    if not dep_file.is_file():
        run(["depmod", "-b", moddir.parents[2], moddir.name], timeout=120)
    return parse_modules_dep(dep_file.read_text())


def install_guest_modules(kernel_root: Path, rootfs: Path, release: str,
                          rules: Iterable[str]) -> list[str]:
    """Copy the selected modules of an extracted linux-image into rootfs; return them."""
    src = kernel_root / "lib/modules" / release
    dst = rootfs / "lib/modules" / release
    chosen = select_modules(rules, read_deps(src))
    for rel in chosen:
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
    for name in _INDEX_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    depmod(rootfs, release)
    return chosen


def depmod(rootfs: Path, release: str) -> None:
    run(["depmod", "-a", "-b", rootfs, release], timeout=120,
        failure=f"depmod failed for the guest's /lib/modules/{release}")
