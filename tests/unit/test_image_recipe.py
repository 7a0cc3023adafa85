"""The content digest: same inputs give the same digest, any input change a new one,
build outputs of kernel/ do not count."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab.image.recipe import REPO_ROOT, Recipe, read_list, recipe_digest

RELEASE = "6.1.0-56-amd64"


@pytest.fixture
def recipe(tmp_path: Path) -> Recipe:
    images = tmp_path / "images"
    shutil.copytree(REPO_ROOT / "images", images)
    kernel = tmp_path / "kernel"
    (kernel / "core").mkdir(parents=True)
    (kernel / "Makefile").write_text("all:\n")
    (kernel / "core" / "main.c").write_text("int x;\n")
    return Recipe(images_dir=images, kernel_dir=kernel)


def test_same_inputs_same_digest(recipe: Recipe) -> None:
    assert recipe_digest(recipe, RELEASE) == recipe_digest(recipe, RELEASE)
    assert len(recipe_digest(recipe, RELEASE)) == 64


def test_build_outputs_do_not_change_the_digest(recipe: Recipe) -> None:
    before = recipe_digest(recipe, RELEASE)
    core = recipe.kernel_dir / "core"
    for name in ("main.o", "lana.ko", ".main.o.cmd", "lana.mod.c", "modules.order"):
        (core / name).write_bytes(b"junk")
    (recipe.kernel_dir / "Module.symvers").write_text("")
    (recipe.kernel_dir / "fbctl").write_bytes(b"\x7fELF binary")
    (recipe.kernel_dir / "README.md").write_text("prose\n")
    (recipe.kernel_dir / "xdp").mkdir()  # eBPF programs: compiled on the host per run
    (recipe.kernel_dir / "xdp" / "xdp_drop.bpf.c").write_text("int p;\n")
    (recipe.images_dir / "README.md").write_text("other prose\n")
    assert recipe_digest(recipe, RELEASE) == before


@pytest.mark.parametrize("change", ["source", "package", "init", "release", "skip_lana",
                                    "mode"])
def test_each_input_changes_the_digest(recipe: Recipe, change: str) -> None:
    before = recipe_digest(recipe, RELEASE)
    release = RELEASE
    if change == "source":
        (recipe.kernel_dir / "core" / "main.c").write_text("int y;\n")
    elif change == "package":
        with (recipe.images_dir / "packages.txt").open("a") as f:
            f.write("jq\n")
    elif change == "init":
        (recipe.images_dir / "init" / "lanalab-init.c").write_text("/* changed */\n")
    elif change == "release":
        release = "6.1.0-57-amd64"
    elif change == "skip_lana":
        recipe = Recipe(recipe.images_dir, recipe.kernel_dir, skip_lana=True)
    elif change == "mode":
        (recipe.images_dir / "cmdline.txt").chmod(0o755)
    assert recipe_digest(recipe, release) != before


def test_builder_code_is_an_input(recipe: Recipe, tmp_path: Path) -> None:
    builder = tmp_path / "builder"
    builder.mkdir()
    (builder / "build.py").write_text("v = 1\n")
    before = recipe_digest(recipe, RELEASE, builder_dir=builder)
    (builder / "build.py").write_text("v = 2\n")
    assert recipe_digest(recipe, RELEASE, builder_dir=builder) != before


def test_recipe_lists_skip_comments_and_blanks(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("# heading\n\nqemu-guest-agent\n  kmod   # inline comment\n")
    assert read_list(path) == ["qemu-guest-agent", "kmod"]


def test_the_real_recipe_has_what_the_guest_needs() -> None:
    recipe = Recipe()
    for package in ("qemu-guest-agent", "iproute2", "kmod", "python3", "tcpdump",
                    "netsniff-ng", "util-linux", "iputils-ping"):
        assert package in recipe.packages
    assert "net.ifnames=0" in recipe.cmdline.split()
    assert "root=/dev/vda" in recipe.cmdline.split()
    assert {"virtio_pci", "virtio_blk", "ext4"} <= set(recipe.initramfs_modules)
