"""Send an exact corpus of Ethernet frames from a Mininet host.

Frames are built here (bytes, usually with scapy) and written by a tiny raw-socket sender
that runs inside the host's namespace under the system python3, so the namespace side
needs nothing but the standard library. Every frame is padded to at least 60 bytes, as a
real NIC would, so byte counts in the guest are exact whatever path the frame takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from lab.errors import GradingError
from lab.grading.nodes import HostNode

MIN_FRAME = 60
# Paced so the guest (under TCG) never loses a frame: bursts well below the tap queue.
_SENDER = r"""
import socket, sys, time
iface, burst, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
sent = 0
for line in sys.stdin:
    line = line.strip()
    if line:
        sock.send(bytes.fromhex(line))
        sent += 1
        if sent % burst == 0:
            time.sleep(pause)
print(sent)
"""


def pad(frame: bytes) -> bytes:
    return frame + bytes(max(0, MIN_FRAME - len(frame)))


def send_frames(host: HostNode, frames: Iterable[bytes], iface: str | None = None,
                burst: int = 50, pause: float = 0.05) -> int:
    """Send the frames in order from `host`; return how many were sent."""
    frames = [pad(f) for f in frames]
    iface = iface or host.interfaces[0]
    payload = "".join(f.hex() + "\n" for f in frames).encode()
    result = host.run(["python3", "-c", _SENDER, iface, str(burst), str(pause)],
                      input=payload, timeout=120)
    sent = result.stdout.decode().strip()
    if result.returncode != 0 or sent != str(len(frames)):
        raise GradingError(f"host `{host.name}` could not send the traffic corpus: "
                           f"{result.stderr.decode(errors='replace').strip() or sent}")
    return len(frames)


def wait_settled(read: Callable[[], object], expect: object | None = None,
                 timeout: float = 20.0, quiet: float = 1.0) -> object:
    """Poll `read` until it returns `expect`, or until it stops changing for `quiet`
    seconds (frames still in flight under TCG arrive late); return the last value."""
    deadline = time.monotonic() + timeout
    last = read()
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        if expect is not None and last == expect:
            # one more look: a value can pass through the expected one on its way up
            time.sleep(quiet / 2)
            again = read()
            if again == last:
                return last
            last, stable_since = again, time.monotonic()
            continue
        time.sleep(0.25)
        value = read()
        if value != last:
            last, stable_since = value, time.monotonic()
        elif time.monotonic() - stable_since >= (quiet if expect is None else 2 * quiet):
            return last
    return last
