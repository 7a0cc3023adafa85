"""The lab's exception hierarchy.

Division of labour: every error a user can hit derives from `LabError`, which carries the
message (what went wrong) and a `hint` (what to do next). The CLI catches `LabError`, prints
``error: <message>`` plus the hint, and exits 1; library code raises the most specific
subclass and attaches the fields a caller may want to inspect (argv, trace, console tail).
"""

from __future__ import annotations

from collections.abc import Sequence


class LabError(Exception):
    """Base of every error the lab raises on purpose."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if not self.hint:
            return self.message
        # after a multi-line message (a trace, a console tail) the hint gets its own line
        sep = "\nhint: " if "\n" in self.message else "; "
        return f"{self.message}{sep}{self.hint}"


class TopologyError(LabError):
    """A topology description is invalid."""


class ImageError(LabError):
    """The guest image is missing, incomplete or cannot be built."""


class PrivilegeError(LabError):
    """The lab lacks a privilege it needs (root, CAP_NET_ADMIN, /dev/net/tun)."""


class RunStateError(LabError):
    """A run record cannot be written or read, or a name breaks a host limit."""


class CommandError(LabError):
    """A host command failed."""

    def __init__(
        self, argv: Sequence[str], returncode: int, stderr_tail: str, hint: str | None = None
    ) -> None:
        detail = stderr_tail.strip().splitlines()[-1:] or ["no output"]
        super().__init__(
            f"command `{' '.join(argv)}` failed with status {returncode} ({detail[0]})", hint
        )
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class BackendError(LabError):
    """A VM backend (qemu, libvirt) failed to create, run or stop a VM."""


class VMBootError(BackendError):
    """A VM did not become ready; `console_tail` holds the last console lines."""

    def __init__(self, message: str, console_tail: str, hint: str | None = None) -> None:
        tail = console_tail.rstrip()
        full = f"{message}\n--- console tail ---\n{tail}" if tail else message
        super().__init__(full, hint)
        self.console_tail = console_tail


class GuestError(LabError):
    """Something failed inside a guest VM."""


class GuestAgentError(GuestError):
    """The guest agent is unreachable or answered with an error."""


class GuestTimeoutError(GuestError):
    """A guest command or agent request did not finish in time."""


class GuestCommandError(GuestError):
    """A guest command exited with a non-zero status (raised by `ExecResult.check`)."""

    def __init__(self, argv: Sequence[str], exit_code: int, stderr: str) -> None:
        tail = stderr.strip().splitlines()[-3:]
        detail = " | ".join(tail) if tail else "no stderr"
        super().__init__(f"guest command `{' '.join(argv)}` exited with {exit_code} ({detail})")
        self.argv = list(argv)
        self.exit_code = exit_code
        self.stderr = stderr


class GuestKernelError(GuestError):
    """The guest kernel logged an Oops, BUG, panic or WARNING; `trace` is the whole block."""

    def __init__(self, vm: str, headline: str, trace: str) -> None:
        super().__init__(
            f"vm `{vm}`: guest kernel reported `{headline}`\n{trace.rstrip()}",
            "the trace above comes from the guest console log; fix the module that appears "
            "in it, then start a fresh VM (a kernel that oopsed is not trustworthy)",
        )
        self.vm = vm
        self.headline = headline
        self.trace = trace


class GradingError(LabError):
    """A grader could not evaluate a submission (as opposed to the submission failing)."""
