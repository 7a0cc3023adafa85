"""Fixtures the VM runtime tests of both backends share."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lab.vm.image import GuestImage, ImageFolder, find_image


@pytest.fixture(scope="module")
def vm_image(request: pytest.FixtureRequest) -> GuestImage:
    """The image under LANALAB_IMAGE_DIR if set, else the project's (conftest `image`)."""
    if os.environ.get("LANALAB_IMAGE_DIR"):
        return find_image()
    image: GuestImage = request.getfixturevalue("image")
    return image


@pytest.fixture
def panicking_image(vm_image: GuestImage, tmp_path: Path) -> ImageFolder:
    """The real kernel and root filesystem with a junk initrd: the kernel cannot mount a
    root and panics at boot."""
    broken = tmp_path / "broken-image"
    broken.mkdir()
    (broken / "vmlinuz").symlink_to(vm_image.kernel)
    (broken / "rootfs.qcow2").symlink_to(vm_image.rootfs)
    (broken / "initrd.img").write_bytes(b"not a cpio archive\n" * 64)
    (broken / "manifest.json").write_text(json.dumps({"cmdline": vm_image.cmdline}))
    return ImageFolder.load(broken)
