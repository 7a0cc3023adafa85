"""A systemd unit for the lab service, written for this checkout: its Python, its code,
the socket and config the service would use. `lanalab service --systemd-unit` prints it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
UNIT_NAME = "lanalab-service.service"


def unit_text(socket: Path | None = None, config: Path | None = None) -> str:
    argv = [sys.executable, "-m", "lab.cli", "service"]
    argv += ["--socket", str(socket)] if socket else []
    argv += ["--config", str(config)] if config else []
    return f"""\
# The LANA lab service (docs/service.md), for the checkout in {REPO_ROOT}.
#   sudo lanalab service --systemd-unit > /etc/systemd/system/{UNIT_NAME}
#   sudo systemctl daemon-reload && sudo systemctl enable --now {UNIT_NAME}
[Unit]
Description=LANA lab service: labs for unprivileged users over a unix socket
After=network.target

[Service]
Type=exec
ExecStart={shlex.join(argv)}
WorkingDirectory={REPO_ROOT}
Environment=PYTHONUNBUFFERED=1
# SIGTERM stops serving; labs keep running and are adopted at the next start
KillMode=process
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
"""
