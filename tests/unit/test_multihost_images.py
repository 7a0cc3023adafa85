"""The pure parts of lab.multihost.images (volume names, stamps, digests and their cache, the
pool and volume XML, checked against libvirt's schemas), a remote VM's domain XML, and the
`libvirt-volume` run record through libvirt's in-process test driver (real libvirt API, no
daemon). The uploads themselves run against real daemons in
tests/multihost/test_image_upload.py."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.multihost import images
from lab.multihost.images import (
    ImageFile,
    file_sha256,
    image_files,
    overlay_xml,
    parse_stamp,
    pool_xml,
    run_volume_name,
    stamp_name,
    stamp_text,
    volume_name,
    volume_xml,
)
from lab.runstate import RunRecord, clean
from lab.vm.libvirt_xml import DomainSpec, domain_xml

SHA = "3f2a" + "0" * 56 + "beef"


@pytest.fixture()
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANALAB_RUN_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_volume_names_carry_the_digest() -> None:
    assert volume_name(SHA, "rootfs") == "3f2a00000000-rootfs.qcow2"
    assert volume_name(SHA, "kernel") == "3f2a00000000-vmlinuz"
    assert volume_name(SHA, "initrd") == "3f2a00000000-initrd.img"
    assert stamp_name("3f2a00000000-vmlinuz") == "3f2a00000000-vmlinuz.sha256"
    assert run_volume_name("lab1a2b", "vm3", "overlay.qcow2") == "lab1a2b-vm3-overlay.qcow2"
    for bad in ("", "3f2a", "XYZ" * 20, SHA.upper()):
        with pytest.raises(ValueError):
            volume_name(bad, "rootfs")
    with pytest.raises(KeyError):
        volume_name(SHA, "swap")


def test_stamp_round_trip() -> None:
    assert parse_stamp(stamp_text(SHA, 284688384)) == (SHA, 284688384)
    for bad in ("", "sha256 x", f"md5 {SHA} size 1", f"sha256 {SHA} size -1",
                f"sha256 {SHA} bytes 1", "\0" * 64):
        assert parse_stamp(bad) is None


def test_file_digest_is_computed_once(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "vmlinuz"
    path.write_bytes(b"kernel")
    before = images.hash_count
    first = file_sha256(path)
    assert file_sha256(path) == first == hashlib.sha256(b"kernel").hexdigest()
    assert images.hash_count == before + 1
    path.write_bytes(b"another kernel")  # new size and mtime: hashed again
    assert file_sha256(path) == hashlib.sha256(b"another kernel").hexdigest()
    assert images.hash_count == before + 2


def _image(folder: Path, manifest: dict[str, object]) -> SimpleNamespace:
    for name, data in (("vmlinuz", b"k"), ("initrd.img", b"ii"), ("rootfs.qcow2", b"rrr")):
        (folder / name).write_bytes(data)
    return SimpleNamespace(kernel=folder / "vmlinuz", initrd=folder / "initrd.img",
                           rootfs=folder / "rootfs.qcow2", manifest=manifest)


def test_image_files_trust_the_manifest_at_the_listed_size(tmp_path: Path) -> None:
    listed = {"vmlinuz": {"sha256": "a" * 64, "size": 1},
              "initrd.img": {"sha256": "b" * 64, "size": 2},
              "rootfs.qcow2": {"sha256": "c" * 64, "size": 3}}
    image = _image(tmp_path, {"files": listed})
    before = images.hash_count
    files = image_files(image)
    assert images.hash_count == before  # nothing hashed: the build's digests count
    assert [(f.role, f.sha256[0], f.size) for f in files] == [
        ("kernel", "a", 1), ("initrd", "b", 2), ("rootfs", "c", 3)]
    assert files[2].volume == "cccccccccccc-rootfs.qcow2"


def test_image_files_hash_what_the_manifest_does_not_vouch_for(tmp_path: Path) -> None:
    import hashlib

    image = _image(tmp_path, {"files": {"rootfs.qcow2": {"sha256": "c" * 64, "size": 99}}})
    files = {f.role: f for f in image_files(image)}  # rootfs: wrong size; others: unlisted
    assert files["rootfs"].sha256 == hashlib.sha256(b"rrr").hexdigest()
    assert files["kernel"].sha256 == hashlib.sha256(b"k").hexdigest()
    bare = SimpleNamespace(kernel=image.kernel, initrd=image.initrd, rootfs=image.rootfs)
    assert [f.sha256 for f in image_files(bare)] == [f.sha256 for f in files.values()]


def _validate(kind: str, xml: str, tmp_path: Path) -> None:
    if shutil.which("virt-xml-validate") is None:
        pytest.skip("virt-xml-validate (libvirt-clients) is not installed")
    path = tmp_path / f"{kind}.xml"
    path.write_text(xml)
    done = subprocess.run(["virt-xml-validate", str(path), kind], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr + done.stdout


def test_pool_xml(tmp_path: Path) -> None:
    xml = pool_xml()
    root = ET.fromstring(xml)
    assert root.get("type") == "dir" and root.findtext("name") == "lanalab"
    assert root.findtext("target/path") == "/var/lib/libvirt/lanalab"
    _validate("storagepool", xml, tmp_path)


def test_volume_and_overlay_xml(tmp_path: Path) -> None:
    vol = ET.fromstring(volume_xml("3f2a00000000-rootfs.qcow2", 284688384))
    assert vol.findtext("capacity") == "284688384" and vol.findtext("allocation") == "0"
    assert vol.find("target/format").get("type") == "raw"  # type: ignore[union-attr]
    _validate("storagevol", volume_xml("x", 0), tmp_path)
    over = ET.fromstring(overlay_xml("lab1a2b-vm3-overlay.qcow2", "/p/3f2a-rootfs.qcow2"))
    assert over.find("capacity") is None  # the backing's size
    assert over.find("target/format").get("type") == "qcow2"  # type: ignore[union-attr]
    assert over.findtext("backingStore/path") == "/p/3f2a-rootfs.qcow2"
    assert over.find("backingStore/format").get("type") == "qcow2"  # type: ignore[union-attr]
    _validate("storagevol", ET.tostring(over, encoding="unicode"), tmp_path)


def test_remote_domain_names_host_paths_and_lets_libvirt_place_the_agent(
        tmp_path: Path) -> None:
    pool = Path("/var/lib/libvirt/lanalab")
    spec = DomainSpec(name="lab1a2b-vm3", vm_name="vm3", kernel=pool / "85667e6c7224-vmlinuz",
                      initrd=pool / "ddf03a133e7d-initrd.img", cmdline="console=ttyS0",
                      overlay=pool / "lab1a2b-vm3-overlay.qcow2",
                      console_log=pool / "lab1a2b-vm3-console.log", qga_socket=None)
    xml = domain_xml(spec)
    dom = ET.fromstring(xml)
    source = dom.find("devices/channel/source")
    assert source is not None and source.attrib == {"mode": "bind"}
    assert dom.findtext("os/kernel") == str(pool / "85667e6c7224-vmlinuz")
    assert dom.find("devices/serial/source").get("path") == str(  # type: ignore[union-attr]
        pool / "lab1a2b-vm3-console.log")
    _validate("domain", xml, tmp_path)


def test_image_file_volume() -> None:
    f = ImageFile("initrd", Path("/x/initrd.img"), SHA, 7)
    assert f.volume == "3f2a00000000-initrd.img"


def test_clean_deletes_recorded_run_volumes_only(base: Path) -> None:
    libvirt = pytest.importorskip("libvirt")
    uri = "test:///default"  # the test driver: its pools and volumes live in this process
    conn = libvirt.open(uri)
    try:
        pool = images.ensure_pool(conn, "lanalab", "/lanalab-unit-test-pool")
        assert pool.isActive() and pool.autostart()
        assert images.ensure_pool(conn, "lanalab", "/elsewhere").name() == "lanalab"
        run = RunRecord.create()
        mine = run_volume_name(run.prefix, "vm1", "overlay.qcow2")
        images.create_run_volume(run, conn, pool, mine, volume_xml(mine, 4096))
        with pytest.raises(images.HostImageError, match="lacks the run prefix"):
            images.create_run_volume(run, conn, pool, "shared.qcow2", volume_xml("s", 1))
        # a record naming a volume without the run prefix (an image volume) is refused
        pool.createXML(volume_xml(volume_name(SHA, "rootfs"), 4096), 0)
        run.record("libvirt-volume", uri=uri, pool="lanalab", name=volume_name(SHA, "rootfs"))
        report = clean(run.id)
        assert report.errors == [], report.errors
        assert any(mine in item for item in report.removed)
        assert any(volume_name(SHA, "rootfs") in item for item in report.refused)
        names = pool.listVolumes()
        assert mine not in names and volume_name(SHA, "rootfs") in names
        assert clean(run.id).already_gone == [f"run {run.id}"]
    finally:
        for name in conn.storagePoolLookupByName("lanalab").listVolumes():
            conn.storagePoolLookupByName("lanalab").storageVolLookupByName(name).delete(0)
        conn.close()
