"""The notebook's nodes for a lab that the lab service holds (a participant without root):
the same VmNode and HostNode as for a lab of one's own, with every command, file and
console read going through the service under the participant's identity."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.grading.nodes import HostNode as GradingHost
from lab.notebook.nodes import HostNode
from lab.service.client import ServiceLab
from lab.vm.console import ConsoleWatcher
from lab.vm.qga import ExecResult


class ServiceAgent:
    """A VM's guest agent as the grading helpers use it (exec, put_file), via the service."""

    def __init__(self, lab: ServiceLab, vm: str) -> None:
        self.lab, self.vm = lab, vm

    def exec(self, argv: Sequence[str] | str, timeout: float = 60.0,
             input: bytes | None = None, check: bool = False) -> ExecResult:
        argv = ["sh", "-c", argv] if isinstance(argv, str) else list(argv)
        answer = self.lab.exec(self.vm, argv, timeout, input)
        result = ExecResult(str(answer["stdout"]), str(answer["stderr"]),
                            int(answer["exit_code"]), tuple(argv))
        if check and result.exit_code != 0:
            raise LabError(f"{self.vm}: `{shlex.join(argv)}` failed with exit code "
                           f"{result.exit_code}: {result.stderr.strip()}")
        return result

    def put_file(self, path: str, data: bytes | str) -> None:
        payload = data.encode() if isinstance(data, str) else data
        self.exec(["sh", "-c", 'cat > "$1"', "put", path], input=payload, check=True)


class ServiceConsole(ConsoleWatcher):
    """Follows a VM's console log through the service (the file itself is root's)."""

    def __init__(self, lab: ServiceLab, vm: str) -> None:
        super().__init__(Path(f"/service/{lab.id}/{vm}.console.log"))  # a name, not read
        self.lab, self.vm = lab, vm

    def _read_new_lines(self) -> None:
        answer = self.lab.client.console(self.lab.id, self.vm, self._offset)
        text = str(answer["text"])
        if not text:
            return
        self._offset = int(answer["offset"])
        *lines, self._partial = (self._partial + text).split("\n")
        self._lines += [line.rstrip("\r") for line in lines]


class ServiceVM:
    """What VmNode needs of a VM (exec, put_file, agent, console), for a service lab."""

    def __init__(self, lab: ServiceLab, name: str, state: dict[str, Any]) -> None:
        self.name = name
        self.agent = ServiceAgent(lab, name)
        self.console = ServiceConsole(lab, name)
        self.clock = str(state.get("clock", "real"))
        self.accel = state.get("accel")

    def exec(self, argv: Sequence[str] | str, timeout: float = 60.0,
             input: bytes | None = None, check: bool = False) -> ExecResult:
        return self.agent.exec(argv, timeout, input, check)

    def put_file(self, path: str, data: bytes | str) -> None:
        self.agent.put_file(path, data)


class ServiceHostNode(HostNode):
    """A Mininet host of a service lab. Its commands run as you, with CAP_NET_RAW only
    (docs/service.md), so ping and raw frames work; nothing runs in the background."""

    def __init__(self, lab: ServiceLab, name: str, interfaces: list[str]) -> None:
        super().__init__(name, 0, interfaces)
        self.lab = lab

    def run(self, command: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return self._run(["sh", "-c", command], timeout)

    def _run(self, argv: list[str], timeout: float,
             input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        answer = self.lab.exec(self.name, argv, timeout, input)
        return subprocess.CompletedProcess(argv, int(answer["exit_code"]),
                                           str(answer["stdout"]), str(answer["stderr"]))

    def send_frames(self, frames: list[bytes], iface: str | None = None) -> int:
        from lab.grading.traffic import send_frames

        return send_frames(_BytesHost(self), frames, iface)

    def popen(self, command: str) -> subprocess.Popen[str]:
        raise LabError(f"{self.name}: commands in the background are not available through "
                       "the lab service", "run it with .sh() (it waits for the command)")


class _BytesHost(GradingHost):
    """The grading helpers' view of a host (run with bytes in and out) over the service."""

    def __init__(self, host: ServiceHostNode) -> None:
        super().__init__(host.name, 0, host.interfaces)
        self.host = host

    def run(self, argv: list[str], input: bytes | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
        done = self.host._run(argv, timeout, input)
        return subprocess.CompletedProcess(argv, done.returncode, done.stdout.encode(),
                                           done.stderr.encode())
