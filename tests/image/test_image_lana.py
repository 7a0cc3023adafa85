"""The LANA step of the image build against the host's real kernel headers: a compile
error must stop the build and show the compiler's words; the work tree stays clean."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab.errors import ImageError
from lab.image.abi import resolve_kernel_release
from lab.image.lana import build_and_install
from lab.image.recipe import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def headers() -> tuple[str, Path]:
    try:
        release = resolve_kernel_release()
    except ImageError as exc:
        pytest.skip(f"cannot resolve the kernel ABI here: {exc}")
    path = Path("/usr/src") / f"linux-headers-{release}"
    if not (path / "Makefile").is_file():
        pytest.skip(f"{path} is not installed (scripts/setup-host.sh installs it)")
    return release, path


def test_compile_error_is_shown_with_a_hint(headers: tuple[str, Path], tmp_path: Path) -> None:
    release, path = headers
    kernel = tmp_path / "kernel"
    shutil.copytree(REPO_ROOT / "kernel", kernel,
                    ignore=shutil.ignore_patterns("*.o", "*.ko", ".*", "*.mod*"))
    victim = sorted((kernel / "core").glob("*.c"))[0]
    victim.write_text(victim.read_text() + "\nthis is not C;\n")
    with pytest.raises(ImageError) as caught:
        build_and_install(kernel, tmp_path / "scratch", path, release, tmp_path / "root")
    message = str(caught.value)
    assert "do not build" in message and "output tail" in message
    assert victim.name in message  # the compiler names the broken file
    assert "LANALAB_SKIP_LANA=1" in message
    assert not list(kernel.rglob("*.o"))  # built in the scratch copy, not in the source


def test_missing_makefile_is_explained(headers: tuple[str, Path], tmp_path: Path) -> None:
    release, path = headers
    (tmp_path / "kernel").mkdir()
    with pytest.raises(ImageError, match="Makefile` does not exist"):
        build_and_install(tmp_path / "kernel", tmp_path / "scratch", path, release,
                          tmp_path / "root")
