"""Run an argv on one hypervisor host: the local machine, a testbed namespace, or a remote
machine over ssh. The lab's per-host network objects (bridges, VXLAN devices, fdb entries)
go through these, so the code that makes them does not care where the host is.

Every call has a timeout, and a failure raises HostCommandError naming the host, the argv
and the last line the command printed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from lab.errors import LabError

DEFAULT_TIMEOUT_S = 30.0
# ssh: never ask for a password or a host key (a hang, not an error), give up quickly
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
               "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")


class HostCommandError(LabError):
    """A command on a hypervisor host failed, timed out or could not start."""

    def __init__(self, host: str, argv: Sequence[str], detail: str,
                 returncode: int | None = None, stdout: str = "", stderr: str = "") -> None:
        super().__init__(f"on host {host}: `{' '.join(argv)}` {detail}",
                         "check that the host is up and reachable (`lanalab status`)")
        self.host = host
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


@dataclass(frozen=True)
class HostShell:
    """Base: `wrap` turns an argv into what runs on this machine; `run` runs it."""

    name: str

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return list(argv)

    def run(self, argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S,
            check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `argv` on the host; its stdout/stderr as text. `check`: raise on exit != 0."""
        argv = list(argv)
        try:
            done = subprocess.run(self.wrap(argv), capture_output=True, text=True,
                                  timeout=timeout, input=input, check=False)
        except subprocess.TimeoutExpired:
            raise HostCommandError(self.name, argv, f"gave no answer within {timeout:g} s"
                                   ) from None
        except OSError as exc:
            raise HostCommandError(self.name, argv, f"could not start ({exc.strerror})"
                                   ) from None
        if check and done.returncode != 0:
            raise HostCommandError(self.name, argv,
                                   f"failed with status {done.returncode} "
                                   f"({_last_line(done.stderr or done.stdout)})",
                                   done.returncode, done.stdout, done.stderr)
        return done

    def out(self, argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S) -> str:
        return self.run(argv, timeout).stdout

    def describe(self) -> dict[str, str]:
        """What a run record stores to find this host again (see hostshell_from)."""
        return {"host": self.name, "shell": "local"}


@dataclass(frozen=True)
class LocalShell(HostShell):
    """The local machine's root namespace."""

    name: str = "local"


@dataclass(frozen=True)
class NetnsShell(HostShell):
    """A testbed host: a network namespace of the local machine."""

    netns: str = ""

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def describe(self) -> dict[str, str]:
        return {"host": self.name, "shell": "netns", "netns": self.netns}


@dataclass(frozen=True)
class SshShell(HostShell):
    """A remote machine: `target` is what ssh takes ([user@]host). The argv goes as one
    command line the remote shell splits, so each word is quoted."""

    target: str = ""

    def wrap(self, argv: Sequence[str]) -> list[str]:
        import shlex

        # "--" ends ssh's options: a target starting with "-" cannot become one
        return ["ssh", *SSH_OPTIONS, "--", self.target, shlex.join(argv)]

    def describe(self) -> dict[str, str]:
        return {"host": self.name, "shell": "ssh", "target": self.target}


def link_exists(shell: HostShell, ifname: str) -> bool:
    done = shell.run(["ip", "-j", "link", "show", "dev", ifname], check=False)
    return done.returncode == 0


def delete_link(shell: HostShell, ifname: str) -> bool:
    """Remove a link on the host: True if it was there (cleanup's `removed`)."""
    if not link_exists(shell, ifname):
        return False
    shell.run(["ip", "link", "del", "dev", ifname])
    return True


def hostshell_from(fields: dict[str, str]) -> HostShell:
    """The shell a record's describe() fields name (for cleanup from a run record)."""
    kind, name = fields.get("shell", "local"), fields.get("host", "local")
    if kind == "netns" and fields.get("netns"):
        return NetnsShell(name, fields["netns"])
    if kind == "ssh" and fields.get("target"):
        return SshShell(name, fields["target"])
    if kind == "local":
        return LocalShell(name)
    raise LabError(f"run record names host {name} with an unknown shell {fields!r}")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"
