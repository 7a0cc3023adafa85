"""A participant's C built as somebody who is not root (lab/grading/buildas.py): what the
lab service and class grading do for exercises 4 and 7. The reference builds; a source
that pulls in a root-only file fails with "Permission denied" instead of printing it or
carrying it into the module; what comes back is only a regular file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.grading.buildas import BUILD_AS_ENV, NOBODY, BuildUser, take_back
from lab.grading.exercise import find_exercise

pytestmark = pytest.mark.root

ROOT_ONLY = "/etc/shadow"


@pytest.fixture
def as_nobody(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("building as another uid needs root")
    assert not os.stat(ROOT_ONLY).st_mode & 0o004, f"{ROOT_ONLY} is readable by everybody"
    monkeypatch.setenv(BUILD_AS_ENV, BuildUser(*NOBODY).env_value())
    yield


def _builds_left() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("lanalab-build-*")}


def test_exercise_4_block_builds_as_nobody_and_cannot_read_roots_files(
        as_nobody: None, tmp_path: Path) -> None:
    from lab.grading.kbuild import build_block, guest_kernel_release

    before = _builds_left()
    release = guest_kernel_release(None)
    good = build_block(find_exercise("4").folder("solution") / "fb_sampler.c", release,
                       tmp_path / "good")
    assert good.ok and good.module is not None, good.log[-2000:]
    assert good.module.stat().st_uid == 0 and good.module.stat().st_size > 1000
    evil = tmp_path / "fb_sampler.c"
    evil.write_text(f'#include "{ROOT_ONLY}"\n'
                    f'asm(".section .rodata\\n.incbin \\"{ROOT_ONLY}\\"\\n");\n')
    bad = build_block(evil, release, tmp_path / "bad")
    assert not bad.ok and bad.module is None
    assert "Permission denied" in bad.log, bad.log[-2000:]
    assert _builds_left() == before  # every build folder removed


def test_exercise_7_program_compiles_as_nobody_and_cannot_read_roots_files(
        as_nobody: None, tmp_path: Path) -> None:
    from lab.ebpf.compile import compile_program

    solution = find_exercise("7").folder("solution") / "filter.bpf.c"
    built = compile_program(solution, cache=tmp_path / "cache")
    assert built.compiled and built.path.stat().st_size > 500
    evil = tmp_path / "filter.bpf.c"
    evil.write_text(f'#include "{ROOT_ONLY}"\n')
    with pytest.raises(LabError, match="Permission denied") as refused:
        compile_program(evil, cache=tmp_path / "cache")
    assert "lanalab-build-" not in str(refused.value)  # the participant's file name only


def test_only_a_regular_file_comes_back(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root's")
    (tmp_path / "link.ko").symlink_to(secret)
    os.mkfifo(tmp_path / "fifo.ko")
    (tmp_path / "real.ko").write_bytes(b"\x7fELF")
    assert not take_back(tmp_path / "link.ko", tmp_path / "out" / "a")
    assert not take_back(tmp_path / "fifo.ko", tmp_path / "out" / "b")
    assert not take_back(tmp_path / "missing.ko", tmp_path / "out" / "c")
    assert take_back(tmp_path / "real.ko", tmp_path / "out" / "d")
    assert (tmp_path / "out" / "d").read_bytes() == b"\x7fELF"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["d"]


@pytest.mark.parametrize("value", ["0:0", "root", "12:", ":5", "-1:3"])
def test_a_build_user_is_never_root_or_malformed(monkeypatch: pytest.MonkeyPatch,
                                                 value: str) -> None:
    from lab.grading.buildas import build_user

    monkeypatch.setenv(BUILD_AS_ENV, value)
    with pytest.raises(LabError, match="is not uid:gid"):
        build_user()
