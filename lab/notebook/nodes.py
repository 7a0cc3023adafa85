"""The nodes of a notebook's lab: a LANA VM (run commands, read LANA's state as tables and
graphs) and a Mininet host (run commands, ping, send exact frames)."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass

import networkx as nx
import pandas as pd
from matplotlib.figure import Figure

from lab.errors import LabError
from lab.lana.procfs import FBlock
from lab.notebook.draw import draw_block_graph
from lab.notebook.graph import block_graph
from lab.notebook.snapshot import SNAPSHOT_SCRIPT, Snapshot, parse_snapshot
from lab.notebook.tables import blocks_table, counters_table, ppe_table
from lab.vm.backends import LabVM
from lab.vm.qga import ExecResult


class CommandFailed(LabError):
    """A command a notebook ran on a node exited with a non-zero status."""


@dataclass
class VmNode:
    """A VM of the lab, with LANA loaded on demand (`modprobe`)."""

    name: str
    vm: LabVM

    def __repr__(self) -> str:
        return f"<VM {self.name}>"

    # commands
    def run(self, command: str, timeout: float = 120.0) -> ExecResult:
        """Run a shell command; return stdout, stderr and the exit code (no error raised)."""
        return self.vm.exec(["sh", "-c", command], timeout=timeout)

    def sh(self, command: str, timeout: float = 120.0) -> str:
        """Run a shell command and return what it printed; raise if it fails."""
        result = self.run(command, timeout)
        if result.exit_code != 0:
            said = (result.stderr or result.stdout).strip()
            raise CommandFailed(f"{self.name}: `{command}` failed with exit code "
                                f"{result.exit_code}: {said}",
                                "read the message above; `.blocks()` shows LANA's state")
        return result.stdout

    def fbctl(self, *args: str) -> str:
        """`fbctl ARGS` in the guest, e.g. vm1.fbctl("bind", "c1", "eth0")."""
        return self.sh(shlex.join(["fbctl", *args]))

    def vlink(self, *args: str) -> str:
        """`vlink ARGS` in the guest, e.g. vm1.vlink("ethernet", "hook", "eth0")."""
        return self.sh(shlex.join(["vlink", *args]))

    def modprobe(self, *modules: str) -> None:
        """Load kernel modules (modprobe -a), e.g. vm1.modprobe("lana", "fb_counter")."""
        self.sh(shlex.join(["modprobe", "-a", *modules]))

    def read(self, path: str) -> str:
        return self.sh(f"cat {shlex.quote(path)}")

    def write(self, path: str, text: str) -> None:
        """Write text into a (proc) file in ONE write, as LANA's proc files want it."""
        self.vm.put_file("/tmp/.lanalab-write", text.encode())
        self.sh(f"cat /tmp/.lanalab-write > {shlex.quote(path)}")

    def put_file(self, path: str, data: bytes | str) -> None:
        self.vm.put_file(path, data)

    def mac(self, device: str = "eth0") -> str:
        return self.read(f"/sys/class/net/{device}/address").strip()

    # LANA state
    def snapshot(self) -> Snapshot:
        """Instances, counters and engine statistics in one round trip."""
        return parse_snapshot(self.sh(SNAPSHOT_SCRIPT))

    def wait_engine(self, packets: int, timeout: float = 10.0) -> Snapshot:
        """Wait (in the guest, no round trips) until the engine has run `packets` packets
        in total since lana.ko was loaded, or `timeout` seconds; -> a snapshot taken then.
        Exact, unlike waiting for counters to stop changing: a notebook that knows how many
        runs its frames cause (tees add one run per clone) waits for exactly those."""
        steps = max(1, int(timeout / 0.1))
        wait = (f"t={int(packets)}; i=0; ppe() {{ awk '{{s+=$2}} END {{print s+0}}' "
                f"/proc/net/lana/ppe 2>/dev/null || echo 0; }}\n"
                f"while [ \"$(ppe)\" -lt \"$t\" ] && [ $i -lt {steps} ]; do "
                f"sleep 0.1; i=$((i+1)); done\n")
        return parse_snapshot(self.sh(wait + SNAPSHOT_SCRIPT, timeout=timeout + 60))

    def engine_packets(self) -> int:
        """Packets the engine has run so far (all CPUs)."""
        return sum(cpu.packets for cpu in self.snapshot().ppe)

    def fblocks(self) -> dict[str, FBlock]:
        return self.snapshot().blocks

    def blocks(self) -> pd.DataFrame:
        """The instances as a table (from /proc/net/lana/fblocks)."""
        return blocks_table(self.fblocks())

    def counters(self, settle: bool = False) -> pd.DataFrame:
        """packets and bytes of every counter instance. settle=True waits until they have
        stopped changing for a second (frames still in flight arrive late under TCG)."""
        if settle:
            from lab.grading.traffic import wait_settled

            def packets() -> dict[str, int]:
                return {n: c.packets for n, c in self.snapshot().counters.items()}

            wait_settled(packets, timeout=20.0, quiet=1.0)
        return counters_table(self.snapshot().counters)

    def counter(self, name: str) -> tuple[int, int]:
        """(packets, bytes) of one counter instance."""
        counters = self.snapshot().counters
        if name not in counters:
            raise LabError(f"{self.name} has no counter instance {name!r}",
                           f"counters: {', '.join(counters) or 'none'}")
        return counters[name].packets, counters[name].bytes

    def ppe(self) -> pd.DataFrame:
        """The packet processing engine's statistics, one row per CPU and a total."""
        return ppe_table(self.snapshot().ppe)

    def block_graph(self) -> nx.DiGraph:
        """The block graph as a networkx DiGraph (edges lower -> upper)."""
        return block_graph(self.fblocks())

    def draw(self, title: str | None = None, show_counters: bool = True) -> Figure | None:
        """Draw this node's live block graph (counters annotated with their packets)."""
        snap = self.snapshot()
        packets = {n: c.packets for n, c in snap.counters.items()} if show_counters else None
        return draw_block_graph(block_graph(snap.blocks),
                                title or f"LANA blocks in {self.name}", packets)

    def grading_node(self):  # -> lab.grading.nodes.GuestNode
        """This VM as the grading helpers see it (same agent and console watcher; both
        backends, qemu and libvirt, have them)."""
        from lab.grading.nodes import GuestNode

        return GuestNode(self.name, self.vm.agent, self.vm.console)  # type: ignore[attr-defined]

    def reset_lana(self) -> None:
        """Start over: unbind and remove every instance, unload the LANA modules."""
        from lab.grading.reset import reset_lana

        reset_lana(self.grading_node())


