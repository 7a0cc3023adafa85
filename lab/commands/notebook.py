"""`lanalab notebook`: JupyterLab on this machine only (127.0.0.1, with a token), in
notebooks/, with the lab's own kernel (the project's .venv Python)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import sys
from pathlib import Path

from lab.errors import LabError

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
HOST = "127.0.0.1"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notebook", help="start JupyterLab with the lab's guided notebooks",
                       description="Start JupyterLab bound to 127.0.0.1 (this machine only) "
                       "with a fresh access token, in notebooks/, using the `lanalab` kernel "
                       "(this project's Python). Open the printed URL in a browser on this "
                       "machine, or through an SSH tunnel (ssh -L PORT:127.0.0.1:PORT host). "
                       "Labs the notebooks bring up are torn down when their kernel stops.")
    p.add_argument("--port", type=int, default=8888, help="port (default 8888; the next "
                   "free one is taken if it is busy)")
    p.add_argument("--dir", type=Path, default=NOTEBOOKS_DIR,
                   help="folder to open (default: notebooks/)")
    p.add_argument("--browser", action="store_true",
                   help="also open a browser on this machine")
    p.set_defaults(func=cmd_notebook)


def jupyter_argv(port: int, folder: Path, browser: bool) -> list[str]:
    """The JupyterLab command line. The token is passed in the environment (JUPYTER_TOKEN),
    not here, so it does not show in the process list."""
    return [sys.executable, "-m", "jupyterlab",
            f"--ServerApp.ip={HOST}", f"--ServerApp.port={port}",
            f"--ServerApp.root_dir={folder}", f"--ServerApp.open_browser={browser}",
            "--ServerApp.allow_remote_access=False",
            "--ServerApp.allow_root=True",  # VMs and bridges need root; the lab runs as root
            "--MultiKernelManager.default_kernel_name=lanalab"]


def cmd_notebook(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("jupyterlab") is None:
        raise LabError("JupyterLab is not installed in this Python environment",
                       f"install the notebook extras: {sys.executable} -m pip install "
                       f"-e '{REPO_ROOT}[notebooks]'")
    folder = args.dir.resolve()
    if not folder.is_dir():
        raise LabError(f"{folder} is not a folder", "pass --dir with the notebooks' folder")
    from lab.notebook.kernelspec import ensure_kernel_spec

    ensure_kernel_spec()
    token = secrets.token_urlsafe(24)
    print(f"lanalab: JupyterLab on http://{HOST}:{args.port}/lab?token={token}\n"
          f"  (if the port is busy JupyterLab takes the next one and prints its URL; "
          f"Ctrl-C twice stops it)", flush=True)
    env = {**os.environ, "JUPYTER_TOKEN": token}
    argv = jupyter_argv(args.port, folder, args.browser)
    os.execve(argv[0], argv, env)  # JupyterLab replaces this process: Ctrl-C reaches it
    return 0  # not reached
