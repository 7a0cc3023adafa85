"""One running lab: a topology brought up as VMs, Mininet hosts and bridges.

`LabRun.up()` records everything it creates (lab.runstate), starts the fabric, boots all
VMs at once (they boot in parallel, which matters under TCG), waits for their guest agents
and configures addresses. `down()` undoes it. The run's description is written to
`lab.json` in the run folder so that other `lanalab` commands (status, exec, console) can
reach the nodes without talking to the process that owns the lab.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from lab.bench.plan import ICOUNT_SHIFT
from lab.errors import LabError
from lab.fabric import Fabric
from lab.image.store import ImageInfo
from lab.multihost.spread import Spread, spans_hosts
from lab.runstate import RunRecord
from lab.topology import Topology
from lab.topology.model import LOCAL, VmSpec
from lab.vm.backends import LabVM, make_vm
from lab.vm.kvm import AccelVerdict, accel_verdict
from lab.vm.qemu import Nic

STATE_FILE = "lab.json"
DEFAULT_MTU = 1500
REPO_ROOT = Path(__file__).resolve().parents[1]
# The guest clock a lab can ask for: "real" (wall-clock time), or "instructions" (TCG
# only: qemu -icount, 1 ns per guest instruction, so rates measured in the guest do not
# depend on the host's load; what `lanalab bench` and exercise 6 measure with)
CLOCKS = ("real", "instructions")
INSTRUCTION_CLOCK_SHIFT = ICOUNT_SHIFT  # qemu -icount shift: 2**0 ns per instruction


def icount_for(clock: str) -> int | None:
    """LabRun.icount_shift for a clock of CLOCKS."""
    if clock not in CLOCKS:
        raise LabError(f"unknown clock {clock!r}", hint="the clocks are: " + ", ".join(CLOCKS))
    return INSTRUCTION_CLOCK_SHIFT if clock == "instructions" else None

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class LabRun:
    topo: Topology
    image: ImageInfo
    share: Path | None = REPO_ROOT
    progress: Progress = _quiet
    backend: str | None = None  # "qemu" or "libvirt"; None: $LANALAB_BACKEND, else qemu
    libvirt_uri: str | None = None  # None: $LANALAB_LIBVIRT_URI, else qemu:///system
    # TCG guests whose clock counts instructions (2**shift ns each); None: a real clock
    icount_shift: int | None = None
    # the address other hypervisors reach this machine at, for a switch that spans it and
    # them (lab.multihost.spread); None: $LANALAB_UNDERLAY
    local_underlay: str | None = None
    run: RunRecord | None = None
    spread: Spread | None = None  # a lab across hypervisors: placement, hosts, tunnels
    fabric: Fabric | None = None
    vms: dict[str, LabVM] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def up(self, ready_timeout: float = 120.0) -> None:
        if spans_hosts(self.topo) and self.icount_shift is not None:
            raise LabError(f"topology '{self.topo.name}' runs VMs on other hypervisors, "
                           "through libvirt, which cannot give the instruction clock",
                           "use the real clock (--clock real) for a lab across hosts")
        start = time.monotonic()
        self.run = RunRecord.create()
        self.progress(f"run {self.run.id}: bringing up topology '{self.topo.name}'")
        try:
            if spans_hosts(self.topo):
                self.spread = Spread.plan(self.topo, self.run, self.local_underlay,
                                          self.progress)
            remote = frozenset(self.spread.remote_vms()) if self.spread else frozenset()
            self.fabric = Fabric(self.topo, self.run, remote)
            self.fabric.start()
            if self.spread is not None:
                self.spread.make_links(self.fabric.bridges, self.progress)
            self.timings["fabric"] = time.monotonic() - start
            self.progress(f"fabric up: {len(self.fabric.local_switches)} bridge(s), "
                          f"{len(self.topo.hosts)} Mininet host(s) "
                          f"({self.timings['fabric']:.1f} s)")
            self._boot_vms(ready_timeout)
            self._configure_vm_addresses()
            self._configure_host_mtus()
            self.write_state()
        except BaseException:
            self.progress("bring-up failed: tearing down what was made")
            self.down()
            raise
        self.timings["total"] = time.monotonic() - start
        self.progress(f"lab up in {self.timings['total']:.1f} s")

    def release_agents(self) -> None:
        """Let go of every guest-agent socket, so other processes (`lanalab exec`) can reach
        the guests; each agent reconnects by itself when this process uses it again."""
        for vm in self.vms.values():
            agent = getattr(vm, "agent", None)  # a libvirt VM has none before it boots
            if agent is not None:
                agent.close()

    def __enter__(self) -> LabRun:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def sh(self, node: str, command: str, timeout: float = 120.0) -> str:
        """Run a shell command on a VM or a Mininet host; raise LabError unless it exits 0."""
        if node in self.vms:
            return guest_exec_checked(self.vms[node], ["sh", "-c", command], timeout)
        if self.fabric is not None and node in self.fabric.host_pids:
            out = self.fabric.host(node).cmd(f"{command}; echo \"rc=$?\"")
            text, _, code = out.rstrip().rpartition("rc=")
            if code != "0":
                raise LabError(f"{node}: `{command}` failed with exit code {code}: {text}")
            return text
        raise LabError(f"no node {node!r} in this lab",
                       hint=f"nodes: {', '.join([*self.vms, *self.fabric.host_pids])}"
                       if self.fabric else None)

    def forget_neighbours(self) -> None:
        """Flush the ARP/neighbour caches of every node's Linux stack. After a LANA stack
        starts (or stops) forwarding between switches, an address that did not answer a
        moment ago may still have a resolution running out in a node's cache: the first
        packets sent to it then fail with "Destination Host Unreachable" when that
        attempt gives up. Flushed, the next packet resolves afresh."""
        for node in [*self.vms, *(self.fabric.host_pids if self.fabric else {})]:
            self.sh(node, "ip neigh flush all > /dev/null")

    def _accel(self) -> AccelVerdict | None:
        """None (each VM probes) unless an instruction clock was asked for, which only
        TCG can give: under KVM the guest clock stays real."""
        if self.icount_shift is None:
            return None
        verdict = accel_verdict(Path(self.image.kernel))
        if verdict.accel != "tcg":
            return None
        return replace(verdict, icount_shift=self.icount_shift)

    def clock_of(self, vm: LabVM) -> str:
        """The clock `vm` really got: instructions only if asked for and under TCG."""
        accel = getattr(vm, "accel", None)
        icount = accel is not None and getattr(accel, "icount_shift", None) is not None
        return "instructions" if icount and vm.describe().get("accel") == "tcg" else "real"

    def _make_vm(self, vm_spec: VmSpec) -> LabVM:
        assert self.run is not None and self.fabric is not None
        if self.spread is not None and vm_spec.name in self.spread.remote_vms():
            return self._make_remote_vm(vm_spec)
        nics = [Nic(tap=t.tap, model=vm_spec.nics[t.nic_index].model)
                for t in self.fabric.taps_of(vm_spec.name)]
        return make_vm(self.backend, vm_spec.name, self.image, self.run, nics=nics,
                       share=self.share, memory_mb=vm_spec.memory_mb, cpus=vm_spec.cpus,
                       uri=self.libvirt_uri, accel=self._accel())

    def _make_remote_vm(self, vm_spec: VmSpec) -> LabVM:
        """A libvirt domain on the VM's hypervisor, each NIC on that host's bridge of its
        switch; no /lab share (the share is a folder of this machine)."""
        from lab.vm.libvirt_backend import BridgeNic, LibvirtVM

        assert self.run is not None and self.fabric is not None and self.spread is not None
        nics = [BridgeNic(bridge=self.fabric.bridges[nic.switch], model=nic.model)
                for nic in vm_spec.nics]
        # the image goes up to the host first (lab.multihost.images): its lines go to ours
        return LibvirtVM(vm_spec.name, self.image, self.run, nics=nics, share=None,
                         memory_mb=vm_spec.memory_mb, cpus=vm_spec.cpus,
                         uri=self.spread.uri_of(vm_spec.name), progress=self.progress)

    def _boot_vms(self, ready_timeout: float) -> None:
        assert self.run is not None and self.fabric is not None
        for vm_spec in self.topo.vms:
            vm = self._make_vm(vm_spec)
            self.vms[vm_spec.name] = vm
            vm.start()
        if not self.vms:
            return
        self.progress(f"booting {len(self.vms)} VM(s): {', '.join(self.vms)}")
        with ThreadPoolExecutor(max_workers=len(self.vms)) as pool:
            waits = {name: pool.submit(vm.wait_ready, ready_timeout)
                     for name, vm in self.vms.items()}
            for name, wait in waits.items():
                seconds = wait.result()
                self.timings[f"boot {name}"] = seconds
                self.progress(f"  {name}: guest agent ready after {seconds:.1f} s")

    def _mtus(self) -> dict[tuple[str, int], int]:
        """(node, NIC or link index) -> MTU, for links on switches that cross hosts (1450:
        VXLAN's 50 bytes); empty for a lab on this machine only."""
        return {k: v for k, v in self.spread.mtus().items() if v != DEFAULT_MTU} \
            if self.spread is not None else {}

    def _configure_vm_addresses(self) -> None:
        mtus = self._mtus()
        for spec in self.topo.vms:
            vm = self.vms[spec.name]
            for i, nic in enumerate(spec.nics):
                if (spec.name, i) in mtus:
                    guest_exec_checked(vm, ["ip", "link", "set", f"eth{i}", "mtu",
                                            str(mtus[(spec.name, i)])])
                if nic.ip:
                    guest_exec_checked(vm, ["ip", "addr", "add", nic.ip, "dev", f"eth{i}"])

    def _configure_host_mtus(self) -> None:
        for (node, j), mtu in self._mtus().items():
            if self.fabric is not None and node in self.fabric.host_pids:
                self.sh(node, f"ip link set {node}-eth{j} mtu {mtu}")

    def state(self) -> dict:
        assert self.run is not None and self.fabric is not None
        return {
            "id": self.run.id,
            "prefix": self.run.prefix,
            "topology": {"name": self.topo.name, "source": self.topo.source},
            "owner_pid": os.getpid(),
            "image": str(self.image.path),
            "vms": {name: {**vm.describe(), "clock": self.clock_of(vm),
                           "on": self.spread.placement[name] if self.spread else LOCAL,
                           "nics": self._nic_states(name, vm)}
                    for name, vm in self.vms.items()},
            "hosts": {h.name: {"pid": self.fabric.host_pids.get(h.name),
                               "links": [{"if": f"{h.name}-eth{j}", "ip": lk.ip}
                                         for j, lk in enumerate(h.links)]}
                      for h in self.topo.hosts},
            "bridges": self.fabric.bridges,
            **({"spread": self.spread.describe()} if self.spread is not None else {}),
        }

    def _nic_states(self, name: str, vm: LabVM) -> list[dict[str, str | None]]:
        """Each NIC of a VM for lab.json: its tap and bridge (on the VM's host)."""
        specs = self.topo.vm(name).nics
        bridges = self.fabric.bridges if self.fabric is not None else {}
        return [{"tap": nic.tap, "bridge": bridges.get(specs[i].switch),
                 "guest_if": f"eth{i}", "ip": specs[i].ip} for i, nic in enumerate(vm.nics)]

    def write_state(self) -> None:
        assert self.run is not None
        path = self.run.dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state(), indent=2))
        tmp.replace(path)

    def down(self) -> None:
        """Stop VMs, then the fabric, then drop whatever records remain."""
        for vm in self.vms.values():
            try:
                vm.stop()
            except Exception as exc:  # keep tearing down the rest
                self.progress(f"  stopping {vm.name}: {exc}")
        self.vms.clear()
        if self.fabric is not None:
            self.fabric.stop()
            self.fabric = None
        if self.run is not None:
            from lab.runstate import clean

            report = clean(self.run.id)
            for error in report.errors:
                self.progress(f"  cleanup: {error}")
            if report.errors:
                self.progress(f"  the record of run {self.run.id} is kept: run `lanalab "
                              "clean` once the hosts named above answer again")
            self.run = None
        self.spread = None


def guest_exec_checked(vm: LabVM, argv: list[str], timeout: float = 60.0) -> str:
    result = vm.exec(argv, timeout=timeout)
    if result.exit_code != 0:
        raise LabError(f"{vm.name}: `{' '.join(argv)}` failed with exit code "
                       f"{result.exit_code}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def open_lab(topology: str | None = None, progress: Progress = _quiet,
             **params: object) -> LabRun:
    """A lab for notebooks and graders: `with open_lab("star", n=3) as lab: lab.sh("vm1", ...)`
    always tears down, also when the block raises or the kernel is interrupted.
    params are the topology's, except clock: "real" (default) or "instructions" (TCG
    guests whose clock counts instructions, see CLOCKS): open_lab("bench",
    clock="instructions"), Lab("bench", clock="instructions") in a notebook."""
    from lab.image.build import ensure_image
    from lab.topology.loader import load_topology

    icount = icount_for(str(params.pop("clock", "real")))
    topo = load_topology(topology, {k: str(v) for k, v in params.items()} or None)
    return LabRun(topo, ensure_image(progress), progress=progress, icount_shift=icount)
