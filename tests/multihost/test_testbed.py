"""The one-machine testbed that stands for two libvirt hypervisors (lab/multihost/testbed.py):
two daemons that are really distinct, an underlay that can be cut, a daemon that can be
killed and restarted, and a cleanup that leaves nothing, also after its creator was
SIGKILLed. No VM is booted (too slow under TCG on the lab's 2-core machines)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.multihost.testbed import LOCAL_UNDERLAY_ADDR, TESTBED_FILE, TwoHostTestbed, cleanup
from lab.polling import poll
from lab.runstate import process_matches

# starts libvirtd daemons and veths in the root namespace (conftest skips it unless root)
pytestmark = [pytest.mark.root, pytest.mark.serial]

REPO = Path(__file__).resolve().parents[2]
KILL_TIMEOUT_S = 5.0  # a SIGKILLed daemon's URI must fail within this
RESTORE_TIMEOUT_S = 10.0
# the module's testbed has the default management subnet; the cleanup tests build a second
# testbed beside it, which must not overlap it
SPARE_SUBNETS = ("198.51.100.8/29", "198.51.100.16/29")

for tool in ("libvirtd", "virsh", "ip", "unshare", "ping", "ss"):
    if not any(Path(d, tool).exists() for d in os.environ.get("PATH", "").split(":") + [
            "/usr/sbin", "/sbin"]):
        pytest.skip(f"`{tool}` is not installed (libvirt-daemon-system, libvirt-clients, "
                    "iproute2, iputils-ping)", allow_module_level=True)


def virsh(uri: str, *args: str, netns: str | None = None,
          timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, "virsh", "-c", uri, *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def ping(netns: str | None, addr: str) -> bool:
    """One ping from a namespace (None: the root namespace)."""
    inside = ["ip", "netns", "exec", netns] if netns else []
    done = subprocess.run([*inside, "ping", "-n", "-q", "-c", "1", "-W", "1", addr],
                          capture_output=True, timeout=10, check=False)
    return done.returncode == 0


def uplink_state() -> dict[str, Any]:
    """What the testbed must never change: root forwarding, the default routes and the
    addresses of the links that carry them."""
    defaults = json.loads(subprocess.run(["ip", "-j", "route", "show", "default"],
                                         capture_output=True, text=True, check=True).stdout)
    addrs = {}
    for dev in sorted({r["dev"] for r in defaults if "dev" in r}):
        shown = subprocess.run(["ip", "-j", "addr", "show", "dev", dev], capture_output=True,
                               text=True, check=True).stdout
        addrs[dev] = sorted(a["local"] for link in json.loads(shown)
                            for a in link.get("addr_info", []))
    return {"ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
            "defaults": defaults, "addrs": addrs}


@pytest.fixture(scope="module")
def uplink_before() -> dict[str, Any]:
    return uplink_state()


@pytest.fixture(scope="module")
def testbed(uplink_before: dict[str, Any]) -> Iterator[TwoHostTestbed]:
    start = time.monotonic()
    with TwoHostTestbed() as tb:
        print(f"testbed up in {time.monotonic() - start:.2f} s")
        yield tb
    assert uplink_state() == uplink_before


def test_each_daemon_is_its_own(testbed: TwoHostTestbed) -> None:
    """A pool defined through hv1's URI exists on hv1 only: the URIs reach distinct
    daemons with distinct state."""
    hv1, hv2 = testbed.hosts[1], testbed.hosts[2]
    name = f"lanamh-{secrets.token_hex(4)}"
    target = Path(hv1.folder) / name
    defined = virsh(hv1.uri, "pool-define-as", name, "dir", "--target", str(target))
    assert defined.returncode == 0, defined.stderr
    try:
        assert name in virsh(hv1.uri, "pool-list", "--all", "--name").stdout.split()
        on_hv2 = virsh(hv2.uri, "pool-list", "--all", "--name")
        assert on_hv2.returncode == 0, on_hv2.stderr
        assert name not in on_hv2.stdout.split()
        # persistent state lands in hv1's own /etc/libvirt, not the host's
        assert (Path(hv1.folder) / "etc" / "storage" / f"{name}.xml").exists()
        assert not Path(f"/etc/libvirt/storage/{name}.xml").exists()
    finally:
        virsh(hv1.uri, "pool-undefine", name)


def test_daemons_listen_on_their_management_address_only(testbed: TwoHostTestbed) -> None:
    for host in testbed.hosts.values():
        listening = subprocess.run(["ip", "netns", "exec", host.netns, "ss", "-Hltn",
                                    "sport = :16509"], capture_output=True, text=True,
                                   check=True).stdout.split("\n")
        local = {line.split()[3] for line in listening if line.strip()}
        assert local == {f"{host.mgmt_addr}:16509"}
    # hv2 reaches hv1 over the underlay, but hv1's daemon does not listen there
    hv1, hv2 = testbed.hosts[1], testbed.hosts[2]
    assert ping(hv2.netns, hv1.underlay_addr)
    over_underlay = virsh(f"qemu+tcp://{hv1.underlay_addr}/system", "uri",
                          netns=hv2.netns, timeout=20)
    assert over_underlay.returncode != 0


def test_uplink_untouched_and_no_routes_out(testbed: TwoHostTestbed,
                                           uplink_before: dict[str, Any]) -> None:
    assert uplink_state() == uplink_before
    for host in testbed.hosts.values():
        routes = subprocess.run(["ip", "-n", host.netns, "-j", "route"], capture_output=True,
                                text=True, check=True).stdout
        assert all(r["dst"] != "default" for r in json.loads(routes))
        forward = subprocess.run(["ip", "netns", "exec", host.netns, "sysctl", "-n",
                                  "net.ipv4.ip_forward"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        assert forward == "0"
    root_routes = subprocess.run(["ip", "-j", "route"], capture_output=True, text=True,
                                 check=True).stdout
    assert testbed.run is not None
    ours = [r for r in json.loads(root_routes) if r.get("dev", "").startswith(testbed.run.id)]
    assert {r["dst"] for r in ours} == {"198.51.100.0/30", "198.51.100.4/30"}
    assert all("gateway" not in r for r in ours)


def test_cut_and_restore_underlay(testbed: TwoHostTestbed) -> None:
    hv1, hv2 = testbed.hosts[1], testbed.hosts[2]
    assert ping(hv1.netns, hv2.underlay_addr)
    testbed.cut_underlay()
    try:
        assert not ping(hv1.netns, hv2.underlay_addr)
        assert not ping(hv2.netns, hv1.underlay_addr)
        # the management links are not the underlay: both daemons still answer
        assert testbed.daemon_answers(1) and testbed.daemon_answers(2)
    finally:
        testbed.restore_underlay()
    assert poll(lambda: ping(hv1.netns, hv2.underlay_addr), RESTORE_TIMEOUT_S, 0.2), \
        f"hv1 cannot ping hv2 {RESTORE_TIMEOUT_S:g} s after restore_underlay"


def test_local_machine_joins_the_underlay(testbed: TwoHostTestbed) -> None:
    """join_local: the root namespace is on the underlay switch too, and cutting one host
    leaves the others' paths up."""
    with TwoHostTestbed(mgmt_subnet=SPARE_SUBNETS[0], join_local=True) as tb:
        hv1, hv2 = tb.hosts[1], tb.hosts[2]
        assert tb.local_underlay_addr == LOCAL_UNDERLAY_ADDR
        assert ping(None, hv1.underlay_addr) and ping(None, hv2.underlay_addr)
        assert ping(hv2.netns, LOCAL_UNDERLAY_ADDR)
        tb.cut_underlay(2)
        try:
            assert not ping(None, hv2.underlay_addr)
            assert ping(None, hv1.underlay_addr)
        finally:
            tb.restore_underlay(2)
        assert poll(lambda: ping(None, hv2.underlay_addr), RESTORE_TIMEOUT_S, 0.2)
    assert still_up(testbed)


