"""The guest kernel's ABI: whatever Debian's linux-headers-amd64 depends on today.

Division of labour: this module only asks apt and parses. Debian moves the ABI
(6.1.0-N) as it publishes kernel updates and the mirror may drop the old one, so the
build never assumes a fixed N: it resolves the metapackage's dependency, needs the
headers of exactly that ABI on the host (the set-up script installs them), and fetches
linux-image of the same ABI.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lab.errors import ImageError
from lab.image.shell import run

FLAVOUR = "amd64"
HEADERS_META = f"linux-headers-{FLAVOUR}"
SETUP_HINT = "run scripts/setup-host.sh (it runs apt-get update and installs the headers)"
_DEPENDS = re.compile(r"^\s*Depends:\s*linux-headers-(\d+\.\d+\.\d+-\d+)-" + FLAVOUR + r"\s*$",
                      re.MULTILINE)


def _version_key(abi: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.split(r"[.-]", abi))


def parse_abi(apt_cache_depends: str) -> str:
    """The ABI ("6.1.0-56") named by `apt-cache depends linux-headers-amd64` output."""
    found = _DEPENDS.findall(apt_cache_depends)
    if not found:
        raise ImageError(f"apt does not say which kernel ABI `{HEADERS_META}` depends on",
                         SETUP_HINT)
    return max(found, key=_version_key)


def kernel_release(abi: str) -> str:
    """The `uname -r` of an ABI: "6.1.0-56" -> "6.1.0-56-amd64"."""
    return f"{abi}-{FLAVOUR}"


def _apt_cache_options() -> list[str]:
    # This host's apt keeps no binary package cache, so each apt-cache call re-parses every
    # list (1.5 s); one of our own makes a warm image build 1 s faster.
    from lab.image.store import cache_root

    folder = cache_root() / "apt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return []
    if not os.access(folder, os.W_OK):
        return []
    return [f"-oDir::Cache::pkgcache={folder / 'pkgcache.bin'}",
            f"-oDir::Cache::srcpkgcache={folder / 'srcpkgcache.bin'}"]


def resolve_kernel_release() -> str:
    """The release ("6.1.0-56-amd64") of the kernel Debian ships today."""
    text = run(["apt-cache", *_apt_cache_options(), "depends", HEADERS_META], timeout=60,
               hint=SETUP_HINT)
    return kernel_release(parse_abi(text))


def headers_dir(release: str, root: Path = Path("/")) -> Path:
    """The host's kernel headers for `release`; a clear error when they are missing."""
    path = root / "usr/src" / f"linux-headers-{release}"
    if not (path / "Makefile").is_file():
        raise ImageError(f"kernel headers `{path}` are missing (the LANA modules are built "
                         f"against them)", f"{SETUP_HINT}; it installs linux-headers-{release}")
    return path
