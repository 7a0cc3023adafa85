"""Run host commands for the image build, with errors that carry the command's output.

Division of labour: every subprocess of the image build goes through `run`, which never
uses a shell, always has a timeout, and turns a failure into `CommandError` (last line of
output in the message) or, with `failure=`, into an `ImageError` that shows the tail of the
output (a compiler error is useless without its context).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.errors import CommandError, ImageError


def run(argv: Sequence[str | Path], *, timeout: float = 600, cwd: Path | None = None,
        env: Mapping[str, str] | None = None, hint: str | None = None,
        failure: str | None = None, tail_lines: int = 40) -> str:
    """Run argv, return its stdout+stderr; raise with the output tail when it fails."""
    args = [str(a) for a in argv]
    try:
        done = subprocess.run(args, cwd=cwd, env=env, timeout=timeout, check=False,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, text=True, errors="replace")
    except FileNotFoundError:
        raise ImageError(f"`{args[0]}` is not installed on this host",
                         "run scripts/setup-host.sh to install the lab's host packages") from None
    except subprocess.TimeoutExpired as exc:
        raise ImageError(f"`{' '.join(args)}` did not finish within {timeout:.0f} s",
                         hint or "check the network to the Debian mirror and retry") from exc
    if done.returncode != 0:
        if failure:
            tail = "\n".join(done.stdout.rstrip().splitlines()[-tail_lines:])
            raise ImageError(f"{failure} (`{' '.join(args)}` exited with {done.returncode})"
                             f"\n--- output tail ---\n{tail}", hint)
        raise CommandError(args, done.returncode, done.stdout, hint)
    return done.stdout