def test_kill_and_restart_libvirtd(testbed: TwoHostTestbed) -> None:
    hv2 = testbed.hosts[2]
    name = f"lanamh-{secrets.token_hex(4)}"
    assert virsh(hv2.uri, "pool-define-as", name, "dir", "--target",
                 str(Path(hv2.folder) / name)).returncode == 0
    old_pid = hv2.pid
    start = time.monotonic()
    testbed.kill_libvirtd(2)
    assert poll(lambda: virsh(hv2.uri, "uri", timeout=KILL_TIMEOUT_S).returncode != 0,
                KILL_TIMEOUT_S), f"{hv2.uri} still answers {KILL_TIMEOUT_S:g} s after SIGKILL"
    print(f"hv2's URI failed {time.monotonic() - start:.2f} s after SIGKILL")
    assert testbed.daemon_answers(1), "killing hv2's daemon must not touch hv1's"
    start = time.monotonic()
    testbed.restart_libvirtd(2)
    print(f"hv2's daemon answered again {time.monotonic() - start:.2f} s after restart")
    assert hv2.pid != old_pid
    assert virsh(hv2.uri, "uri").returncode == 0
    # its state lives in the testbed's folders, so it survives the crash
    assert name in virsh(hv2.uri, "pool-list", "--all", "--name").stdout.split()
    virsh(hv2.uri, "pool-undefine", name)


def test_restart_a_running_libvirtd(testbed: TwoHostTestbed) -> None:
    old = (testbed.hosts[1].pid, testbed.hosts[1].starttime)
    testbed.restart_libvirtd(1)
    assert old[0] is not None and old[1] is not None
    assert not process_matches(old[0], old[1])
    assert testbed.hosts[1].pid != old[0] and testbed.daemon_answers(1)


