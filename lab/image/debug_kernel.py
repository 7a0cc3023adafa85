"""A debug guest kernel (KASAN, lockdep, kmemleak) and a debug image variant built with it.

`python -m lab.image.debug_kernel build|image|status` (see images/debug/README.md).

build:  Debian's linux-source-6.1 (apt) + Debian's config (from the linux-headers of the
        guest's ABI) + images/debug/debug.config, trimmed with `localmodconfig` to the
        modules the guest loads, `make bzImage modules`, `modules_install` into a
        kernel root laid out like lab.image.kernel.unpack_kernel's (boot/vmlinuz-<rel>,
        lib/modules/<rel>/), the source tree kept as KDIR for the LANA modules.
        Cached under $LANALAB_CACHE/debug-kernel/<hash>/ (hash of every input).
image:  the normal image recipe (same rootfs tarball, overlay, module lists, init,
        initramfs, LANA) with the debug kernel, into $LANALAB_CACHE/debug-image/<hash>/;
        boot it with LANALAB_IMAGE_DIR=<folder>.

The build takes ~47 min with -j2 on 2 shared cores: it is never part of `./lab.sh test`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from lab.errors import ImageError, LabError

REPO_ROOT = Path(__file__).resolve().parents[2]
FRAGMENT = REPO_ROOT / "images" / "debug" / "debug.config"
MODULE_LISTS = ["guest-modules.txt", "boot-modules.txt", "initramfs-modules.txt"]
SOURCE_PACKAGE = "linux-source-6.1"
# bump when the build steps change (the hash does not cover this file, so editing the
# image step does not throw away a built kernel)
BUILDER_VERSION = "2"
APT_LOCK = "/tmp/lanalab-apt.lock"
# modules the guest needs beyond the lists (veth and bridge for the tests, kmods the
# lists pull in)
EXTRA_MODULES = ["veth", "bridge", "virtio_blk", "virtio_pci", "ext4", "af_packet", "dummy"]


def cache_root() -> Path:
    return Path(os.environ.get("LANALAB_CACHE", "/var/cache/lanalab"))


def _run(argv: list[str | Path], cwd: Path | None = None, timeout: float | None = None,
         what: str = "", log: Path | None = None) -> str:
    """Run a step; with `log`, its output goes to that file (a compile is long: the log
    shows how far it got) and the error shows the log's tail."""
    if log is None:
        result = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True,
                                text=True,
                                stdin=subprocess.DEVNULL,  # kconfig must never wait for answers
                                timeout=timeout)
        output, returncode = result.stdout + result.stderr, result.returncode
    else:
        with log.open("w") as out:
            returncode = subprocess.run([str(a) for a in argv], cwd=cwd, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        timeout=timeout).returncode
        output = log.read_text(errors="replace")
    if returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise ImageError(f"{what or argv[0]} failed ({returncode}):\n{tail}",
                         "fix the cause above and run the command again (finished steps "
                         "are kept)")
    return output


def guest_release() -> str:
    """The Debian ABI the normal image uses (its config is the starting point)."""
    from lab.image import abi

    try:
        return abi.resolve_kernel_release()
    except LabError:
        pass  # no mirror: fall back to the newest installed headers
    headers = sorted(Path("/usr/src").glob("linux-headers-6.1.*-amd64"))
    if not headers:
        raise ImageError("no linux-headers-6.1.*-amd64 in /usr/src",
                         "run scripts/setup-host.sh")
    return headers[-1].name.removeprefix("linux-headers-")


def debian_config(release: str) -> Path:
    config = Path(f"/usr/src/linux-headers-{release}/.config")
    if not config.is_file():
        raise ImageError(f"{config} is missing", "install linux-headers-" + release)
    return config


def source_tarball() -> tuple[Path, str]:
    """/usr/src/linux-source-6.1.tar.xz, installed with apt (under the lab's apt lock)."""
    tarball = Path(f"/usr/src/{SOURCE_PACKAGE}.tar.xz")
    if not tarball.is_file():
        _run(["flock", APT_LOCK, "apt-get", "install", "-y", SOURCE_PACKAGE], timeout=3600,
             what=f"apt-get install {SOURCE_PACKAGE}")
    version = _run(["dpkg-query", "-W", "-f", "${Version}", SOURCE_PACKAGE]).strip()
    return tarball, version


