"""Build the guest image, step by step, into the content-addressed store.

Division of labour: this module only orders the steps, times them and publishes the
result; each step's work lives in its own module (kernel, rootfs, kmods, lana,
initramfs, disk, manifest). The output folder is named by the recipe digest and appears
atomically (built in a temporary folder under the store, then renamed): with unchanged
inputs a build is a digest computation and nothing else.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.errors import ImageError
from lab.image import abi, disk, initramfs, kernel, kmods, lana, rootfs
from lab.image.manifest import write_manifest
from lab.image.progress import Progress, StepTimer
from lab.image.recipe import SKIP_LANA_ENV, Recipe, recipe_digest
from lab.image.shell import run
from lab.image.store import ImageInfo, cache_root, image_dir, images_root, prune_images

STEPS = 10
POWER_NAMES = ("shutdown", "poweroff", "halt", "reboot")


@dataclass
class BuildContext:
    """What the steps share: inputs, the scratch folder, and what the manifest records."""

    recipe: Recipe
    release: str
    digest: str
    cache: Path
    work: Path
    timer: StepTimer
    rootfs_plan: rootfs.RootfsPlan | None = None
    rootfs_job: rootfs.RootfsJob | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.work / "root"

    @property
    def out(self) -> Path:
        return self.work / "out"


def build_image(force: bool = False, progress: Progress = print) -> ImageInfo:
    """Build the image of the current recipe unless it is already in the store."""
    start = time.monotonic()
    recipe = Recipe.from_env()
    release = abi.resolve_kernel_release()
    digest = recipe_digest(recipe, release)
    final = image_dir(digest)
    if final.is_dir() and not force:
        progress(f"image {digest[:16]} is up to date ({final}, "
                 f"{time.monotonic() - start:.1f} s)")
        return ImageInfo.load(final)
    _require_root()
    with _build_lock(progress):
        if final.is_dir() and not force:
            progress(f"image {digest[:16]} was built meanwhile by the other build ({final})")
            return ImageInfo.load(final)
        return _build(recipe, release, digest, progress)


def ensure_image(progress: Progress = print) -> ImageInfo:
    """The image of the current recipe, built first if needed."""
    return build_image(force=False, progress=progress)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ImageError("building the guest image needs root (mmdebstrap, file owners and "
                         "device nodes in the root file system)",
                         "run it as root: sudo .venv/bin/lanalab image build")


@contextmanager
def _build_lock(progress: Progress) -> Iterator[None]:
    images_root().mkdir(parents=True, exist_ok=True)
    with (images_root() / ".build.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("waiting for another image build (same cache) to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(recipe: Recipe, release: str, digest: str, progress: Progress) -> ImageInfo:
    progress(f"building image {digest[:16]} (kernel {release}"
             f"{', WITHOUT LANA' if recipe.skip_lana else ''}) into {images_root()}")
    _remove_stale_builds()
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=images_root()))
    timer = StepTimer(progress, STEPS - int(recipe.skip_lana))
    ctx = BuildContext(recipe, release, digest, cache_root(), work, timer)
    try:
        _start_rootfs(ctx)
        for step in (_step_kernel, _step_lana_build, _step_rootfs, _step_modules,
                     _step_lana_install, _step_init, _step_initramfs, _step_disk,
                     _step_packages):
            step(ctx)
        info = _step_publish(ctx)
    except BaseException:
        if ctx.rootfs_job:
            ctx.rootfs_job.cancel()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"image {digest[:16]} built in {ctx.timer.elapsed():.1f} s: {info.path}")
    for old in [*prune_images(), *_prune_inputs(ctx)]:
        progress(f"removed old {old}")
    return info


def _prune_inputs(ctx: BuildContext, keep: int = 2) -> list[Path]:
    """Keep the `keep` most recently used rootfs tarballs, unpacked kernels and kernel
    packages (180, 400 and 70 MB each): older ones belong to package lists and ABIs the
    tree has moved away from."""
    assert ctx.rootfs_plan is not None
    used = [ctx.rootfs_plan.tarball, ctx.cache / "kernels" / ctx.release,
            *(ctx.cache / "debs").glob(f"{kernel.image_package(ctx.release)}_*.deb")]
    for path in used:
        os.utime(path)  # mtime = last use
    removed = []
    for pattern in ("rootfs/*.tar", "kernels/*", "debs/*.deb"):
        found = sorted(ctx.cache.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in found[keep:]:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
            removed.append(old)
    return removed


def _remove_stale_builds() -> None:
    # called under the build lock: any scratch folder left is from a killed build
    stale = [*images_root().glob(".build-*"), *(cache_root() / "rootfs").glob(".mmdebstrap-*")]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)


def _step_kernel(ctx: BuildContext) -> None:
    with ctx.timer.step("kernel", f"fetch and unpack linux-image-{ctx.release}",
                        waiting_for="apt-get download and dpkg-deb"):
        if not ctx.recipe.skip_lana:
            abi.headers_dir(ctx.release)  # fail before the long steps, not after them
        deb = kernel.fetch_kernel_deb(ctx.cache, ctx.release)
        ctx.manifest["kernel_package"] = {"name": kernel.image_package(ctx.release),
                                          "version": kernel.deb_version(deb)}
        ctx.manifest["kernel_root"] = str(kernel.unpack_kernel(ctx.cache, deb, ctx.release))
        ctx.out.mkdir()
        # the bzImage as Debian ships it; the VM runtime boots its PVH ELF (lab/vm/pvh.py)
        bzimage = Path(ctx.manifest["kernel_root"]) / "boot" / f"vmlinuz-{ctx.release}"
        shutil.copy2(bzimage, ctx.out / "vmlinuz")


def _start_rootfs(ctx: BuildContext) -> None:
    """Start mmdebstrap in the background when the rootfs tarball is not cached: it waits
    on the mirror and dpkg for a minute while the kernel and LANA steps work."""
    ctx.rootfs_plan = rootfs.plan_rootfs(ctx.cache, ctx.recipe.packages)
    if not ctx.rootfs_plan.cached:
        ctx.rootfs_job = rootfs.RootfsJob(ctx.rootfs_plan)
        ctx.timer.progress(f"    mmdebstrap started in the background for "
                           f"{len(ctx.rootfs_plan.packages)} packages (about a minute)")


def _step_rootfs(ctx: BuildContext) -> None:
    plan = ctx.rootfs_plan
    assert plan is not None
    what = f"Debian bookworm minbase + {len(plan.packages)} packages"
    job = ctx.rootfs_job
    if job is None:
        what += f" (cached {plan.tarball.name})"
    waiting = "mmdebstrap (running in the background)" if job else None
    with ctx.timer.step("rootfs", what, waiting_for=waiting):
        if job:
            job.wait()
            ctx.rootfs_job = None
        rootfs.unpack_rootfs(plan.tarball, ctx.root)
        rootfs.install_overlay(ctx.recipe.images_dir / "rootfs", ctx.root)


def _step_modules(ctx: BuildContext) -> None:
    with ctx.timer.step("modules", "copy the guest's kernel modules, depmod"):
        chosen = kmods.install_guest_modules(Path(ctx.manifest["kernel_root"]), ctx.root,
                                             ctx.release, ctx.recipe.guest_modules)
        ctx.manifest["guest_module_count"] = len(chosen)


def _step_lana_build(ctx: BuildContext) -> None:
    if ctx.recipe.skip_lana:
        with ctx.timer.step("lana", f"skipped ({SKIP_LANA_ENV}=1): image WITHOUT LANA"):
            ctx.manifest["lana"] = {"built": False, "reason": f"{SKIP_LANA_ENV}=1"}
        return
    with ctx.timer.step("lana", "build kernel/ (modules and tools) in a scratch copy",
                        waiting_for="make (Kbuild and gcc)"):
        lana.build(ctx.recipe.kernel_dir, ctx.work / "lana", abi.headers_dir(ctx.release))


def _step_lana_install(ctx: BuildContext) -> None:
    if ctx.recipe.skip_lana:
        return
    with ctx.timer.step("lana-install", "install the LANA modules and tools, depmod"):
        installed = lana.install(ctx.work / "lana", abi.headers_dir(ctx.release), ctx.release,
                                 ctx.root)
        kmods.depmod(ctx.root, ctx.release)
        ctx.manifest["lana"] = {"built": True, **installed}


def _step_init(ctx: BuildContext) -> None:
    with ctx.timer.step("init", "compile lanalab-init (PID 1, shutdown, poweroff)"):
        binary = ctx.root / "sbin" / "lanalab-init"
        run(["gcc", "-static", "-Os", "-s", "-Wall", "-o", binary,
             ctx.recipe.images_dir / "init" / "lanalab-init.c"], timeout=300,
            failure="cannot compile images/init/lanalab-init.c",
            hint="run scripts/setup-host.sh (gcc, libc6-dev)")
        for name in (*POWER_NAMES, "init"):
            link = ctx.root / "sbin" / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to("lanalab-init")


def _step_initramfs(ctx: BuildContext) -> None:
    with ctx.timer.step("initramfs", "busybox-static + the modules that mount the root disk"):
        loaded = initramfs.build_initramfs(
            ctx.out / "initrd.img", Path(ctx.manifest["kernel_root"]), ctx.release,
            ctx.recipe.initramfs_modules, ctx.recipe.images_dir / "initramfs" / "init",
            ctx.root, ctx.recipe.boot_modules, loader=ctx.root / "sbin" / "lanalab-init")
        ctx.manifest["boot_modules"] = loaded


def _step_disk(ctx: BuildContext) -> None:
    with ctx.timer.step("disk", "mke2fs -d and qemu-img convert to qcow2",
                        waiting_for="mke2fs and qemu-img"):
        size = disk.make_rootfs_disk(ctx.root, ctx.out / "rootfs.qcow2", ctx.digest, ctx.work)
        ctx.manifest["rootfs_size"] = size


def _step_packages(ctx: BuildContext) -> None:
    with ctx.timer.step("packages", "record package versions (dpkg-query)"):
        ctx.manifest["packages"] = rootfs.installed_packages(ctx.root)


def _step_publish(ctx: BuildContext) -> ImageInfo:
    with ctx.timer.step("publish", "manifest.json and atomic rename into the store"):
        ctx.manifest.pop("kernel_root")
        manifest = {
            "digest": ctx.digest,
            "kernel_release": ctx.release,
            "cmdline": ctx.recipe.cmdline,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "built_on": socket.gethostname(),
            **ctx.manifest,
        }
        manifest["durations"] = {**ctx.timer.durations, "total": round(ctx.timer.elapsed(), 2)}
        write_manifest(ctx.out, manifest)
        final = image_dir(ctx.digest)
        if final.exists():  # --force: the old folder goes only once the new one is whole
            shutil.rmtree(final)
        os.replace(ctx.out, final)
    return ImageInfo.load(final)
