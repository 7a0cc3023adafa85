"""Building a participant's C as somebody who is not root.

Exercises 4 and 7 compile the submission on this machine. Run as root, an `#include
"/etc/shadow"` would print a root-only file in the build log, and an `.incbin` would carry
it into the module the participant then loads in a guest where they are root. So when the
lab service grades for somebody (it sets LANALAB_BUILD_AS=uid:gid), the compiler runs as
that uid, with no groups, no capabilities and no_new_privs, in a folder of its own under
/tmp, from copies of the sources; only the built file comes back, read without following
a symlink. Without the variable (root's own lab, the CLI as root) builds run as before.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.privileges import as_user

BUILD_AS_ENV = "LANALAB_BUILD_AS"
NOBODY = (65534, 65534)  # builds of a whole class: nobody's, never root's
MAX_OUTPUT_BYTES = 64 << 20  # a stripped block module is about 0.1 MB


@dataclass(frozen=True)
class BuildUser:
    uid: int
    gid: int

    def prefix(self) -> list[str]:
        return as_user(self.uid, self.gid)

    def env_value(self) -> str:
        return f"{self.uid}:{self.gid}"


def build_user() -> BuildUser | None:
    """Whom builds run as: LANALAB_BUILD_AS, or None (the caller's own uid, as before)."""
    value = os.environ.get(BUILD_AS_ENV, "")
    if not value:
        return None
    uid, _, gid = value.partition(":")
    if not (uid.isdigit() and gid.isdigit()) or int(uid) == 0:
        raise LabError(f"{BUILD_AS_ENV}={value!r} is not uid:gid of somebody but root",
                       f"unset {BUILD_AS_ENV}, or give e.g. 65534:65534")
    return BuildUser(int(uid), int(gid))


def prefix(user: BuildUser | None) -> list[str]:
    return user.prefix() if user is not None else []


@contextmanager
def build_folder(user: BuildUser | None) -> Iterator[Path]:
    """A fresh folder for one build, removed after: the build user's own (0700) under
    /tmp, or root's when builds run as the caller."""
    folder = Path(tempfile.mkdtemp(prefix="lanalab-build-"))
    try:
        if user is not None:
            os.chown(folder, user.uid, user.gid)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def hand_over(paths: list[Path], user: BuildUser | None) -> None:
    """Files root put into a build folder, given to the build user."""
    if user is not None:
        for path in paths:
            os.chown(path, user.uid, user.gid, follow_symlinks=False)


def take_back(path: Path, target: Path) -> bool:
    """Copy what the build made at `path` to root's `target`: a regular file only, never
    through a symlink, at most MAX_OUTPUT_BYTES. False when there is no such file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as source:
        found = os.fstat(source.fileno())
        if not stat.S_ISREG(found.st_mode) or found.st_size > MAX_OUTPUT_BYTES:
            return False
        data = source.read(MAX_OUTPUT_BYTES + 1)
    if len(data) > MAX_OUTPUT_BYTES:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return True
