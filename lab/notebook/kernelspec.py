"""The Jupyter kernel the lab's notebooks run in: the project's own Python (.venv), under
the name `lanalab`, installed into the venv's share folder (no user or system folder)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

KERNEL_NAME = "lanalab"
DISPLAY_NAME = "LANA lab (Python, project .venv)"


def kernel_spec() -> dict[str, object]:
    return {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": DISPLAY_NAME, "language": "python",
            "metadata": {"debugger": True}}


def kernels_dir() -> Path:
    return Path(sys.prefix) / "share" / "jupyter" / "kernels"


def ensure_kernel_spec() -> Path:
    """Write (or refresh) kernels/lanalab/kernel.json for this interpreter; -> its folder."""
    folder = kernels_dir() / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "kernel.json"
    text = json.dumps(kernel_spec(), indent=1) + "\n"
    if not spec.is_file() or spec.read_text() != text:
        spec.write_text(text)
    return folder
