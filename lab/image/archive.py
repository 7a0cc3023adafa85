"""Move an image between machines: one tar archive (zstd-compressed when zstd is there)
holding the image folder, checked against its manifest's sha256 sums on import.

Division of labour: `export_image` refuses to pack an image whose files no longer match
its manifest; `import_image` unpacks into a temporary folder of the store, accepts only
the files an image has (no paths, links or devices from the archive), verifies them, and
renames the folder into place, so a bad or truncated archive never becomes an image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import IO

from lab.errors import ImageError
from lab.image.manifest import MANIFEST, OUTPUT_FILES, load_manifest, verify_files
from lab.image.store import ImageInfo, image_dir, images_root, resolve_image

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _use_zstd(dest: Path) -> bool:
    if dest.name.endswith(".tar"):
        return False
    return shutil.which("zstd") is not None


def _write_tar(out: IO[bytes], info: ImageInfo) -> None:
    names = dict.fromkeys([MANIFEST, *OUTPUT_FILES, *info.manifest.get("files", {})])
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            member = tar.gettarinfo(info.path / name, arcname=f"{info.path.name}/{name}")
            member.uid = member.gid = 0
            member.uname = member.gname = "root"
            with (info.path / name).open("rb") as f:
                tar.addfile(member, f)


def export_image(ref: str | None, dest: Path) -> Path:
    """Write the image named by ref (None: the current one) to the archive dest."""
    info = resolve_image(ref)
    problems = verify_files(info.path, info.manifest)
    if problems:
        raise ImageError(f"image `{info.path.name}` is damaged ({'; '.join(problems)})",
                         "rebuild it with `lanalab image build --force`")
    dest = dest.resolve()
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        if _use_zstd(dest):
            with tmp.open("wb") as raw:
                zstd = subprocess.Popen(["zstd", "-q", "-3", "-T0", "-c"],
                                        stdin=subprocess.PIPE, stdout=raw)
                assert zstd.stdin is not None
                with zstd.stdin:
                    _write_tar(zstd.stdin, info)
                if zstd.wait() != 0:
                    raise ImageError(f"zstd failed while writing {dest}",
                                     "check the free space there, or export to a .tar")
        else:
            with tmp.open("wb") as raw:
                _write_tar(raw, info)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _check_member(member: tarfile.TarInfo, top: list[str]) -> None:
    parts = member.name.strip("/").split("/")
    if member.isdir() and len(parts) == 1:
        top.append(parts[0])
        return
    if len(parts) != 2 or not _PLAIN_NAME.match(parts[1]) or not member.isfile():
        raise ImageError(f"archive member `{member.name}` is not part of a lab image",
                         "import only archives made by `lanalab image export`")
    top.append(parts[0])


_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")


def _extract(stream: IO[bytes], dest: Path) -> Path:
    top: list[str] = []
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            _check_member(member, top)
            # _check_member admits plain files with plain names only; the "data" filter is a
            # second guard where this Python has it (3.11.4+; Debian 12 ships 3.11.2)
            if _HAS_DATA_FILTER:
                tar.extract(member, dest, filter="data")
            else:
                tar.extract(member, dest)
    names = set(top)
    if len(names) != 1:
        raise ImageError(f"archive holds {len(names)} image folders, expected one",
                         "import only archives made by `lanalab image export`")
    return dest / names.pop()


def _unpack(archive: Path, dest: Path) -> Path:
    with archive.open("rb") as f:
        compressed = f.read(4) == ZSTD_MAGIC
    if not compressed:
        with archive.open("rb") as f:
            return _extract(f, dest)
    zstd = subprocess.Popen(["zstd", "-q", "-d", "-c", str(archive)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert zstd.stdout is not None and zstd.stderr is not None
    try:
        with zstd.stdout:
            folder = _extract(zstd.stdout, dest)
    finally:
        if zstd.wait() != 0:
            why = zstd.stderr.read().decode(errors="replace").strip().split(":")[-1].strip()
            raise ImageError(f"zstd could not decompress {archive} ({why or 'damaged'})",
                             "copy the archive again")
        zstd.stderr.close()
    return folder


def import_image(archive: Path) -> ImageInfo:
    """Add the image in archive to the store (verified); return it."""
    if not archive.is_file():
        raise ImageError(f"archive `{archive}` does not exist", "give the path of an "
                         "archive written by `lanalab image export`")
    images_root().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=images_root()))
    try:
        try:
            folder = _unpack(archive, tmp)
        except (tarfile.TarError, EOFError) as exc:
            raise ImageError(f"`{archive}` is not a readable image archive ({exc})",
                             "copy the archive again") from None
        manifest = load_manifest(folder)
        problems = verify_files(folder, manifest)
        if problems:
            raise ImageError(f"archive `{archive}` fails its checksums ({'; '.join(problems)})",
                             "copy the archive again, or export it anew on the source machine")
        final = image_dir(str(manifest["digest"]))
        if not final.is_dir():
            os.replace(folder, final)
        return ImageInfo.load(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
