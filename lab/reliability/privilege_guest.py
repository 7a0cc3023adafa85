"""Run INSIDE a guest as an unprivileged user: every LANA control command and every
writable /proc/net/lana file must be refused. `python3 -m lab.reliability.privilege_guest`
prints {"netlink": {cmd: errno name}, "procfs": {file: errno name or "written"}} as JSON.
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

from lab.reliability.genl import CMD, LanaNetlink

ARGS = {"add": {"name": "u1", "type_": "fwd"}, "rm": {"name": "c1"},
        "set": {"name": "c1", "opt": "reset=1"}, "bind": {"name": "c1", "name2": "f1"},
        "unbind": {"name": "f1", "name2": "vb"}, "replace": {"name": "c1", "name2": "f1"},
        "subscribe": {"name": "c1", "name2": "vb"}, "unsubscribe": {"name": "c1", "name2": "vb"},
        "list": {}}


def main() -> int:
    result: dict[str, dict[str, str]] = {"netlink": {}, "procfs": {}}
    with LanaNetlink() as nl:  # resolving the family is allowed to anyone
        for cmd in CMD:
            answer = nl.request(cmd, **ARGS[cmd])  # type: ignore[arg-type]
            result["netlink"][cmd] = errno.errorcode.get(answer.errno, "OK") \
                if answer.answered else "no answer"
    proc = Path("/proc/net/lana")
    for path in [proc / "fblocks", *sorted((proc / "fblock").iterdir())]:
        try:
            with open(path, "wb", buffering=0) as f:
                f.write(b"{ 0x6, 0, 0, 0x0 },\n")
            result["procfs"][str(path)] = "written"
        except OSError as exc:
            result["procfs"][str(path)] = errno.errorcode.get(exc.errno or 0, "?")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
