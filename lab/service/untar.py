"""Unpack a submission tar sent by a client, as root, without trusting it: only regular
files and folders, relative names without '..', no links of any kind, no devices, bounded
in size and number; every file is created fresh (O_EXCL|O_NOFOLLOW) under the target."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path, PurePosixPath

from lab.errors import LabError


class SubmissionError(LabError):
    """A submission tar the service refuses to unpack."""


def safe_member_path(name: str) -> PurePosixPath:
    """The member's relative path, or SubmissionError naming why it is refused."""
    if "\0" in name or "\\" in name:
        raise SubmissionError(f"submission member {name!r}: NUL or backslash in its name")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise SubmissionError(f"submission member {name!r} has an absolute path",
                              "submit files relative to your submission folder")
    parts = [p for p in path.parts if p != "."]
    if ".." in parts:
        raise SubmissionError(f"submission member {name!r} climbs out with '..'",
                              "submit files relative to your submission folder")
    if not parts:
        raise SubmissionError(f"submission member {name!r} has an empty name")
    return PurePosixPath(*parts)


def unpack(data: bytes, target: Path, max_bytes: int, max_files: int) -> list[str]:
    """Unpack tar `data` into the empty folder `target`; return the files written."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 - with below
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SubmissionError(f"submission is not a tar archive: {exc}") from exc
    written: list[str] = []
    total = 0
    with tar:
        members: list[tuple[tarfile.TarInfo, PurePosixPath]] = []
        for member in tar:  # checked in full before anything is written
            rel = safe_member_path(member.name)
            if not (member.isfile() or member.isdir()):
                kind = "link" if member.issym() or member.islnk() else "special file"
                raise SubmissionError(f"submission member {member.name!r} is a {kind}",
                                      "submit regular files and folders only")
            total += member.size if member.isfile() else 0
            if total > max_bytes:
                raise SubmissionError(f"submission is over {max_bytes} bytes unpacked",
                                      "leave build outputs and large files out")
            if len(members) >= max_files:
                raise SubmissionError(f"submission has more than {max_files} entries")
            members.append((member, rel))
        for member, rel in members:
            dest = _inside(target, rel)
            if member.isdir():
                _mkdirs(target, rel)
                continue
            _mkdirs(target, rel.parent)
            src = tar.extractfile(member)
            assert src is not None
            try:
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            except FileExistsError:
                raise SubmissionError(f"submission member {rel} appears twice") from None
            with os.fdopen(fd, "wb") as out:
                out.write(src.read(member.size))
            written.append(str(rel))
    return written


def _inside(target: Path, rel: PurePosixPath) -> Path:
    dest = target.joinpath(*rel.parts)
    if os.path.commonpath([target, dest]) != str(target):
        raise SubmissionError(f"submission member {rel} is outside the submission")
    return dest


def _mkdirs(target: Path, rel: PurePosixPath) -> None:
    """Make each folder of `rel` under `target`, refusing anything that is not a folder."""
    here = target
    for part in rel.parts:
        here = here / part
        try:
            os.mkdir(here, 0o755)
        except FileExistsError:
            mode = os.lstat(here).st_mode
            if not stat.S_ISDIR(mode):
                raise SubmissionError(f"submission: {here.relative_to(target)} is both a "
                                      "file and a folder") from None


def pack(folder: Path, max_bytes: int) -> bytes:
    """The client side: `folder`'s regular files (symlinks left out) as an uncompressed tar,
    read with the caller's own rights."""
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or any(p in ("__pycache__", ".git") for p in path.parts):
                continue
            rel = path.relative_to(folder).as_posix()
            if path.is_dir():
                tar.add(path, arcname=rel, recursive=False)
            elif path.is_file():
                total += path.stat().st_size
                if total > max_bytes:
                    raise SubmissionError(f"submission folder {folder} is over {max_bytes} "
                                          "bytes", "leave build outputs and large files out")
                tar.add(path, arcname=rel, recursive=False)
    return buf.getvalue()
