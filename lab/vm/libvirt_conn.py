"""Libvirt connections that notice a host gone silent.

A hypervisor that loses power or its network sends no RST: without more, a call on its
connection waits for TCP's retransmission timeout, many minutes. libvirt's keepalive
(virConnectSetKeepAlive) pings the daemon every KEEPALIVE_INTERVAL_S and closes the
connection after KEEPALIVE_COUNT unanswered pings, which fails the call that waits on it.
Keepalive needs an event loop: the first remote connection registers libvirt's default
implementation and runs it in a daemon thread, for the rest of the process.
"""

from __future__ import annotations

import threading
from typing import Any

KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3
# a silent host fails a waiting call within about this long
SILENT_HOST_S = KEEPALIVE_INTERVAL_S * (KEEPALIVE_COUNT + 1)

_loop_lock = threading.Lock()
_loop_started = False


def is_remote(uri: str) -> bool:
    """True for a URI that names another host (qemu+ssh://, qemu+tcp://...)."""
    return not uri.startswith(("qemu:///", "test:///"))


def _ensure_event_loop() -> None:
    global _loop_started
    import libvirt

    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt events", daemon=True).start()
        _loop_started = True


def open_connection(uri: str) -> Any:
    """libvirt.open(uri); a remote connection gets keepalive. Raises libvirt.libvirtError."""
    import libvirt

    if not is_remote(uri):
        return libvirt.open(uri)
    _ensure_event_loop()
    conn = libvirt.open(uri)
    conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
    return conn
