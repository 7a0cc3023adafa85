"""The controller's Python for a guest that has no lab share: grading labs boot without
one (a submission must not read the repository's solutions), and the image has no
pyroute2. One tar.xz (~300 kB) of lab.autonomic, lab.lana's client and procfs parsers and
the host's pyroute2 (pure Python; the guest's Python is the same 3.11), unpacked in /tmp."""

from __future__ import annotations

import functools
import importlib.util
import io
import tarfile
from pathlib import Path
from typing import Protocol

LAB = Path(__file__).resolve().parents[1]  # the lab package
FILES = ("__init__.py", "autonomic/*.py", "lana/__init__.py", "lana/client.py",
         "lana/procfs.py")


class Guest(Protocol):
    def sh(self, command: str, timeout: float = 60.0) -> str: ...
    def put(self, path: str, data: bytes | str) -> None: ...


def _pyroute2_dir() -> Path:
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pyroute2 is not installed on the host (scripts/setup-host.sh "
                           "installs it into .venv)")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def python_bundle() -> bytes:
    def no_cache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if "__pycache__" in info.name else info

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:xz") as tar:
        for pattern in FILES:
            for path in sorted(LAB.glob(pattern)):
                tar.add(path, arcname=f"lab/{path.relative_to(LAB)}")
        tar.add(_pyroute2_dir(), arcname="pyroute2", filter=no_cache)
    return out.getvalue()


def install(guest: Guest, where: str) -> str:
    """Unpack the bundle into `where` in the guest; the PYTHONPATH to use it."""
    guest.sh(f"rm -rf {where} && mkdir -p {where}")
    guest.put(f"{where}.tar.xz", python_bundle())
    guest.sh(f"python3 -c 'import tarfile; tarfile.open(\"{where}.tar.xz\")"
             f".extractall(\"{where}\")' && rm {where}.tar.xz", timeout=120)
    return where
