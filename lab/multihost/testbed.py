"""One machine standing for two libvirt hypervisors (docs/design/multihost.md, "The
one-machine test").

Each host hvN is a network namespace `<run>-hvN` with its own libvirtd. The daemon runs in
a private mount namespace where /run/libvirt, /var/lib/libvirt, /var/cache/libvirt,
/etc/libvirt and /var/log/libvirt are bind mounts of folders under the testbed's run folder,
so the two daemons (and a host libvirtd, if any) share no state. /etc/libvirt holds a
libvirtd.conf (TCP, no auth, listening on the host's management address only) and the
lab's qemu.conf (lab.vm.libvirtd.LAB_QEMU_CONF). Started in the foreground with `--listen`:
libvirt 9 needs that flag for listen_tcp when systemd socket activation is not used.

Addresses. The underlay is a bridge in a third namespace `<run>-ul` (the network that
joins the hypervisors), with a veth into hv1 (203.0.113.1/24) and one into hv2
(203.0.113.2/24), TEST-NET-3. With `join_local`, the local machine joins it too, as a lab
machine whose Mininet hosts share switches with the remote VMs: a veth in the root
namespace carries 203.0.113.3/24 (a connected route on a lab-made veth, nothing more).
Without it the underlay exists only inside the namespaces. The local machine
reaches each daemon through a second veth per host on a /30 of TEST-NET-2 (198.51.100.0/30
for hv1, .4/30 for hv2), as qemu+tcp://198.51.100.2/system and
qemu+tcp://198.51.100.6/system. TEST-NET-1 is never used: on the lab's build machines it
is the uplink itself (eth0 192.0.2.2/24, default gateway 192.0.2.1). The management /30s
are connected routes on lab-made veths only:
no routes are added, nothing touches the uplink, no NAT, no forwarding, no default route
in the namespaces. Before creating anything the testbed refuses to run when a root route
overlaps its management subnets (another testbed, or a host that uses them).

Records. Everything is recorded in the run's resources.jsonl (lab.runstate.RunRecord)
before it is created (a daemon right after fork, before it execs), so `cleanup(folder)`
removes exactly that, also after the creating process was SIGKILLed; daemons are stopped by
recorded pid and start time only. testbed.json beside it describes the hosts for humans and
later tests, and names the mount points the testbed had to create on the host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from lab.errors import LabError
from lab.polling import poll
from lab.runstate import (
    CleanReport,
    RunRecord,
    clean,
    kill_domain_qemu,
    process_matches,
    process_starttime,
)
from lab.vm.libvirtd import LAB_QEMU_CONF

LIBVIRT_TCP_PORT = 16509
START_TIMEOUT_S = 30.0  # a loaded 2-core machine: measured ~0.15 s when idle
STOP_TIMEOUT_S = 10.0
UNDERLAY_PREFIX = 24
UNDERLAY_ADDRS = ("203.0.113.1", "203.0.113.2")  # TEST-NET-3, inside the namespaces
LOCAL_UNDERLAY_ADDR = "203.0.113.3"  # the root namespace's end, with join_local only
UNDERLAY_SUBNET = "203.0.113.0/24"
MGMT_SUBNET = "198.51.100.0/29"  # TEST-NET-2, split into one /30 per host
TESTBED_FILE = "testbed.json"
# where each host's private folder is mounted in its daemon's mount namespace
MOUNTS = {"run": "/run/libvirt", "lib": "/var/lib/libvirt", "cache": "/var/cache/libvirt",
          "etc": "/etc/libvirt", "log": "/var/log/libvirt"}


class TestbedError(LabError):
    """The testbed could not be built or a fault hook could not act."""


@dataclass
class Host:
    """One stand-in hypervisor: its namespace, links, addresses and daemon."""

    n: int
    netns: str
    folder: str
    underlay_if: str  # inside netns
    underlay_addr: str
    mgmt_root_if: str  # in the root namespace
    mgmt_if: str  # inside netns
    mgmt_root_addr: str
    mgmt_addr: str
    pid: int | None = None
    starttime: int | None = None

    @property
    def uri(self) -> str:
        return f"qemu+tcp://{self.mgmt_addr}/system"


class TwoHostTestbed:
    """Two namespaces with a libvirtd each, joined by an underlay switch (and, with
    `join_local`, the root namespace too), and a management veth from the root namespace
    into each. Use as a context manager or start()/stop()."""

    def __init__(self, base: Path | None = None, mgmt_subnet: str = MGMT_SUBNET,
                 join_local: bool = False) -> None:
        self._base = base
        self._mgmt = list(ipaddress.IPv4Network(mgmt_subnet).subnets(new_prefix=30))[:2]
        self.join_local = join_local
        self.underlay_netns = ""  # <run>-ul, once started
        self.local_underlay_if = ""  # in the root namespace, with join_local
        self.local_underlay_addr = LOCAL_UNDERLAY_ADDR if join_local else None
        self.run: RunRecord | None = None
        self.hosts: dict[int, Host] = {}
        self.created_mountpoints: list[str] = []
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    # -- life cycle ------------------------------------------------------------------

    def __enter__(self) -> TwoHostTestbed:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def folder(self) -> Path:
        if self.run is None:
            raise TestbedError("the testbed is not started")
        return self.run.folder

    def start(self) -> None:
        if os.geteuid() != 0:
            raise TestbedError("the two-host testbed needs root (namespaces, veths, libvirtd)")
        self._check_subnets_free()
        self.run = RunRecord.create(self._base)
        try:
            self._build()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> CleanReport:
        """Remove everything recorded; safe to call twice."""
        if self.run is None:
            return CleanReport()
        report = cleanup(self.run.folder)
        for proc in self._procs.values():
            _reap(proc)
        self._procs.clear()
        return report

    def _build(self) -> None:
        run = self.run
        assert run is not None
        for n in (1, 2):
            root_net, ns_net = list(self._mgmt[n - 1].hosts())
            self.hosts[n] = Host(
                n=n, netns=f"{run.id}-hv{n}", folder=str(run.path(f"hv{n}")),
                underlay_if=run.ifname(f"u{n}"), underlay_addr=UNDERLAY_ADDRS[n - 1],
                mgmt_root_if=run.ifname(f"m{n}"), mgmt_if=run.ifname(f"m{n}h"),
                mgmt_root_addr=str(root_net), mgmt_addr=str(ns_net))
        self._ensure_mountpoints()
        for host in self.hosts.values():
            self._make_folders(host)
            run.record("netns", name=host.netns)
            _ip("netns", "add", host.netns)
            _ip("-n", host.netns, "link", "set", "lo", "up")
        self._make_underlay()
        for host in self.hosts.values():
            self._make_mgmt_link(host)
        for host in self.hosts.values():
            self._start_daemon(host)
        for host in self.hosts.values():
            self._wait_ready(host)

    def _make_underlay(self) -> None:
        """The underlay switch: a bridge in its own namespace, a veth into each host (born
        inside the namespaces: it never appears in the root one) and, with join_local,
        one into the root namespace."""
        run = self.run
        assert run is not None
        ns, bridge = f"{run.id}-ul", run.ifname("ub")
        self.underlay_netns = ns
        run.record("netns", name=ns)
        _ip("netns", "add", ns)
        run.record("link", ifname=bridge, netns=ns)
        _ip("-n", ns, "link", "add", bridge, "type", "bridge", "stp_state", "0",
            "mcast_snooping", "0")
        _ip("-n", ns, "link", "set", bridge, "up")
        for host in self.hosts.values():
            port = run.ifname(f"u{host.n}p")
            run.record("link", ifname=host.underlay_if, netns=host.netns)
            run.record("link", ifname=port, netns=ns)
            _ip("link", "add", host.underlay_if, "netns", host.netns, "type", "veth",
                "peer", "name", port, "netns", ns)
            _ip("-n", ns, "link", "set", port, "master", bridge, "up")
            _ip("-n", host.netns, "addr", "add", f"{host.underlay_addr}/{UNDERLAY_PREFIX}",
                "dev", host.underlay_if)
            _ip("-n", host.netns, "link", "set", host.underlay_if, "up")
        if self.join_local:
            self.local_underlay_if, port = run.ifname("u0"), run.ifname("u0p")
            run.record("link", ifname=self.local_underlay_if)
            run.record("link", ifname=port, netns=ns)
            _ip("link", "add", self.local_underlay_if, "type", "veth", "peer", "name", port,
                "netns", ns)
            _ip("link", "set", self.local_underlay_if, "addrgenmode", "none")
            _ip("addr", "add", f"{self.local_underlay_addr}/{UNDERLAY_PREFIX}", "dev",
                self.local_underlay_if)
            _ip("link", "set", self.local_underlay_if, "up")
            _ip("-n", ns, "link", "set", port, "master", bridge, "up")

    def _make_mgmt_link(self, host: Host) -> None:
        assert self.run is not None
        self.run.record("link", ifname=host.mgmt_root_if)
        self.run.record("link", ifname=host.mgmt_if, netns=host.netns)
        _ip("link", "add", host.mgmt_root_if, "type", "veth",
            "peer", "name", host.mgmt_if, "netns", host.netns)
        # no IPv6 link-local on the root end: the host sees no router solicitations from it
        _ip("link", "set", host.mgmt_root_if, "addrgenmode", "none")
        _ip("addr", "add", f"{host.mgmt_root_addr}/30", "dev", host.mgmt_root_if)
        _ip("link", "set", host.mgmt_root_if, "up")
        _ip("-n", host.netns, "addr", "add", f"{host.mgmt_addr}/30", "dev", host.mgmt_if)
        _ip("-n", host.netns, "link", "set", host.mgmt_if, "up")

    def _make_folders(self, host: Host) -> None:
        assert self.run is not None
        self.run.record("path", path=host.folder)
        folder = Path(host.folder)
        for sub in MOUNTS:
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "etc" / "qemu.conf").write_text(LAB_QEMU_CONF)
        (folder / "etc" / "libvirtd.conf").write_text(
            "# libvirtd.conf of a lab testbed host (lab/multihost/testbed.py)\n"
            "listen_tcp = 1\nlisten_tls = 0\nauth_tcp = \"none\"\n"
            f"listen_addr = \"{host.mgmt_addr}\"\n")

    def _ensure_mountpoints(self) -> None:
        """A bind mount needs its target: /run/libvirt is missing until some libvirtd ran.
        Creating it in the private namespace would create it on the host all the same, so
        it is made here, noted in testbed.json first, and removed by cleanup if empty."""
        missing = [t for t in MOUNTS.values() if not os.path.isdir(t)]
        self.created_mountpoints = missing
        self._save()
        for target in missing:
            os.makedirs(target, mode=0o755, exist_ok=True)

    # -- daemons -----------------------------------------------------------------------

    def _start_daemon(self, host: Host) -> None:
        assert self.run is not None
        binds = " && ".join(f'mount --bind "$1/{sub}" {target}'
                            for sub, target in MOUNTS.items())
        script = (f"{binds} && exec libvirtd --listen -f /etc/libvirt/libvirtd.conf "
                  '-p "$1/libvirtd.pid"')
        # ip netns exec and unshare (without --fork) exec in place: the recorded pid is
        # libvirtd's; --propagation private keeps the bind mounts inside its namespace
        argv = ["ip", "netns", "exec", host.netns, "unshare", "--mount",
                "--propagation", "private", "sh", "-c", script, "lanamh-libvirtd", host.folder]
        with open(Path(host.folder) / "libvirtd.log", "ab") as log:
            proc = self.run.spawn(argv, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # Ctrl-C in a test: cleanup ends it
        self._procs[host.n] = proc
        host.pid, host.starttime = proc.pid, process_starttime(proc.pid)
        self._save()

    def _wait_ready(self, host: Host) -> None:
        if not poll(lambda: self.daemon_answers(host.n), START_TIMEOUT_S, interval=0.05):
            raise TestbedError(
                f"libvirtd of hv{host.n} did not answer on {host.uri} within "
                f"{START_TIMEOUT_S:g} s; its log: {_tail(Path(host.folder) / 'libvirtd.log')}")

    def daemon_answers(self, n: int, timeout: float = 10.0) -> bool:
        """True when hv`n`'s libvirtd accepts a TCP connection and answers `virsh uri`."""
        host = self.hosts[n]
        try:
            with socket.create_connection((host.mgmt_addr, LIBVIRT_TCP_PORT), timeout=1.0):
                pass
        except OSError:
            return False
        try:
            done = subprocess.run(["virsh", "-c", host.uri, "uri"], capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def daemon_alive(self, n: int) -> bool:
        host = self.hosts[n]
        return (host.pid is not None and host.starttime is not None
                and process_matches(host.pid, host.starttime))

    # -- fault hooks -------------------------------------------------------------------

    def kill_libvirtd(self, n: int) -> None:
        """SIGKILL hv`n`'s libvirtd by its recorded pid (after checking its start time)."""
        self._signal_daemon(n, signal.SIGKILL)

    def restart_libvirtd(self, n: int) -> None:
        """Stop hv`n`'s daemon if it runs (SIGTERM, then SIGKILL if it hangs), start a new
        one and wait until it answers."""
        try:
            self._signal_daemon(n, signal.SIGTERM)
        except TestbedError:
            self._signal_daemon(n, signal.SIGKILL)
        self._start_daemon(self.hosts[n])
        self._wait_ready(self.hosts[n])

    def _signal_daemon(self, n: int, sig: signal.Signals) -> None:
        if self.daemon_alive(n):
            pid = self.hosts[n].pid
            assert pid is not None
            os.kill(pid, sig)
        proc = self._procs.pop(n, None)
        if proc is not None:
            _reap(proc)  # our child: without wait() it lingers as a zombie
        if not poll(lambda: not self.daemon_alive(n), STOP_TIMEOUT_S):
            raise TestbedError(f"libvirtd of hv{n} (pid {self.hosts[n].pid}) did not end "
                               f"within {STOP_TIMEOUT_S:g} s of {sig.name}")

    def silence_libvirtd(self, n: int) -> None:
        """hv`n`'s libvirtd stops answering without a word, as a host that lost power: its
        TCP port drops every packet (iptables in hv`n`'s namespace, gone with it), so no
        RST tells the lab; only libvirt's keepalive notices (lab.vm.libvirt_conn)."""
        self._iptables(n, "-I")

    def unsilence_libvirtd(self, n: int) -> None:
        self._iptables(n, "-D")

    def _iptables(self, n: int, op: str) -> None:
        rule = ["INPUT", "-p", "tcp", "--dport", str(LIBVIRT_TCP_PORT), "-j", "DROP"]
        done = subprocess.run(["ip", "netns", "exec", self.hosts[n].netns, "iptables", "-w",
                               op, *rule], capture_output=True, text=True, timeout=30,
                              check=False)
        if done.returncode != 0:
            raise TestbedError(f"iptables {op} in hv{n} failed: {done.stderr.strip()}")

    def cut_underlay(self, n: int | None = None) -> None:
        """Take host n's underlay link down (every host's when n is None): its tunnels
        carry nothing, its libvirtd still answers on the management link."""
        for host in self._underlay_hosts(n):
            _ip("-n", host.netns, "link", "set", host.underlay_if, "down")

    def restore_underlay(self, n: int | None = None) -> None:
        for host in self._underlay_hosts(n):
            _ip("-n", host.netns, "link", "set", host.underlay_if, "up")

    def _underlay_hosts(self, n: int | None) -> list[Host]:
        return list(self.hosts.values()) if n is None else [self.hosts[n]]

    # -- helpers -----------------------------------------------------------------------

    def _check_subnets_free(self) -> None:
        """Refuse to build on a host that already routes the management subnets (or, with
        join_local, the underlay)."""
        mine_all = [*self._mgmt]
        if self.join_local:
            mine_all.append(ipaddress.IPv4Network(UNDERLAY_SUBNET))
        done = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"],
                              capture_output=True, text=True, check=True)
        for route in json.loads(done.stdout or "[]"):
            dst = route.get("dst", "default")
            if dst == "default":
                continue  # the uplink's default route covers everything and is fine
            net = ipaddress.ip_network(dst, strict=False)
            for mine in mine_all:
                if net.overlaps(mine):
                    raise TestbedError(
                        f"the root namespace already routes {dst} (dev "
                        f"{route.get('dev', '?')}), which overlaps the testbed's "
                        f"subnet {mine}",
                        "clean a testbed left behind (`lanalab clean`) or pass another "
                        "mgmt_subnet")

    def _save(self) -> None:
        """testbed.json: the hosts and the mount points made on the host (read by cleanup)."""
        assert self.run is not None
        data = {"hosts": {str(n): {**asdict(h), "uri": h.uri} for n, h in self.hosts.items()},
                "underlay_netns": self.underlay_netns,
                "local_underlay": {"if": self.local_underlay_if,
                                   "addr": self.local_underlay_addr},
                "created_mountpoints": self.created_mountpoints}
        path = self.run.path(TESTBED_FILE)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=1) + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)


