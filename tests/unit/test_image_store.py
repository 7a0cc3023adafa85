"""Manifest round trip, the store's lookups, and export/import on a small fake store."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from lab.errors import ImageError
from lab.image.archive import export_image, import_image
from lab.image.manifest import load_manifest, verify_files, write_manifest
from lab.image.store import ImageInfo, list_images, resolve_image

DIGEST_A = "a" * 8 + "0123456789abcdef" * 3 + "b" * 8
DIGEST_B = "b" * 64


def fake_image(cache: Path, digest: str, built_at: str) -> Path:
    folder = cache / "images" / digest[:16]
    folder.mkdir(parents=True)
    (folder / "vmlinuz").write_bytes(b"kernel " + digest.encode())
    (folder / "initrd.img").write_bytes(b"070701 initrd")
    (folder / "rootfs.qcow2").write_bytes(b"QFI\xfb" + bytes(4096))
    write_manifest(folder, {"digest": digest, "kernel_release": "6.1.0-56-amd64",
                            "cmdline": "console=ttyS0 root=/dev/vda", "built_at": built_at})
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LANALAB_CACHE", str(cache))
    # no apt involved: resolve_image(None) must fall back to the newest image
    monkeypatch.setattr("lab.image.store.current_digest", lambda: "c" * 64)
    return cache


def test_manifest_round_trip_and_checksums(tmp_path: Path) -> None:
    folder = fake_image(tmp_path, DIGEST_A, "2026-01-01T00:00:00+00:00")
    manifest = load_manifest(folder)
    assert manifest["digest"] == DIGEST_A
    assert set(manifest["files"]) == {"vmlinuz", "initrd.img", "rootfs.qcow2"}
    assert manifest["files"]["initrd.img"]["size"] == len(b"070701 initrd")
    assert verify_files(folder, manifest) == []
    (folder / "initrd.img").write_bytes(b"070701 INITRD")  # same size, other bytes
    assert verify_files(folder, manifest) == ["initrd.img: sha256 does not match the manifest"]
    (folder / "vmlinuz").unlink()
    assert "vmlinuz: missing" in verify_files(folder, manifest)


def test_broken_manifest_says_what_to_do(tmp_path: Path) -> None:
    folder = fake_image(tmp_path, DIGEST_A, "2026-01-01T00:00:00+00:00")
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ImageError, match="lanalab image build"):
        load_manifest(folder)


def test_store_lists_newest_first_and_resolves_prefixes(cache: Path) -> None:
    fake_image(cache, DIGEST_A, "2026-01-01T00:00:00+00:00")
    fake_image(cache, DIGEST_B, "2026-02-01T00:00:00+00:00")
    (cache / "images" / ".build-x1").mkdir()  # an unfinished build is not an image
    assert [i.digest for i in list_images()] == [DIGEST_B, DIGEST_A]
    assert resolve_image().digest == DIGEST_B
    assert resolve_image("aaaa").digest == DIGEST_A
    info = resolve_image(str(cache / "images" / DIGEST_A[:16]))
    assert info.kernel.name == "vmlinuz" and info.cmdline.startswith("console=ttyS0")
    with pytest.raises(ImageError, match="image list"):
        resolve_image("ffff")


def test_empty_store_tells_to_build(cache: Path) -> None:
    with pytest.raises(ImageError, match="lanalab image build"):
        resolve_image()


@pytest.mark.parametrize("name", ["image.tar.zst", "image.tar"])
def test_export_import_round_trip(cache: Path, tmp_path: Path, name: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if name.endswith(".zst") and shutil.which("zstd") is None:
        pytest.skip("zstd not installed")
    source = fake_image(cache, DIGEST_A, "2026-01-01T00:00:00+00:00")
    archive = export_image(DIGEST_A[:8], tmp_path / name)
    head = archive.read_bytes()[:4]
    assert (head == b"\x28\xb5\x2f\xfd") == name.endswith(".zst")

    monkeypatch.setenv("LANALAB_CACHE", str(tmp_path / "other"))
    info = import_image(archive)
    assert info.path == tmp_path / "other" / "images" / DIGEST_A[:16]
    for f in ("vmlinuz", "initrd.img", "rootfs.qcow2", "manifest.json"):
        assert (info.path / f).read_bytes() == (source / f).read_bytes()
    assert [i.digest for i in list_images()] == [DIGEST_A]
    assert not [p for p in (tmp_path / "other" / "images").iterdir() if p.name.startswith(".")]


def test_import_rejects_a_tampered_archive(cache: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    source = fake_image(cache, DIGEST_A, "2026-01-01T00:00:00+00:00")
    (source / "rootfs.qcow2").write_bytes(b"QFI\xfb" + b"\x01" * 4096)  # after the manifest
    with pytest.raises(ImageError, match="damaged"):
        export_image(None, tmp_path / "x.tar")
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        tar.add(source, arcname=source.name)
    monkeypatch.setenv("LANALAB_CACHE", str(tmp_path / "other"))
    with pytest.raises(ImageError, match="fails its checksums"):
        import_image(bad)
    assert list_images() == []


def test_import_rejects_foreign_members(cache: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    payload = tmp_path / "payload"
    payload.write_text("x")
    with tarfile.open(evil, "w") as tar:
        tar.add(payload, arcname="img/../../etc/passwd")
    with pytest.raises(ImageError, match="not part of a lab image"):
        import_image(evil)


def test_image_info_needs_all_files(cache: Path) -> None:
    folder = fake_image(cache, DIGEST_A, "2026-01-01T00:00:00+00:00")
    (folder / "initrd.img").unlink()
    with pytest.raises(ImageError, match="initrd.img"):
        ImageInfo.load(folder)
    assert json.loads((folder / "manifest.json").read_text())["digest"] == DIGEST_A


def test_prune_keeps_the_newest_and_the_recent(cache: Path) -> None:
    from lab.image.store import prune_images

    digests = [f"{n:x}" * 64 for n in range(1, 7)]
    for n, digest in enumerate(digests):
        folder = fake_image(cache, digest[:64], f"2026-01-0{n + 1}T00:00:00+00:00")
        if n != 0:  # the oldest one was "built" a minute ago: spared
            os.utime(folder / "manifest.json", (1, 1))
    removed = prune_images(keep=2, min_age=3600)
    assert sorted(p.name for p in removed) == sorted(d[:16] for d in digests[1:4])
    assert {i.digest for i in list_images()} == {digests[0][:64], digests[4][:64],
                                                  digests[5][:64]}


def test_prune_spares_an_image_a_process_has_open(cache: Path) -> None:
    from lab.image.store import prune_images

    old = fake_image(cache, "d" * 64, "2026-01-01T00:00:00+00:00")
    os.utime(old / "manifest.json", (1, 1))
    fake_image(cache, "e" * 64, "2026-02-01T00:00:00+00:00")
    with (old / "rootfs.qcow2").open("rb"):  # as a running qemu holds its backing file
        assert prune_images(keep=1, min_age=0) == []
    assert prune_images(keep=1, min_age=0) == [old]


@pytest.mark.parametrize("name", ["image.tar.zst", "image.tar"])
def test_import_rejects_a_truncated_archive(cache: Path, tmp_path: Path, name: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    if name.endswith(".zst") and shutil.which("zstd") is None:
        pytest.skip("zstd not installed")
    source = fake_image(cache, DIGEST_A, "2026-01-01T00:00:00+00:00")
    (source / "rootfs.qcow2").write_bytes(os.urandom(256 * 1024))  # incompressible
    write_manifest(source, load_manifest(source))
    archive = export_image(None, tmp_path / name)
    truncated = tmp_path / f"cut-{name}"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    monkeypatch.setenv("LANALAB_CACHE", str(tmp_path / "other"))
    with pytest.raises(ImageError, match="copy the archive again"):
        import_image(truncated)
    assert list((tmp_path / "other" / "images").iterdir()) == []
