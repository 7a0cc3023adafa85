"""The network fabric of a lab: Mininet hosts, Linux bridges and the VMs' tap devices.

Host interface names come from the run prefix (contracts §4), never from user-chosen node
names: bridge `<prefix>s<i>`, its Mininet ports `<prefix>s<i>p<j>`, VM taps
`<prefix>t<vm>n<nic>`. Everything is recorded before it is created, so `lanalab clean`
can remove exactly this after a crash.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import partial

from pyroute2 import IPRoute

from lab.errors import LabError
from lab.runstate import RunRecord
from lab.shaping import Shape, apply_shape
from lab.topology import HostLink, LinkShape, Topology


@dataclass(frozen=True)
class TapPlan:
    vm: str
    nic_index: int
    tap: str
    bridge: str


def _process_starttime(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[19])  # field 22 of proc(5), counted after the comm field


@dataclass(frozen=True)
class HostPort:
    """Both ends of a Mininet host's link: its interface and the bridge port facing it."""

    host: str
    host_if: str
    bridge_port: str
    link: HostLink


def _shape(spec: LinkShape) -> Shape:
    return Shape(spec.bw, spec.delay, spec.loss)


def _tc_in(node, argv: list[str]) -> tuple[int, str]:  # node: mininet.node.Host
    """Run tc inside a Mininet host's namespace."""
    out = node.cmd("tc " + " ".join(argv) + " 2>&1; echo rc=$?")
    text, _, code = out.rstrip().rpartition("rc=")
    return int(code or 1), text


def check_fabric_prerequisites() -> None:
    """Fail early, saying what to install, instead of deep inside Mininet."""
    missing = [tool for tool in ("mnexec", "brctl", "ifconfig") if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing host tools: {', '.join(missing)}",
                       hint="run scripts/setup-host.sh (Debian packages mininet, bridge-utils, "
                            "net-tools)")
    if os.geteuid() != 0:
        raise LabError("the lab's network fabric needs root", hint="run lanalab as root (sudo)")


class Fabric:
    """Builds and tears down the Mininet side of one lab run."""

    def __init__(self, topo: Topology, run: RunRecord,
                 remote_vms: frozenset[str] = frozenset()) -> None:
        """`remote_vms` run on other hypervisors (lab.multihost.spread): they get no tap
        here, and a switch whose nodes are all remote gets no bridge here."""
        self.topo = topo
        self.run = run
        self.bridges = {sw.name: run.ifname(f"s{i}") for i, sw in enumerate(topo.switches)}
        self.taps = [TapPlan(vm.name, j, run.ifname(f"t{i}n{j}"), self.bridges[nic.switch])
                     for i, vm in enumerate(topo.vms) for j, nic in enumerate(vm.nics)
                     if vm.name not in remote_vms]
        remote_only = {nic.switch for vm in topo.vms if vm.name in remote_vms
                       for nic in vm.nics}
        self.local_switches = [sw.name for sw in topo.switches
                               if sw.name not in remote_only or self._has_local_node(sw.name)]
        self.net = None  # mininet.net.Mininet once started
        self.host_pids: dict[str, int] = {}
        self.host_ports: list[HostPort] = []

    def _has_local_node(self, switch: str) -> bool:
        bridge = self.bridges[switch]
        return any(t.bridge == bridge for t in self.taps) or any(
            link.switch == switch for host in self.topo.hosts for link in host.links)

    def taps_of(self, vm: str) -> list[TapPlan]:
        return [t for t in self.taps if t.vm == vm]

    def start(self) -> None:
        check_fabric_prerequisites()
        self._start_mininet()
        self._create_taps()
        self._shape_links()

    def _shape_links(self) -> None:
        """Shape on this machine's side of each link: the VM's tap, the host's bridge port."""
        ends: list[tuple[str, LinkShape]] = [
            (t.tap, self.topo.vm(t.vm).nics[t.nic_index]) for t in self.taps]
        ends += [(port.bridge_port, port.link) for port in self.host_ports]
        for ifname, spec in ends:
            apply_shape(ifname, _shape(spec))
        for port in self.host_ports:  # the host's own side: what the host sends
            apply_shape(port.host_if, _shape(port.link), partial(_tc_in, self.host(port.host)))

    def _start_mininet(self) -> None:
        from mininet.log import setLogLevel
        from mininet.net import Mininet
        from mininet.nodelib import LinuxBridge

        setLogLevel("error")
        # Mininet.init() raises host-wide limits and sysctls; the lab leaves the host as it is.
        Mininet.inited = True
        net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False,
                      waitConnected=False)
        self.net = net
        switch_nodes = {}
        for name in self.local_switches:
            bridge = self.bridges[name]
            self.run.record("link", ifname=bridge, role=f"bridge of switch {name}")
            switch_nodes[name] = net.addSwitch(bridge, cls=LinuxBridge, stp=False)
        ports = {name: 0 for name in self.local_switches}
        for host in self.topo.hosts:
            node = net.addHost(host.name, ip=None)
            for j, link in enumerate(host.links):
                ports[link.switch] += 1
                port = f"{self.bridges[link.switch]}p{ports[link.switch]}"
                self.run.record("link", ifname=port, role=f"port of {host.name}")
                host_port = HostPort(host.name, f"{host.name}-eth{j}", port, link)
                self.host_ports.append(host_port)
                params1 = {"ip": link.ip} if link.ip else {}
                net.addLink(node, switch_nodes[link.switch], intfName1=host_port.host_if,
                            intfName2=port, params1=params1)
        for node in (*net.hosts, *net.switches):
            self._record_process(node.pid, f"mininet shell of {node.name}")
        net.start()
        self.host_pids = {h.name: h.pid for h in net.hosts}

    def _record_process(self, pid: int, role: str) -> None:
        self.run.record("process", pid=pid, starttime=_process_starttime(pid), argv0="bash",
                        role=role)

    def _create_taps(self) -> None:
        with IPRoute() as ipr:
            for tap in self.taps:
                self.run.record("link", ifname=tap.tap, role=f"tap of {tap.vm} nic {tap.nic_index}")
                ipr.link("add", ifname=tap.tap, kind="tuntap", mode="tap")
                bridge_index = ipr.link_lookup(ifname=tap.bridge)[0]
                tap_index = ipr.link_lookup(ifname=tap.tap)[0]
                ipr.link("set", index=tap_index, master=bridge_index, state="up")

    def host(self, name: str):  # -> mininet.node.Host
        if self.net is None:
            raise LabError("the fabric is not started")
        return self.net.get(name)

    def stop(self) -> None:
        """Tear down what start() made; safe to call twice or after a partial start."""
        with IPRoute() as ipr:
            for tap in self.taps:
                for index in ipr.link_lookup(ifname=tap.tap):
                    ipr.link("del", index=index)
        if self.net is not None:
            self.net.stop()
            self.net = None
