"""Unpacking a submission tar as root: links, '..', absolute names, devices, size and
count limits are refused before anything is written; a good tar unpacks exactly."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from lab.service.untar import SubmissionError, pack, safe_member_path, unpack


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_good_tar_unpacks(tmp_path: Path) -> None:
    d = tarfile.TarInfo("sub")
    d.type = tarfile.DIRTYPE
    data = _tar((d, None), _file("sub/a.txt", b"hello"), _file("./b.bpf", b"ret #0"))
    out = tmp_path / "out"
    out.mkdir()
    assert sorted(unpack(data, out, 1000, 10)) == ["b.bpf", "sub/a.txt"]
    assert (out / "sub" / "a.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("members, words", [
    ([_file("../escape.txt")], "'..'"),
    ([_file("a/../../escape.txt")], "'..'"),
    ([_file("/etc/cron.d/x")], "absolute"),
    ([_special("link", tarfile.SYMTYPE, "/etc/shadow")], "link"),
    ([_special("hard", tarfile.LNKTYPE, "/etc/shadow")], "link"),
    ([_special("dev", tarfile.CHRTYPE)], "special file"),
    ([_special("fifo", tarfile.FIFOTYPE)], "special file"),
    # a symlinked folder, then a file through it: refused at the link already
    ([_special("d", tarfile.SYMTYPE, "/etc"), _file("d/passwd")], "link"),
])
def test_hostile_tars_are_refused_and_nothing_is_written(tmp_path: Path, members: list,
                                                          words: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SubmissionError) as exc:
        unpack(_tar(*members), out, 1000, 10)
    assert words in exc.value.message
    assert list(out.iterdir()) == []
    assert not (tmp_path / "escape.txt").exists()


def test_size_and_count_limits(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="over 10 bytes"):
        unpack(_tar(_file("a", b"x" * 11)), tmp_path, 10, 10)
    with pytest.raises(SubmissionError, match="more than 2 entries"):
        unpack(_tar(_file("a"), _file("b"), _file("c")), tmp_path, 100, 2)


def test_not_a_tar_and_a_file_that_is_also_a_folder(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="not a tar"):
        unpack(b"hello, not a tar" * 100, tmp_path, 100, 10)
    with pytest.raises(SubmissionError, match="both a file and a folder"):
        unpack(_tar(_file("a"), _file("a/b")), tmp_path, 100, 10)


def test_duplicate_member_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="appears twice"):
        unpack(_tar(_file("a"), _file("a")), tmp_path, 100, 10)


@pytest.mark.parametrize("name", ["a\0b", "a\\..\\b", "", "."])
def test_odd_names(name: str) -> None:
    with pytest.raises(SubmissionError):
        safe_member_path(name)


def test_pack_leaves_symlinks_out(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "policy.py").write_text("x = 1\n")
    (tmp_path / "work" / "secret").symlink_to("/etc/hostname")
    out = tmp_path / "out"
    out.mkdir()
    assert unpack(pack(tmp_path / "work", 1000), out, 1000, 10) == ["policy.py"]
    with pytest.raises(SubmissionError, match="over 3 bytes"):
        pack(tmp_path / "work", 3)
