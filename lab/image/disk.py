"""The root disk: an ext4 file system made straight from the root folder (mke2fs -d, no
loop mount), with free room for students' files, converted to a read-only qcow2 base that
every VM overlays copy-on-write.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from lab.image.shell import run

HEADROOM = 256 * 1024 * 1024  # free space left for what students put in the guest
BLOCK = 4096


def tree_bytes(root: Path) -> int:
    """Bytes the tree takes on ext4, roughly: data rounded to blocks, plus an inode each."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        total += BLOCK * (1 + len(dirnames))
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            total += 256 + -(-st.st_size // BLOCK) * BLOCK
    return total


def disk_size(root: Path, headroom: int = HEADROOM) -> int:
    """Size of the raw disk: the tree, 10% for ext4 metadata and the journal, the headroom,
    rounded up to a MiB."""
    size = int(tree_bytes(root) * 1.1) + 32 * 1024 * 1024 + headroom
    mib = 1024 * 1024
    return -(-size // mib) * mib


def make_rootfs_disk(root: Path, qcow2: Path, digest: str, work: Path) -> int:
    """Write qcow2 from the root folder; return the raw file system size in bytes."""
    raw = work / "rootfs.raw"
    size = disk_size(root)
    with raw.open("wb") as f:
        f.truncate(size)
    fs_uuid = str(uuid.UUID(hex=digest[:32]))  # reproducible: same inputs, same UUID
    # no metadata_csum: crc32c in software is slow under TCG and a throwaway VM disk
    # gains little from it
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^metadata_csum", "-L", "lanaroot",
         "-U", fs_uuid, "-d", root, raw], timeout=600,
        failure="mke2fs could not make the guest's root file system")
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2], timeout=600,
        failure="qemu-img could not convert the root disk to qcow2")
    raw.unlink()
    return size