def module_names() -> list[str]:
    """Modules named in the image's lists (folder patterns such as kernel/net/ are left
    out: the debug kernel carries only what the guest and the suites load)."""
    names = list(EXTRA_MODULES)
    for list_name in MODULE_LISTS:
        for line in (REPO_ROOT / "images" / list_name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not any(c in line for c in "*/?["):
                names.append(line.replace("-", "_"))
    return sorted(set(names))


def input_hash(source_version: str, config: Path) -> str:
    digest = hashlib.sha256()
    for label, data in (("builder", BUILDER_VERSION.encode()),
                        ("source", source_version.encode()), ("config", config.read_bytes()),
                        ("fragment", FRAGMENT.read_bytes()),
                        ("modules", "\n".join(module_names()).encode())):
        digest.update(f"{label}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()[:16]


def _fragment_options() -> dict[str, str]:
    """CONFIG_X -> value ('n' for 'is not set') as the fragment wants them."""
    wanted = {}
    for line in FRAGMENT.read_text().splitlines():
        if m := re.match(r"^(CONFIG_\w+)=(.*)$", line):
            wanted[m.group(1)] = m.group(2)
        elif m := re.match(r"^# (CONFIG_\w+) is not set$", line):
            wanted[m.group(1)] = "n"
    return wanted


def check_config(config_text: str) -> list[str]:
    """Fragment options olddefconfig dropped (a dependency missing): each one is a reason
    the debug kernel would not check what it should."""
    have = {}
    for line in config_text.splitlines():
        if m := re.match(r"^(CONFIG_\w+)=(.*)$", line):
            have[m.group(1)] = m.group(2)
    return [f"{key}={value} (got {have.get(key, 'n')})"
            for key, value in _fragment_options().items()
            if have.get(key, "n") != value and not (value == '""' and key not in have)]


def build(jobs: int, progress=print, configure_only: bool = False  # noqa: ANN001
          ) -> Path:
    """Build (or find cached) the debug kernel; returns its folder. `configure_only`
    stops after the checked .config (minutes, not hours)."""
    release = guest_release()
    config = debian_config(release)
    tarball, version = source_tarball()
    folder = cache_root() / "debug-kernel" / input_hash(version, config)
    if (folder / "manifest.json").is_file():
        progress(f"debug kernel cached in {folder}")
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "src"
    timings: dict[str, float] = {}
    started = time.monotonic()
    if not (src / "Makefile").is_file():
        progress(f"unpacking {tarball.name} ({version})")
        tmp = folder / "unpack"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with tarfile.open(tarball) as archive:
            archive.extractall(tmp, filter="data") if hasattr(tarfile, "data_filter") \
                else archive.extractall(tmp)  # noqa: S202 - Debian's own source package
        (inner,) = list(tmp.iterdir())
        os.replace(inner, src)
        shutil.rmtree(tmp)
    timings["unpack"] = time.monotonic() - started

    progress("configuring: Debian's config + images/debug/debug.config, trimmed to the "
             "guest's modules")
    shutil.copy2(config, src / ".config")
    lsmod = folder / "lsmod.txt"
    lsmod.write_text("Module Size Used by\n" +
                     "".join(f"{name} 0 0\n" for name in module_names()))
    # the suffix comes from CONFIG_LOCALVERSION (debug.config); LOCALVERSION= on the make
    # line would append it a second time
    make: list[str | Path] = ["make", "-C", src, f"-j{jobs}"]
    _run([*make, f"LSMOD={lsmod}", "localmodconfig"], timeout=600, what="localmodconfig")
    _run([src / "scripts/kconfig/merge_config.sh", "-m", "-O", src, src / ".config", FRAGMENT],
         cwd=src, timeout=600, what="merge_config.sh")
    _run([*make, "olddefconfig"], timeout=600, what="olddefconfig")
    dropped = check_config((src / ".config").read_text())
    if dropped:
        raise ImageError("the debug config lost options of images/debug/debug.config: "
                         + ", ".join(dropped),
                         "add the options they depend on to the fragment")
    timings["configure"] = time.monotonic() - started - sum(timings.values())
    if configure_only:
        progress(f"configured and checked: {src / '.config'} "
                 f"({timings['configure']:.0f} s); `build` compiles it")
        return folder

    progress(f"make -j{jobs} bzImage modules (log: {folder / 'build.log'})")
    _run([*make, "bzImage", "modules"], timeout=24 * 3600, what="kernel build",
         log=folder / "build.log")
    kernel_release = _run(["make", "-s", "-C", src, "kernelrelease"]).strip().splitlines()[-1]
    timings["compile"] = time.monotonic() - started - sum(timings.values())

    root = folder / "root"
    shutil.rmtree(root, ignore_errors=True)
    (root / "boot").mkdir(parents=True)
    _run([*make, f"INSTALL_MOD_PATH={root}", "INSTALL_MOD_STRIP=1", "modules_install"],
         timeout=3600, what="modules_install")
    shutil.copy2(src / "arch/x86/boot/bzImage", root / "boot" / f"vmlinuz-{kernel_release}")
    for link in ("build", "source"):  # the tree itself is KDIR for the LANA modules
        (root / "lib/modules" / kernel_release / link).unlink(missing_ok=True)
    _run(["depmod", "-a", "-b", root, kernel_release], timeout=600, what="depmod")
    (root / ".complete").write_text(kernel_release + "\n")
    timings["install"] = time.monotonic() - started - sum(timings.values())
    manifest = {"release": kernel_release, "debian_abi": release, "source": version,
                "fragment": str(FRAGMENT.relative_to(REPO_ROOT)), "kdir": str(src),
                "kernel_root": str(root), "jobs": jobs,
                "seconds": {k: round(v, 1) for k, v in timings.items()}}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    progress(f"debug kernel {kernel_release} built in {time.monotonic() - started:.0f} s: "
             f"{folder}")
    return folder


def debug_cmdline(cmdline: str) -> str:
    """The normal command line with loglevel 5: lockdep splats and WARN()s are KERN_WARNING
    (4), which loglevel=4 keeps off the console the lab watches. acpi=noirq: under TCG the
    checked AML interpreter runs qemu's _PRT loop into ACPICA's 30 s loop timeout once per
    virtio device (measured: 60 s of a 120 s boot); the PIIX router gives the same IRQs."""
    words = [w for w in cmdline.split() if not w.startswith("loglevel=")]
    return " ".join([*words, "loglevel=5", "acpi=noirq", "kmemleak=on"])


def present_rules(rules: list[str], kernel_root: Path, release: str) -> list[str]:
    """guest-modules.txt's rules minus the folders localmodconfig emptied (vxlan, bonding,
    wireguard, ...: the debug kernel builds only the modules named in the lists)."""
    from lab.image import kmods

    deps = kmods.read_deps(kernel_root / "lib/modules" / release)
    return [rule for rule in rules
            if not rule.endswith("/") or any(path.startswith(rule) for path in deps)]


def build_image(kernel_folder: Path, progress=print) -> Path:  # noqa: ANN001
    """The normal image recipe with the debug kernel (steps as in lab.image.build)."""
    from lab.image import disk, initramfs, kmods, lana, rootfs
    from lab.image.recipe import Recipe, recipe_digest

    kernel = json.loads((kernel_folder / "manifest.json").read_text())
    release, kdir, kernel_root = kernel["release"], Path(kernel["kdir"]), \
        Path(kernel["kernel_root"])
    recipe = Recipe.from_env()
    cmdline = debug_cmdline(recipe.cmdline)
    full_digest = hashlib.sha256((recipe_digest(recipe, release) + kernel_folder.name
                                  + cmdline).encode()).hexdigest()
    digest = full_digest[:16]
    out = cache_root() / "debug-image" / digest
    if (out / "manifest.json").is_file():
        progress(f"debug image cached in {out}")
        return out
    work = cache_root() / "debug-image" / f".work-{digest}"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "root"
    root.mkdir(parents=True)
    plan = rootfs.plan_rootfs(cache_root(), recipe.packages)
    if not plan.cached:
        raise ImageError("the rootfs tarball of the current recipe is not cached",
                         "run `lanalab image build` first, then this command again")
    progress("rootfs: unpack, overlay, guest modules of the debug kernel")
    rootfs.unpack_rootfs(plan.tarball, root)
    rootfs.install_overlay(recipe.images_dir / "rootfs", root)
    kmods.install_guest_modules(kernel_root, root, release,
                                present_rules(recipe.guest_modules, kernel_root, release))
    progress("LANA modules and tools against the debug tree")
    lana.build(recipe.kernel_dir, work / "lana", kdir)
    lana.install(work / "lana", kdir, release, root)
    kmods.depmod(root, release)
    _run(["gcc", "-static", "-Os", "-s", "-Wall", "-o", root / "sbin" / "lanalab-init",
          recipe.images_dir / "init" / "lanalab-init.c"], timeout=300, what="lanalab-init")
    for name in ("shutdown", "poweroff", "halt", "reboot", "init"):
        link = root / "sbin" / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("lanalab-init")
    out_tmp = work / "out"
    out_tmp.mkdir()
    progress("initramfs and disk")
    initramfs.build_initramfs(out_tmp / "initrd.img", kernel_root, release,
                              recipe.initramfs_modules, recipe.images_dir / "initramfs" / "init",
                              root, recipe.boot_modules, loader=root / "sbin" / "lanalab-init")
    # the file system UUID comes from the digest: it needs all 32+ hex digits
    disk.make_rootfs_disk(root, out_tmp / "rootfs.qcow2", full_digest, work)
    shutil.copy2(kernel_root / "boot" / f"vmlinuz-{release}", out_tmp / "vmlinuz")
    (out_tmp / "manifest.json").write_text(json.dumps(
        {"digest": digest, "kernel_release": release, "cmdline": cmdline, "debug": True,
         "debug_kernel": kernel}, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(out_tmp, out)
    shutil.rmtree(work, ignore_errors=True)
    progress(f"debug image in {out}; boot it with LANALAB_IMAGE_DIR={out}")
    return out


def status() -> int:
    base = cache_root()
    for kind in ("debug-kernel", "debug-image"):
        folders = sorted((base / kind).glob("*/manifest.json")) if (base / kind).is_dir() \
            else []
        if not folders:
            print(f"{kind}: none built (python -m lab.image.debug_kernel "
                  f"{'build' if kind == 'debug-kernel' else 'image'})")
        for manifest in folders:
            data = json.loads(manifest.read_text())
            print(f"{kind}: {manifest.parent}  {data.get('release') or data.get('kernel_release')}"
                  f"  {data.get('seconds', '')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.image.debug_kernel",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="build the debug kernel (~47 min at -j2), or find it cached")
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    i = sub.add_parser("image", help="build the debug kernel if needed, then the image")
    i.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    i.add_argument("--print-dir", action="store_true", help="print only the image folder")
    c = sub.add_parser("configure", help="only fetch, unpack, configure and check the "
                       "config (minutes)")
    c.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    sub.add_parser("status", help="what is built and cached")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 and args.action != "status":
        print("debug_kernel: needs root (apt-get, the image cache)", file=sys.stderr)
        return 1
    try:
        if args.action == "status":
            return status()
        quiet = getattr(args, "print_dir", False)
        say = (lambda _m: None) if quiet else (lambda m: print(f"[debug-kernel] {m}",
                                                               flush=True))
        folder = build(args.jobs, say, configure_only=args.action == "configure")
        if args.action == "image":
            out = build_image(folder, say)
            if quiet:
                print(out)
        return 0
    except LabError as exc:
        print(f"debug_kernel: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
