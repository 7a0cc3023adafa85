"""The nodes of a running lab, as a grader sees them: reached through the lab's state file
(lab.json), so a grader in its own process can work on a lab another process owns."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import GradingError, GuestError, GuestKernelError
from lab.labstate import ActiveLab, find_lab
from lab.vm.console import ConsoleWatcher
from lab.vm.qga import ExecResult, GuestAgent


class GuestCrashed(GradingError):
    """A guest kernel oopsed or panicked while a grader was using it."""

    def __init__(self, vm: str, headline: str, trace: str) -> None:
        super().__init__(f"vm `{vm}` crashed: {headline}\n{trace.rstrip()}",
                         "the trace names the function that failed; fix it and grade again")
        self.vm = vm
        self.headline = headline
        self.trace = trace


@dataclass
class GuestNode:
    """One VM of the lab: run shell commands, put files, watch its console for Oopses."""

    name: str
    agent: GuestAgent
    console: ConsoleWatcher
    crashed: GuestCrashed | None = None
    accel: str | None = None  # "kvm" or "tcg", as the lab recorded it
    # "instructions": a TCG guest whose clock counts instructions (lab.labrun.CLOCKS);
    # "real" also for labs recorded before the clock was (they all had the wall clock)
    clock: str = "real"

    def run(self, command: str, timeout: float = 60.0) -> ExecResult:
        if self.crashed is not None:
            raise self.crashed
        try:
            result = self.agent.exec(["sh", "-c", command], timeout=timeout)
        except GuestError as exc:
            self.raise_if_crashed(final=True)
            raise GradingError(f"vm `{self.name}` did not answer: {exc}",
                               "the guest may hang; look at its console log") from exc
        return result

    def sh(self, command: str, timeout: float = 60.0) -> str:
        """Run a command the grader itself needs; a failure is the grader's problem."""
        result = self.run(command, timeout)
        if result.exit_code != 0:
            raise GradingError(f"vm `{self.name}`: `{command}` failed ({result.exit_code}): "
                               f"{(result.stderr or result.stdout).strip()}")
        return result.stdout

    def read(self, path: str) -> str:
        return self.sh(f"cat {shlex.quote(path)}")

    def put(self, path: str, data: bytes | str) -> None:
        payload = data.encode() if isinstance(data, str) else data
        self.agent.put_file(path, payload)

    def new_problems(self, final: bool = False) -> list:
        return self.console.poll(final=final)

    def raise_if_crashed(self, final: bool = False) -> None:
        for problem in self.new_problems(final=final):
            self.crashed = GuestCrashed(self.name, problem.headline, problem.trace)
            raise self.crashed


@dataclass
class HostNode:
    """A Mininet host of the lab: commands run in its namespaces through mnexec."""

    name: str
    pid: int
    interfaces: list[str] = field(default_factory=list)

    def run(self, argv: list[str], input: bytes | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["mnexec", "-a", str(self.pid), *argv], input=input,
                              capture_output=True, timeout=timeout, check=False)

    def sh(self, command: str, timeout: float = 60.0) -> str:
        result = self.run(["sh", "-c", command], timeout=timeout)
        if result.returncode != 0:
            raise GradingError(f"host `{self.name}`: `{command}` failed: "
                               f"{result.stderr.decode(errors='replace').strip()}")
        return result.stdout.decode(errors="replace")


@dataclass
class LabNodes:
    """All nodes of one running lab."""

    lab: ActiveLab
    vms: dict[str, GuestNode]
    hosts: dict[str, HostNode]

    @classmethod
    def attach(cls, run_id: str | None) -> LabNodes:
        lab = find_lab(run_id)
        vms = {}
        for name, desc in lab.state["vms"].items():
            console = ConsoleWatcher(Path(desc["console_log"]))
            console.poll(final=True)  # what happened before grading is not this grader's
            vms[name] = GuestNode(name, GuestAgent(Path(desc["qga_socket"]), name=name), console,
                                  accel=desc.get("accel"), clock=desc.get("clock", "real"))
        hosts = {name: HostNode(name, int(desc["pid"]), [lk["if"] for lk in desc["links"]])
                 for name, desc in lab.state["hosts"].items()}
        return cls(lab, vms, hosts)

    def vm(self, name: str) -> GuestNode:
        return self.vms[name]

    def host(self, name: str) -> HostNode:
        return self.hosts[name]


def as_crash(exc: BaseException) -> GuestCrashed | None:
    if isinstance(exc, GuestCrashed):
        return exc
    if isinstance(exc, GuestKernelError):
        return GuestCrashed(exc.vm, exc.headline, exc.trace)
    return None
