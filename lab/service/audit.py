"""The refusal log: one JSON line per refused request (uid, op, code, reason), in a file
only root can read or write."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any


class RefusalLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def refused(self, uid: int | None, pid: int | None, op: str | None, code: str,
                reason: str, **extra: Any) -> None:
        line = json.dumps({"at": time.time(), "uid": uid, "pid": pid, "op": op, "code": code,
                           "reason": reason, **extra}, sort_keys=True)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()
