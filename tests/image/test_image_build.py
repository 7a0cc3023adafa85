"""A real, cold image build into a temporary $LANALAB_CACHE (minutes: mmdebstrap, the
kernel download, the LANA build), then a warm one that must do nothing.

Runs only when asked: LANALAB_TEST_IMAGE_BUILD=1 (the rest of the suite boots the image
of the normal cache anyway). Needs root, the host packages and the Debian mirror.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from lab.image.abi import resolve_kernel_release
from lab.image.build import build_image
from lab.image.manifest import verify_files
from lab.image.store import ImageInfo, list_images

pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
    pytest.mark.skipif(os.environ.get("LANALAB_TEST_IMAGE_BUILD") != "1",
                       reason="a cold image build takes minutes: set LANALAB_TEST_IMAGE_BUILD=1"),
]


@pytest.fixture(scope="module")
def cold_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[ImageInfo, list[str], float]:
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("LANALAB_CACHE")
    os.environ["LANALAB_CACHE"] = str(cache)
    lines: list[str] = []
    start = time.monotonic()
    try:
        info = build_image(force=False, progress=lines.append)
        yield info, lines, time.monotonic() - start
    finally:
        if old is None:
            os.environ.pop("LANALAB_CACHE", None)
        else:
            os.environ["LANALAB_CACHE"] = old


def debugfs(raw: Path, request: str) -> str:
    return subprocess.run(["debugfs", "-R", request, str(raw)], capture_output=True,
                          text=True, check=True).stdout


def test_cold_build_makes_a_complete_verified_image(cold_build) -> None:
    info, lines, _ = cold_build
    manifest = info.manifest
    assert verify_files(info.path, manifest) == []
    assert manifest["kernel_release"] == resolve_kernel_release()
    assert info.path.name == manifest["digest"][:16]
    assert "net.ifnames=0" in info.cmdline
    assert "qemu-guest-agent" in manifest["packages"]
    assert "netsniff-ng" in manifest["packages"]
    if manifest["lana"]["built"]:
        assert "lana" in manifest["lana"]["modules"]
        assert {"fbctl", "vlink"} <= set(manifest["lana"]["tools"])
    assert {"kernel", "rootfs", "lana", "lana-install", "disk"} <= set(manifest["durations"])
    assert any(line.startswith("[1/10] kernel") for line in lines)
    assert any("mmdebstrap started in the background" in line for line in lines)
    assert list_images()[0].path == info.path


def test_root_disk_holds_init_modules_and_tools(cold_build, tmp_path: Path) -> None:
    info, _, _ = cold_build
    raw = tmp_path / "root.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(info.rootfs), str(raw)], check=True)
    release = info.manifest["kernel_release"]
    # merged /usr: /sbin is a link to usr/sbin
    assert "lanalab-init" in debugfs(raw, "ls /usr/sbin")
    assert "lanalab-init" in debugfs(raw, "stat /usr/sbin/shutdown")  # a symlink to it
    assert "rc" in debugfs(raw, "ls /etc/lanalab")
    modules = debugfs(raw, f"ls /usr/lib/modules/{release}")
    assert "modules.dep" in modules
    if info.manifest["lana"]["built"]:
        assert "lana.ko" in debugfs(raw, f"ls /usr/lib/modules/{release}/extra/lana")
        assert "fbctl" in debugfs(raw, "ls /usr/local/sbin")


def test_initramfs_holds_busybox_init_and_root_modules(cold_build) -> None:
    info, _, _ = cold_build
    listing = subprocess.run(["cpio", "-t", "--quiet"], stdin=info.initrd.open("rb"),
                             capture_output=True, text=True, check=True).stdout.split()
    assert {"init", "bin/busybox", "bin/load-modules", "modules.load",
            "modules.boot"} <= set(listing)
    assert "lib/modules/ext4.ko" in listing and "lib/modules/virtio_blk.ko" in listing
    assert info.initrd.stat().st_size < 8 * 1024 * 1024


def test_warm_build_does_no_work(cold_build) -> None:
    info, _, _ = cold_build
    before = info.rootfs.stat().st_mtime_ns
    lines: list[str] = []
    start = time.monotonic()
    again = build_image(force=False, progress=lines.append)
    assert time.monotonic() - start < 5  # < 2 s measured; slack for a loaded host
    assert again.path == info.path
    assert info.rootfs.stat().st_mtime_ns == before
    assert len(lines) == 1 and "up to date" in lines[0]
