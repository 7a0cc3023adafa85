"""Faults of a lab across hosts (the lab of spreadlab.py on the one-machine testbed): hv2's
underlay cut during a run, hv2's libvirtd killed during a run and during bring-up. Each
must give a clear error within its stated time, leave the rest of the lab working where it
can, and let cleanup remove everything once the host is back; and a lab whose owner was
killed, removed from every host by `lanalab clean`. Tests run in file order: the second
ends the module's lab, the third and fourth bring up their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from spreadlab import BOOT_TIMEOUT_S, running_spread_lab, shells, spread_lab, virsh_names

from lab.errors import LabError
from lab.labrun import LabRun
from lab.multihost.health import DOMAIN_TIMEOUT_S, domain_state, underlay_problems
from lab.multihost.testbed import TwoHostTestbed
from lab.polling import poll
from lab.runstate import RunRecord, clean

pytestmark = [pytest.mark.root, pytest.mark.vm, pytest.mark.serial, pytest.mark.slow]

libvirt = pytest.importorskip("libvirt")

REPO = Path(__file__).resolve().parents[2]
UNDERLAY_CHECK_S = 20.0  # underlay_problems: 3 pings of 1 s per host pair, 3 pairs to check
AGENT_FAIL_S = 10.0  # a guest call to a VM whose host died fails within this
DOWN_S = 60.0  # down() of a lab with a dead host, which it cannot wait for
RESTORE_S = 30.0  # traffic across a restored underlay


def ping_ok(lab: LabRun, node: str, addr: str) -> bool:
    return " 0% packet loss" in lab.sh(node, f"ping -n -c 2 -i 0.3 -W 1 {addr} || true")


def status() -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "lab.cli", "status"], capture_output=True,
                          text=True, timeout=120, env=env, cwd=REPO, check=True)
    return done.stdout


def left_on_hosts(testbed: TwoHostTestbed, run_id: str) -> list[str]:
    """Domains and links of run `run_id` still on any host (bridges: <run>-s<i>, VXLAN
    devices: lvx<tag><i>; names read from the hosts, not from the removed record)."""
    left = [f"domain {d} on hv{n}" for n in (1, 2) for d in virsh_names(testbed.hosts[n].uri)
            if d.startswith(run_id)]
    tag = run_id.removeprefix("lab")
    for host, shell in shells(testbed).items():
        names = shell.out(["ls", "/sys/class/net"]).split()
        left += [f"link {n} on {host}" for n in names
                 if n.startswith(f"{run_id}-s") or n.startswith(f"lvx{tag}")]
    return left


@pytest.fixture(scope="module")
def testbed() -> Iterator[TwoHostTestbed]:
    with TwoHostTestbed(join_local=True) as tb:
        yield tb


@pytest.fixture(scope="module")
def lab(testbed: TwoHostTestbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRun]:
    yield from running_spread_lab(testbed, tmp_path_factory.mktemp("faults"))


def test_cut_underlay_is_named_and_traffic_comes_back(lab: LabRun,
                                                     testbed: TwoHostTestbed) -> None:
    assert poll(lambda: ping_ok(lab, "vm1", "10.0.0.2"), RESTORE_S, 0.5)
    spread = lab.state()["spread"]
    assert underlay_problems(spread) == []
    testbed.cut_underlay(2)
    try:
        assert not ping_ok(lab, "vm1", "10.0.0.2")  # hv1 -> hv2 across s1's tunnel
        assert ping_ok(lab, "vm1", "10.0.1.3")  # s2 stays on hv1: untouched
        start = time.monotonic()
        problems = underlay_problems(spread)
        took = time.monotonic() - start
        print(f"underlay check with hv2 cut: {took:.1f} s: {problems}")
        assert took < UNDERLAY_CHECK_S
        assert sorted(problems) == sorted([
            f"{a} cannot reach hv2's underlay {testbed.hosts[2].underlay_addr} (switch s1)"
            for a in ("hv1", "local")] + [
            f"hv2 cannot reach {b}'s underlay {addr} (switch s1)"
            for b, addr in (("hv1", testbed.hosts[1].underlay_addr),
                            ("local", testbed.local_underlay_addr))])
        lab.release_agents()
        shown = status()
        assert "UNDERLAY: hv1 cannot reach hv2's underlay" in shown, shown
        assert lab.sh("vm2", "echo alive").strip() == "alive"  # management is not the underlay
    finally:
        testbed.restore_underlay(2)
    assert poll(lambda: ping_ok(lab, "vm1", "10.0.0.2"), RESTORE_S, 0.5), \
        f"no traffic hv1 -> hv2 {RESTORE_S:g} s after the underlay came back"
    assert underlay_problems(spread) == []


def test_dead_libvirtd_during_a_run_fails_its_vms_only(lab: LabRun,
                                                      testbed: TwoHostTestbed) -> None:
    assert lab.run is not None
    run_id, hv2 = lab.run.id, testbed.hosts[2]
    domain = lab.state()["vms"]["vm2"]["domain"]
    testbed.kill_libvirtd(2)
    try:
        start = time.monotonic()
        with pytest.raises(LabError) as err:
            lab.sh("vm2", "true", timeout=AGENT_FAIL_S)
        took = time.monotonic() - start
        print(f"vm2 call failed {took:.2f} s after hv2's libvirtd died: {err.value}")
        assert took < AGENT_FAIL_S
        assert f"lost the connection to libvirt at {hv2.uri}" in str(err.value)
        assert lab.sh("vm1", "echo alive").strip() == "alive"  # hv1 carries on
        start = time.monotonic()
        assert domain_state(hv2.uri, domain) == "host unreachable"
        assert time.monotonic() - start < DOMAIN_TIMEOUT_S + 1
        lab.release_agents()
        vm_lines = {line.split()[1]: line for line in status().splitlines()
                    if line.strip().startswith("vm ")}
        assert "host unreachable" in vm_lines["vm2"] and "running" in vm_lines["vm1"]
        said: list[str] = []
        lab.progress = said.append
        start = time.monotonic()
        lab.down()
        took = time.monotonic() - start
        print(f"down() with hv2 dead took {took:.1f} s: {said}")
        assert took < DOWN_S
        assert any(f"the record of run {run_id} is kept" in line for line in said), said
        assert RunRecord.open(run_id).folder.is_dir()
        assert not [d for d in virsh_names(testbed.hosts[1].uri) if d.startswith(run_id)]
    finally:
        testbed.restart_libvirtd(2)  # also when an assertion failed: its qemu runs on
    report = clean(run_id)
    assert report.errors == [], report.errors
    assert poll(lambda: left_on_hosts(testbed, run_id) == [], 30.0, 0.5), \
        left_on_hosts(testbed, run_id)


def test_dead_libvirtd_during_bring_up_fails_clearly_and_cleans(
        testbed: TwoHostTestbed, tmp_path: Path) -> None:
    run_ids: list[str] = []

    def kill_hv2_at_boot(message: str) -> None:
        print(message)
        if message.startswith("run "):  # "run lab1a2b: bringing up topology ..."
            run_ids.append(message.split()[1].rstrip(":"))
        if message.startswith("booting"):  # every domain is created, none is ready yet
            testbed.kill_libvirtd(2)

    lab = spread_lab(testbed, tmp_path, progress=kill_hv2_at_boot)
    start = time.monotonic()
    try:
        with pytest.raises(LabError) as err:
            lab.up(ready_timeout=BOOT_TIMEOUT_S)
        took = time.monotonic() - start
        print(f"bring-up failed after {took:.1f} s: {err.value}")
        assert took < BOOT_TIMEOUT_S
        assert "vm2" in str(err.value)
        assert f"lost the connection to libvirt at {testbed.hosts[2].uri}" in str(err.value)
    finally:
        testbed.restart_libvirtd(2)
    [run_id] = run_ids
    assert RunRecord.open(run_id).folder.is_dir()  # kept: hv2's domain could not be reached
    report = clean(run_id)
    assert report.errors == [], report.errors
    assert poll(lambda: left_on_hosts(testbed, run_id) == [], 30.0, 0.5), \
        left_on_hosts(testbed, run_id)
    assert testbed.daemon_answers(2)


def lanalab(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO, check=False,
                          stdin=subprocess.DEVNULL)


def test_owner_killed_then_lanalab_clean_empties_every_host(testbed: TwoHostTestbed,
                                                            tmp_path: Path) -> None:
    """`lanalab up` of the file in the background, a VM on hv2 reached by `lanalab exec`
    from another process, the owner SIGKILLed: `lanalab clean --run` removes every
    domain, volume, bridge and tunnel end it made, on every host."""
    from lab.multihost.testlab import write_topology

    topology = write_topology(testbed, tmp_path)
    assert testbed.local_underlay_addr is not None
    up = lanalab("up", str(topology), "--underlay", testbed.local_underlay_addr)
    assert up.returncode == 0, up.stdout + up.stderr
    # "lab lab1a2b is up and runs in the background; ..."
    [run_id] = [line.split()[1] for line in up.stdout.splitlines()
                if line.startswith("lab ") and "is up" in line]
    shown = lanalab("exec", "--run", run_id, "vm2", "--", "sh", "-c",
                    "modprobe lana && test -d /proc/net/lana && echo lana in vm2")
    assert shown.returncode == 0 and "lana in vm2" in shown.stdout, shown.stdout + shown.stderr
    owner = json.loads((RunRecord.open(run_id).folder / "lab.json").read_text())["owner_pid"]
    os.kill(owner, 9)  # the lab's owner, started by this test: ended by its pid
    assert poll(lambda: "the owner process is gone" in lanalab("status").stdout, 30.0, 0.5)
    assert left_on_hosts(testbed, run_id) != []  # the crash left the lab on the hosts
    cleaned = lanalab("clean", "--run", run_id)
    print(cleaned.stdout)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "FAILED" not in cleaned.stdout
    assert poll(lambda: left_on_hosts(testbed, run_id) == [], 30.0, 0.5), \
        left_on_hosts(testbed, run_id)
    volumes = subprocess.run(["virsh", "-c", testbed.hosts[2].uri, "vol-list", "lanalab"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    assert run_id not in volumes  # the overlay and console log went; the image stays
