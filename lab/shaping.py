"""Link shaping with tc on the host side of a lab link (a VM's tap or a host's bridge port).

Each shaped link end gets a root qdisc on the interface that sends towards it: a token
bucket (tbf) for bandwidth, netem for delay and loss. Mininet hosts are shaped both ways
(their own interface too); a VM's link is shaped towards the VM (its tap), since the host
kernels here have no tc policing actions for the other direction. Delay and loss need netem,
which some host kernels lack (the machines this lab was built on have none): bring-up then
stops with a clear message instead of a lab that silently ignores the setting.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from lab.errors import LabError

NETEM_MISSING_HINT = ("remove `delay`/`loss` from the topology, or run the lab on a host whose "
                      "kernel has the netem qdisc (sch_netem); bandwidth limits (`bw`) work "
                      "without it")


@dataclass(frozen=True)
class Shape:
    bw_mbit: float | None = None
    delay: str | None = None  # tc time, e.g. "10ms"
    loss_percent: float | None = None

    def empty(self) -> bool:
        return self.bw_mbit is None and self.delay is None and self.loss_percent is None


TcRunner = Callable[[list[str]], tuple[int, str]]


def run_tc(argv: list[str]) -> tuple[int, str]:
    done = subprocess.run(["tc", *argv], capture_output=True, text=True, check=False)
    return done.returncode, done.stderr


def _burst_bytes(bw_mbit: float) -> int:
    # at least 10 ms worth of traffic, and never below a jumbo-free MTU's worth
    return max(int(bw_mbit * 1e6 / 8 / 100), 16 * 1514)


def egress_argv(ifname: str, shape: Shape) -> list[str]:
    """tc arguments for the root qdisc that shapes traffic towards the node."""
    if shape.delay is not None or shape.loss_percent is not None:
        argv = ["qdisc", "add", "dev", ifname, "root", "handle", "1:", "netem"]
        if shape.delay is not None:
            argv += ["delay", shape.delay]
        if shape.loss_percent is not None:
            argv += ["loss", f"{shape.loss_percent}%"]
        if shape.bw_mbit is not None:
            argv += ["rate", f"{shape.bw_mbit}mbit"]
        return argv
    assert shape.bw_mbit is not None
    return ["qdisc", "add", "dev", ifname, "root", "handle", "1:", "tbf",
            "rate", f"{shape.bw_mbit}mbit", "burst", str(_burst_bytes(shape.bw_mbit)),
            "latency", "50ms"]


def apply_shape(ifname: str, shape: Shape, run_tc: TcRunner = run_tc) -> None:
    """Shape what leaves `ifname` (the traffic towards the node behind it)."""
    if shape.empty():
        return
    argv = egress_argv(ifname, shape)
    returncode, stderr = run_tc(argv)
    if returncode == 0:
        return
    if "netem" in argv and "unknown" in stderr.lower():
        raise LabError("link delay/loss need the netem qdisc, which this host kernel "
                       "does not have", hint=NETEM_MISSING_HINT)
    raise LabError(f"tc could not shape {ifname}: {stderr.strip()}")