def test_capabilities_offer_tcg(testbed: TwoHostTestbed) -> None:
    """Optional depth: the remote daemon can run qemu guests (domain type 'qemu', TCG)."""
    caps = virsh(testbed.hosts[1].uri, "capabilities", timeout=120)
    assert caps.returncode == 0, caps.stderr
    assert "<emulator>/usr/bin/qemu-system-x86_64</emulator>" in caps.stdout
    assert "<domain type='qemu'" in caps.stdout


# -- cleanup ---------------------------------------------------------------------------


def recorded(folder: Path) -> dict[str, Any]:
    """Read before cleanup (which removes the folder): the daemons and the mount points
    the testbed in `folder` recorded."""
    entries = [json.loads(line) for line in
               (folder / "resources.jsonl").read_text().splitlines() if line.strip()]
    try:
        mountpoints = json.loads((folder / TESTBED_FILE).read_text())["created_mountpoints"]
    except FileNotFoundError:
        mountpoints = []  # killed before it wrote testbed.json
    return {"processes": [(e["pid"], e["starttime"]) for e in entries
                          if e["kind"] == "process"], "mountpoints": mountpoints}


def leftovers(folder: Path, before: dict[str, Any]) -> list[str]:
    """What of a testbed still exists on the host: namespaces, links, daemons, folders."""
    run_id = folder.name
    left = [f"netns {n}" for n in
            subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True).stdout.split() if n.startswith(run_id)]
    left += [f"link {n}" for n in os.listdir("/sys/class/net") if n.startswith(run_id)]
    left += [f"libvirtd pid {pid}" for pid, start in before["processes"]
             if process_matches(pid, start)]
    left += [f"folder {folder}"] if folder.exists() else []
    left += [f"mount point {m}" for m in before["mountpoints"] if os.path.exists(m)]
    left += [f"mount {line.split()[4]}" for line in
             Path("/proc/self/mountinfo").read_text().splitlines() if run_id in line]
    return left


def still_up(testbed: TwoHostTestbed) -> bool:
    """Cleaning one testbed must leave another (the module's) working."""
    return testbed.daemon_answers(1) and testbed.daemon_answers(2) and ping(
        testbed.hosts[1].netns, testbed.hosts[2].underlay_addr)


def test_cleanup_leaves_nothing_and_is_idempotent(testbed: TwoHostTestbed) -> None:
    tb = TwoHostTestbed(mgmt_subnet=SPARE_SUBNETS[0])
    tb.start()
    folder = tb.folder
    before = recorded(folder)
    assert len(before["processes"]) == 2
    assert leftovers(folder, before)  # the check sees a live testbed
    start = time.monotonic()
    report = tb.stop()
    print(f"cleanup took {time.monotonic() - start:.2f} s")
    assert report.ok, report.errors
    assert leftovers(folder, before) == []
    again = cleanup(folder)
    assert (again.removed, again.errors, again.refused) == ([], [], [])
    assert tb.stop().removed == []
    assert still_up(testbed)


# the child kills itself at one of these points of start(): before its first `ip`
# command, right after the underlay switch's namespace, halfway through hv1's management
# link, or once both daemons run but before they were seen ready; None: once start()
# returned
KILL_POINTS = [1, 6, 18, "daemons", None]
CHILD = """
import os, signal, sys
from pathlib import Path
import lab.multihost.testbed as t

point = {point!r}
calls = 0
real_ip, real_wait = t._ip, t.TwoHostTestbed._wait_ready

def ip(*args):
    global calls
    calls += 1
    if calls == point:
        os.kill(os.getpid(), signal.SIGKILL)
    real_ip(*args)

def wait_ready(self, host):
    if point == "daemons" and host.n == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    real_wait(self, host)

t._ip, t.TwoHostTestbed._wait_ready = ip, wait_ready
tb = t.TwoHostTestbed(base=Path({base!r}), mgmt_subnet={subnet!r})
tb.start()
print("up", flush=True)
sys.stdin.read()  # alive until the test kills it (its stdin stays open)
"""


@pytest.mark.parametrize("point", KILL_POINTS, ids=[str(p) for p in KILL_POINTS])
def test_cleanup_after_the_creator_was_killed(testbed: TwoHostTestbed, tmp_path: Path,
                                              point: int | str | None) -> None:
    """The creating process dies by SIGKILL during or after start(): its record alone lets
    cleanup remove everything it made."""
    script = CHILD.format(point=point, base=str(tmp_path), subnet=SPARE_SUBNETS[1])
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()  # returns once it is up, or dead
        assert line == ("up" if point is None else ""), line
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    [folder] = [f for f in tmp_path.iterdir() if f.name.startswith("lab")]
    before = recorded(folder)
    if point in ("daemons", None):
        # its daemons outlive it: only the record can find them
        assert len(before["processes"]) == 2
        assert all(process_matches(pid, start) for pid, start in before["processes"])
    assert leftovers(folder, before)  # the child left something to clean
    report = cleanup(folder)
    assert report.ok, report.errors
    assert leftovers(folder, before) == []
    assert cleanup(folder).removed == []
    assert still_up(testbed)
