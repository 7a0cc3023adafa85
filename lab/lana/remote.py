"""The LANA client from the host: lab.lana.client.Lana's API, run in a guest.

    from lab.lana.remote import RemoteLana
    lana = RemoteLana(lab.vm("vm1"))          # anything with exec(argv, timeout, input)
    lana.add("c1", "counter")                 # LanaError with the kernel's message on refusal
    lana.batch([("add", "f1", "fwd"), ("bind", "f1", "eth0")])   # one guest round trip

Every call is one guest-agent exec of `python3 -m lab.lana.client --json` in the guest,
which speaks netlink there with pyroute2. Neither is part of the guest image: both come
from the host over the lab's 9p share (the repository at /lab), so the host's pyroute2
(the .venv's, pure Python, same Python 3.11 as the guest's) must live inside the shared
folder, as `./lab.sh` installs it.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from lab.lana.client import Instance, LanaError

REPO_ROOT = Path(__file__).resolve().parents[2]
GUEST_SHARE = "/lab"


class _Result(Protocol):
    stdout: str
    stderr: str
    exit_code: int


class GuestExec(Protocol):
    def exec(self, argv: Sequence[str], timeout: float = ...,
             input: bytes | None = ...) -> Any: ...


class RemoteLanaSetupError(RuntimeError):
    """The guest cannot run the client (no share, pyroute2 outside it, no python3)."""


def guest_pythonpath(share: Path = REPO_ROOT, guest_share: str = GUEST_SHARE) -> str:
    """PYTHONPATH in the guest: the shared repository and the folder holding pyroute2."""
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.origin is None:
        raise RemoteLanaSetupError("pyroute2 is not installed on the host (./lab.sh installs it)")
    site = Path(spec.origin).resolve().parents[1]
    try:
        relative = site.relative_to(share.resolve())
    except ValueError:
        raise RemoteLanaSetupError(
            f"pyroute2 lives in {site}, outside the folder shared into guests ({share}); "
            "install the lab's venv inside the repository (./lab.sh)") from None
    return f"{guest_share}:{guest_share}/{relative}"


class RemoteLana:
    """Lana's commands, run in a guest through its agent. Same errors: LanaError."""

    def __init__(self, vm: GuestExec, timeout: float = 120.0, share: Path = REPO_ROOT,
                 guest_share: str = GUEST_SHARE) -> None:
        self.vm = vm
        self.timeout = timeout
        self.argv = ["env", f"PYTHONPATH={guest_pythonpath(share, guest_share)}",
                     "PYTHONDONTWRITEBYTECODE=1", "python3", "-m", "lab.lana.client", "--json"]

    def batch(self, calls: Sequence[Sequence[Any]]) -> list[Any]:
        """Run calls ("command", *args) on one connection in one exec; results in order.
        The first refusal raises LanaError; the calls before it took effect."""
        request = {"calls": [[call[0], list(call[1:]), {}] for call in calls]}
        result: _Result = self.vm.exec(self.argv, timeout=self.timeout,
                                       input=json.dumps(request).encode())
        try:
            answer = json.loads(result.stdout)
        except ValueError:
            raise RemoteLanaSetupError(
                f"the guest client failed (exit {result.exit_code}): "
                f"{result.stderr.strip() or result.stdout.strip()}") from None
        if answer["error"] is not None:
            code, message = answer["error"]
            raise LanaError(int(code), str(message))
        results: list[Any] = answer["results"]
        return results

    def _one(self, command: str, *args: Any) -> Any:
        return self.batch([(command, *args)])[0]

    def add(self, name: str, type: str, opt: str | None = None) -> None:
        self._one("add", name, type, opt)

    def rm(self, name: str) -> None:
        self._one("rm", name)

    def set(self, name: str, option: str) -> None:
        self._one("set", name, option)

    def bind(self, upper: str, lower: str) -> None:
        self._one("bind", upper, lower)

    def unbind(self, upper: str, lower: str) -> None:
        self._one("unbind", upper, lower)

    def replace(self, old: str, new: str, drop_priv: bool = False) -> None:
        self._one("replace", old, new, drop_priv)

    def insert(self, fresh: str, upper: str) -> None:
        self._one("insert", fresh, upper)

    def cut(self, name: str) -> None:
        self._one("cut", name)

    def subscribe(self, subscriber: str, publisher: str) -> None:
        self._one("subscribe", subscriber, publisher)

    def unsubscribe(self, subscriber: str, publisher: str) -> None:
        self._one("unsubscribe", subscriber, publisher)

    def list(self) -> list[Instance]:
        return [Instance(**entry) for entry in self._one("list")]

    def multicast_groups(self) -> dict[str, int]:
        groups: dict[str, int] = self._one("multicast_groups")
        return groups
