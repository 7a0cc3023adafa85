"""The controller's loop: events in, policy hooks called, every step journaled."""

from __future__ import annotations

import importlib
import importlib.util
import signal
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from lab.autonomic.journal import Journal
from lab.autonomic.policy import Policy
from lab.autonomic.stack import Control, Stack
from lab.lana.client import LanaError

if TYPE_CHECKING:
    from lab.lana.client import LanaEvent


class EventSource(Control, Protocol):
    def events(self, timeout: float | None = None) -> Any: ...


class Controller:
    """Run `policy` against the stack `lana` controls until stop() (or SIGTERM/SIGINT,
    with install_signal_handlers). A policy that raises is journaled and the controller
    goes on: one bad reaction must not leave the stack without its controller."""

    def __init__(self, policy: Policy, lana: EventSource, journal: Journal,
                 idle: float = 0.5) -> None:
        self.policy, self.lana, self.journal, self.idle = policy, lana, journal, idle
        self.stack = Stack(lana, journal)
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop()  # the loop notices within `idle` seconds
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> None:
        events = self.lana.events(timeout=self.idle)  # joined from here on: none missed
        self.journal.write("ready", shape=self.stack.shape().describe(),
                           policy=type(self.policy).__name__)
        self._call("start")
        while not self._stopping:
            for event in events:
                self.journal.write("event", event=asdict(event))
                self._call("on_event", event)
                if self._stopping:
                    break
            else:
                self._call("on_idle")
            events = self.lana.events(timeout=self.idle)
        self._call("stop")
        self.journal.write("stopped", shape=self.stack.shape().describe())

    def _call(self, hook: str, *args: LanaEvent) -> None:
        try:
            getattr(self.policy, hook)(*args, self.stack)
        except LanaError as err:  # the action is journaled already, with its refusal
            self.journal.write("error", hook=hook, error=str(err))
        except Exception as err:  # noqa: BLE001 - a policy bug must not stop the loop
            self.journal.write("error", hook=hook, error=f"{type(err).__name__}: {err}",
                               traceback=traceback.format_exc())
            print(f"controller: the policy's {hook} raised {type(err).__name__}: {err}",
                  file=sys.stderr)


def load_policy(spec: str, kwargs: dict[str, Any]) -> Policy:
    """"path/to/file.py:Class" or "package.module:Class", made with **kwargs."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise ValueError(f"policy {spec!r}: expected FILE.py:CLASS or MODULE:CLASS")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"policy file {where} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    cls = getattr(module, name, None)
    if not isinstance(cls, type) or not issubclass(cls, Policy):
        raise ValueError(f"policy {spec!r}: {name} is not a subclass of "
                         "lab.autonomic.policy.Policy")
    return cls(**kwargs)
