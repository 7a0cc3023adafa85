"""Kernel ABI resolution: parsing `apt-cache depends linux-headers-amd64`."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import ImageError
from lab.image.abi import headers_dir, kernel_release, parse_abi

DEPENDS_56 = """linux-headers-amd64
  Depends: linux-headers-6.1.0-56-amd64
"""


def test_parses_the_abi_the_metapackage_depends_on() -> None:
    assert parse_abi(DEPENDS_56) == "6.1.0-56"
    assert kernel_release(parse_abi(DEPENDS_56)) == "6.1.0-56-amd64"


def test_picks_the_newest_abi_when_apt_lists_several() -> None:
    text = DEPENDS_56 + "  Depends: linux-headers-6.1.0-9-amd64\n" \
                        "  Depends: linux-headers-6.1.0-101-amd64\n"
    assert parse_abi(text) == "6.1.0-101"


def test_ignores_other_flavours_and_packages() -> None:
    text = """linux-headers-amd64
  Depends: linux-headers-6.1.0-56-rt-amd64
  Depends: linux-headers-6.1.0-57-amd64
  Depends: linux-kbuild-6.1
"""
    assert parse_abi(text) == "6.1.0-57"


def test_no_dependency_is_a_clear_error() -> None:
    with pytest.raises(ImageError, match="setup-host.sh"):
        parse_abi("linux-headers-amd64\n")


def test_missing_headers_tell_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="linux-headers-6.1.0-56-amd64"):
        headers_dir("6.1.0-56-amd64", root=tmp_path)
    headers = tmp_path / "usr/src/linux-headers-6.1.0-56-amd64"
    headers.mkdir(parents=True)
    (headers / "Makefile").write_text("")
    assert headers_dir("6.1.0-56-amd64", root=tmp_path) == headers
