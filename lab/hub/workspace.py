"""Each participant's own folder: a copy of the guided notebooks and of every exercise's
README and starter, owned by the participant's uid and closed to everybody else (0700).
The folder above (`home/`) is root's, 0711: participants can reach their own folder but
cannot list the others'. A copy is made once; a participant's edits are never
overwritten (`refresh` adds only what is missing)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lab.hub.roster import Account

REPO_ROOT = Path(__file__).resolve().parents[2]


def home_of(state_dir: Path, account: Account) -> Path:
    return state_dir / "home" / account.id


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def _copy_missing(source: Path, target: Path) -> None:
    """Copy `source` (file or folder) to `target`, leaving what exists there alone."""
    if source.is_dir():
        target.mkdir(exist_ok=True)
        for child in sorted(source.iterdir()):
            if child.name not in ("__pycache__", ".ipynb_checkpoints"):
                _copy_missing(child, target / child.name)
    elif not target.exists():
        shutil.copy2(source, target)


def prepare(state_dir: Path, account: Account) -> Path:
    """The participant's folder, made or refreshed; returns its path."""
    homes = state_dir / "home"
    homes.mkdir(parents=True, exist_ok=True)
    os.chmod(homes, 0o711)
    home = home_of(state_dir, account)
    home.mkdir(mode=0o700, exist_ok=True)
    if home.is_symlink() or not home.is_dir():
        raise RuntimeError(f"{home} is not a folder")  # made by root only: a bug
    _copy_missing(REPO_ROOT / "notebooks", home / "notebooks")
    exercises = home / "exercises"
    exercises.mkdir(exist_ok=True)
    for ex in sorted((REPO_ROOT / "exercises").iterdir()):
        if (ex / "exercise.toml").is_file():
            mine = exercises / ex.name
            mine.mkdir(exist_ok=True)
            _copy_missing(ex / "README.md", mine / "README.md")
            _copy_missing(ex / "starter", mine / "starter")
    _chown_tree(home, account.uid, account.group)
    os.chmod(home, 0o700)
    return home
