"""manifest.json: what an image is made of, and the checksums that prove its files intact.

Division of labour: the build fills in a `dict` (digest, kernel release, cmdline, package
versions, LANA modules, durations) and `write_manifest` adds the sha256 and size of each
output file; `verify_files` checks a folder against it (import, `lanalab doctor`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lab.errors import ImageError

MANIFEST = "manifest.json"
OUTPUT_FILES = ("vmlinuz", "initrd.img", "rootfs.qcow2")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(folder: Path) -> dict[str, dict[str, Any]]:
    return {name: {"sha256": sha256_file(folder / name), "size": (folder / name).stat().st_size}
            for name in OUTPUT_FILES}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Add the output files' checksums and write manifest.json (fsync'ed) into folder."""
    manifest = {**manifest, "files": file_entries(folder)}
    path = folder / MANIFEST
    with path.open("w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return manifest


def load_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ImageError(f"image folder `{folder}` has no {MANIFEST} (an unfinished build?)",
                         "run `lanalab image build`") from None
    except ValueError as exc:
        raise ImageError(f"`{path}` is not valid JSON ({exc})",
                         f"delete {folder} and run `lanalab image build`") from None
    if not isinstance(manifest, dict) or "digest" not in manifest:
        raise ImageError(f"`{path}` is not an image manifest", f"delete {folder}")
    return manifest


def verify_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems with the folder's files (missing, wrong size, wrong sha256); [] if intact."""
    problems = []
    files = manifest.get("files", {})
    for name in dict.fromkeys([*OUTPUT_FILES, *files]):
        entry = files.get(name)
        path = folder / name
        if not entry:
            problems.append(f"{name}: not listed in the manifest")
        elif not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != entry.get("size"):
            problems.append(f"{name}: size {path.stat().st_size}, manifest says {entry['size']}")
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{name}: sha256 does not match the manifest")
    return problems
