"""Build the LANA modules and tools from kernel/ and install them into the guest.

Division of labour: the work tree's kernel/ is copied to a scratch folder first
(contracts §2), so a developer's `make` in kernel/ never races with an image build, and
the build outputs never land in the work tree. A failed build is an error that shows the
compiler's output: an image without LANA is not a LANA lab image.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lab.errors import ImageError
from lab.image.recipe import SKIP_LANA_ENV, source_files
from lab.image.shell import run

_HINT = (f"fix the error in kernel/ and run `lanalab image build` again "
         f"(to build an image without LANA meanwhile: {SKIP_LANA_ENV}=1)")


def copy_sources(kernel_dir: Path, scratch: Path) -> None:
    if not (kernel_dir / "Makefile").is_file():
        raise ImageError(f"`{kernel_dir}/Makefile` does not exist: the LANA sources are "
                         "missing or incomplete", _HINT)
    for path in source_files(kernel_dir, skip_build_outputs=True):
        target = scratch / path.relative_to(kernel_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def build(kernel_dir: Path, scratch: Path, headers: Path) -> None:
    """Build kernel/ (copied to scratch) against the kernel headers."""
    copy_sources(kernel_dir, scratch)
    run(["make", "-C", scratch, "-j2", f"KDIR={headers}"], timeout=900,
        failure="the LANA modules or tools do not build", hint=_HINT, tail_lines=60)
    for app in _apps(scratch):
        run(["make", "-C", app], timeout=300, failure=f"the LANA application {app.name} "
            "does not build", hint=_HINT, tail_lines=60)


def _apps(scratch: Path) -> list[Path]:
    """Userspace applications shipped with LANA (kernel/apps/<name>/Makefile)."""
    return sorted(p.parent for p in scratch.glob("apps/*/Makefile"))


def install(scratch: Path, headers: Path, release: str, rootfs: Path) -> dict[str, list[str]]:
    """Install what `build` made into rootfs; list the modules and tools installed."""
    run(["make", "-C", scratch, "install", f"KDIR={headers}", f"DESTDIR={rootfs}",
         f"KRELEASE={release}"], timeout=300,
        failure="installing the LANA modules and tools failed", hint=_HINT)
    for app in _apps(scratch):
        run(["make", "-C", app, "install", f"DESTDIR={rootfs}"], timeout=300,
            failure=f"installing the LANA application {app.name} failed", hint=_HINT)
    moddir = rootfs / "lib/modules" / release / "extra/lana"
    modules = sorted(p.name.removesuffix(".ko") for p in moddir.glob("*.ko"))
    if "lana" not in modules:
        raise ImageError(f"`make install` put no lana.ko into {moddir}", _HINT)
    tools = sorted(p.name for folder in ("usr/local/sbin", "usr/local/bin")
                   if (rootfs / folder).is_dir()
                   for p in (rootfs / folder).iterdir() if p.is_file())
    return {"modules": modules, "tools": tools}


def build_and_install(kernel_dir: Path, scratch: Path, headers: Path, release: str,
                      rootfs: Path) -> dict[str, list[str]]:
    build(kernel_dir, scratch, headers)
    return install(scratch, headers, release, rootfs)