def cleanup(folder: Path | str) -> CleanReport:
    """Remove what the testbed in run folder `folder` recorded: daemons (by pid and start
    time), veths, namespaces, folders, then mount points it made if they are still empty.
    Idempotent: a folder that is gone means there is nothing left to do."""
    folder = Path(folder)
    mountpoints: list[str] = []
    with contextlib.suppress(OSError, ValueError, KeyError):
        mountpoints = json.loads((folder / TESTBED_FILE).read_text())["created_mountpoints"]
    if not folder.is_dir():
        return CleanReport()
    ended = _end_domains(folder)
    report = clean(folder.name, base=folder.parent)
    report.removed[:0] = ended
    for target in mountpoints:
        # rmdir would detach the bind mounts of another testbed's daemons (Linux lets a
        # mount point in another mount namespace go): leave it while any namespace uses it
        if _mounted_anywhere(target):
            continue
        try:
            os.rmdir(target)  # only if empty: a host libvirtd may have started meanwhile
            report.removed.append(f"mount point {target}")
        except OSError:
            pass
    return report


def _end_domains(folder: Path) -> list[str]:
    """SIGKILL the qemu of every domain still running on the testbed's hosts: a host that
    goes takes its VMs with it (else they would outlive their daemon and namespace). Each
    is found by the pid file its host's libvirtd wrote (under the host's private
    /run/libvirt, a folder of the testbed) and ended only if that pid is still the qemu of
    that domain."""
    ended = []
    for pid_file in sorted(folder.glob("hv*/run/qemu/*.pid")):
        pid = kill_domain_qemu(pid_file)
        if pid is not None:
            ended.append(f"qemu of domain {pid_file.stem} (pid {pid}) on {pid_file.parts[-4]}")
    return ended


def _mounted_anywhere(target: str) -> bool:
    """True when some process's mount namespace has something mounted on `target`."""
    seen: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ns = os.readlink(proc / "ns" / "mnt")
            if ns in seen:
                continue
            seen.add(ns)
            mounts = (proc / "mountinfo").read_text()
        except OSError:
            continue  # gone meanwhile
        if any(line.split()[4] == target for line in mounts.splitlines()):
            return True
    return False


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TestbedError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def _reap(proc: subprocess.Popen[bytes]) -> None:
    # still running after that: cleanup's recorded-pid stop deals with it
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT_S)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
