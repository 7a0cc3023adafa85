"""Waiting for something that can be seen: call a condition until it holds or a deadline
passes. Under TCG on a loaded machine no fixed wait is long enough; this one ends as
soon as the condition is true."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(condition: Callable[[], T], timeout: float, interval: float = 0.1) -> T:
    """Call `condition` every `interval` s until it returns something true, or until
    `timeout` s have passed; return what it returned last (true: it held in time)."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = condition()
    return value
