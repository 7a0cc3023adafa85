"""JupyterHub's proxy, configurable-http-proxy, from the npm registry into the lab's
cache (once; a second call finds it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from lab.errors import LabError
from lab.image.store import cache_root

PACKAGE = "configurable-http-proxy@4.6.3"


def proxy_dir() -> Path:
    return cache_root() / "hub-proxy"


def ensure_proxy(progress: bool = True) -> Path:
    """The configurable-http-proxy command, installed if missing."""
    folder = proxy_dir()
    command = folder / "node_modules" / ".bin" / "configurable-http-proxy"
    stamp = folder / "installed"
    if command.exists() and stamp.is_file() and stamp.read_text() == PACKAGE:
        return command
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise LabError("JupyterHub's proxy needs Node.js and npm, and this machine has "
                       "neither on PATH", "install Debian's nodejs and npm packages")
    folder.mkdir(parents=True, exist_ok=True)
    if progress:
        print(f"[serve] installing {PACKAGE} from the npm registry into {folder}", flush=True)
    result = subprocess.run([npm, "install", "--prefix", str(folder), "--no-audit",
                             "--no-fund", "--loglevel=error", PACKAGE],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 or not command.exists():
        raise LabError(f"npm install {PACKAGE} failed:\n{result.stderr[-1500:]}",
                       "check that this machine reaches the npm registry")
    stamp.write_text(PACKAGE)
    return command
