"""Smaller parts of the image build: the host's apt sources, disk sizing, progress lines."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lab.errors import ImageError
from lab.image.disk import HEADROOM, disk_size
from lab.image.progress import StepTimer
from lab.image.rootfs import host_apt_sources, mmdebstrap_argv, rootfs_key

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm
Components: main
Enabled: no
"""


def test_host_sources_keep_only_enabled_bookworm_entries(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "extra.list").write_text(
        "deb [arch=amd64] http://proxy.local/debian-security bookworm-security main\n"
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
        "# deb http://old/ bookworm main\n")
    (tmp_path / "sources.list.d" / "off.list.disabled").write_text("deb http://x/ bookworm main\n")
    stanzas, lines = host_apt_sources(tmp_path)
    assert "deb.debian.org/debian" in stanzas
    assert "nodesource" not in stanzas and "mirror.example" not in stanzas
    assert "snapshot" not in stanzas  # comments dropped
    assert lines == "deb [arch=amd64] http://proxy.local/debian-security bookworm-security main"


def test_no_bookworm_source_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://x/ trixie main\n")
    with pytest.raises(ImageError, match="bookworm"):
        host_apt_sources(tmp_path)


def test_rootfs_key_follows_the_package_list() -> None:
    sources = ("Types: deb", "")
    key = rootfs_key(["kmod", "iproute2"], sources, [])
    assert key == rootfs_key(["kmod", "iproute2"], sources, [])
    assert key != rootfs_key(["kmod", "iproute2", "jq"], sources, [])
    assert key != rootfs_key(["kmod", "iproute2"], sources, ['Acquire::http::Proxy "x";'])


def test_mmdebstrap_argv_is_minbase_with_the_host_mirror(tmp_path: Path) -> None:
    argv = mmdebstrap_argv(["kmod", "python3"], ['Acquire::Check-Valid-Until "false";'],
                           [tmp_path / "host.sources"], tmp_path / "r.tar")
    assert argv[:2] == ["mmdebstrap", "--variant=minbase"]
    assert "--include=kmod,python3" in argv
    assert '--aptopt=Acquire::Check-Valid-Until "false";' in argv
    assert argv[-3:] == ["bookworm", str(tmp_path / "r.tar"), str(tmp_path / "host.sources")]


def test_disk_leaves_the_headroom(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(bytes(3 * 1024 * 1024))
    size = disk_size(tmp_path)
    assert size % (1024 * 1024) == 0
    assert size >= 3 * 1024 * 1024 + HEADROOM


def test_step_timer_reports_start_heartbeat_and_duration() -> None:
    lines: list[str] = []
    timer = StepTimer(lines.append, total=2, heartbeat=0.05)
    with timer.step("rootfs", "mmdebstrap", waiting_for="the mirror"):
        time.sleep(0.18)
    with timer.step("disk", "mke2fs"):
        pass
    assert lines[0] == "[1/2] rootfs: mmdebstrap (waiting for the mirror)"
    assert any("still waiting for the mirror" in line for line in lines[1:-2])
    assert lines[-1].startswith("[2/2] disk: done in ")
    assert set(timer.durations) == {"rootfs", "disk"} and timer.durations["rootfs"] >= 0.18


def test_old_build_inputs_are_pruned(tmp_path: Path) -> None:
    import os

    from lab.image.build import BuildContext, _prune_inputs
    from lab.image.recipe import Recipe
    from lab.image.rootfs import RootfsPlan

    cache = tmp_path
    (cache / "rootfs").mkdir()
    (cache / "debs").mkdir()
    for n, name in enumerate(["old1", "old2", "current"]):
        (cache / "rootfs" / f"{name}.tar").write_text(name)
        os.utime(cache / "rootfs" / f"{name}.tar", (n + 1, n + 1))
    for n, release in enumerate(["6.1.0-9-amd64", "6.1.0-55-amd64", "6.1.0-56-amd64"]):
        (cache / "kernels" / release / "boot").mkdir(parents=True)
        (cache / "debs" / f"linux-image-{release}_1_amd64.deb").write_text(release)
        os.utime(cache / "kernels" / release, (n + 1, n + 1))
        os.utime(cache / "debs" / f"linux-image-{release}_1_amd64.deb", (n + 1, n + 1))
    ctx = BuildContext(Recipe(), "6.1.0-9-amd64", "0" * 64, cache, tmp_path / "w",
                       StepTimer(lambda _: None, 1))
    ctx.rootfs_plan = RootfsPlan(cache / "rootfs" / "old1.tar", [], ("", ""), [])
    removed = {p.relative_to(cache).as_posix() for p in _prune_inputs(ctx)}
    # what this build used is kept (now the most recent), plus the newest other one
    assert removed == {"rootfs/old2.tar", "kernels/6.1.0-55-amd64",
                       "debs/linux-image-6.1.0-55-amd64_1_amd64.deb"}
    assert (cache / "rootfs" / "old1.tar").exists() and (cache / "rootfs" / "current.tar").exists()