@dataclass
class HostNode:
    """A Mininet host of the lab (a process in its own network namespace)."""

    name: str
    pid: int
    interfaces: list[str]

    def __repr__(self) -> str:
        return f"<host {self.name}>"

    def run(self, command: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["mnexec", "-a", str(self.pid), "sh", "-c", command],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def sh(self, command: str, timeout: float = 120.0) -> str:
        result = self.run(command, timeout)
        if result.returncode != 0:
            raise CommandFailed(f"{self.name}: `{command}` failed with exit code "
                                f"{result.returncode}: "
                                f"{(result.stderr or result.stdout).strip()}")
        return result.stdout

    def ping(self, address: str, count: int = 3, interval: float = 0.2) -> str:
        """Ping another node of the lab; return ping's report (raises if none answered)."""
        return self.sh(f"ping -c {count} -i {interval} -W 2 {shlex.quote(address)}")

    def send_frames(self, frames: list[bytes], iface: str | None = None) -> int:
        """Send exact Ethernet frames (bytes; see lab.grading.corpus) from this host."""
        from lab.grading.nodes import HostNode as GradingHost
        from lab.grading.traffic import send_frames

        return send_frames(GradingHost(self.name, self.pid, self.interfaces), frames, iface)

    def popen(self, command: str) -> subprocess.Popen[str]:
        """Start a command in the background (e.g. traffic while counters are watched)."""
        return subprocess.Popen(["mnexec", "-a", str(self.pid), "sh", "-c", command],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

