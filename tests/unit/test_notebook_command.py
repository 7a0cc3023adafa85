"""`lanalab notebook`: JupyterLab on 127.0.0.1 only, with a token, in notebooks/, with the
lab's kernel. The server is really started (no VM needed) and asked over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lab.cli import build_parser
from lab.commands.notebook import NOTEBOOKS_DIR, jupyter_argv


def test_command_is_registered() -> None:
    args = build_parser().parse_args(["notebook", "--port", "9999"])
    assert args.port == 9999 and args.dir == NOTEBOOKS_DIR and not args.browser


def test_argv_binds_localhost_only_with_the_lab_kernel() -> None:
    argv = jupyter_argv(8888, NOTEBOOKS_DIR, browser=False)
    assert "--ServerApp.ip=127.0.0.1" in argv
    assert "--MultiKernelManager.default_kernel_name=lanalab" in argv
    assert f"--ServerApp.root_dir={NOTEBOOKS_DIR}" in argv
    assert not any("token" in a.lower() for a in argv)  # the token travels in the env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


@pytest.mark.slow
def test_server_answers_with_token_only_and_offers_the_lab_kernel(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli",
                             "notebook", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()
        token = first.split("token=")[1].split()[0]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            try:
                status, _ = _get(f"{base}/api/status?token={token}")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert status == 200, "JupyterLab did not answer within 60 s"
        assert _get(f"{base}/api/status")[0] == 403  # no token, no access
        code, body = _get(f"{base}/api/kernelspecs?token={token}")
        specs = json.loads(body)
        assert code == 200 and specs["default"] == "lanalab" and "lanalab" in specs["kernelspecs"]
        code, body = _get(f"{base}/api/contents?token={token}")
        names = {item["name"] for item in json.loads(body)["content"]}
        assert "00-introduction.ipynb" in names
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
