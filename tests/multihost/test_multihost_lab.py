"""A lab across two hypervisors and this machine, brought up by LabRun from a topology file:
the one-machine testbed (lab/multihost/testbed.py, with this machine on its underlay)
stands for the hosts; the lab is lab/multihost/testlab.py's (vm1 and vm3 on hv1, vm2 on
hv2, the Mininet host h1 here; s1 crosses all three hosts, s2 stays on hv1).

Shown: the placement, bridges and tunnels on each host; exact frame counts through LANA
stacks in vm1 and vm2 of broadcasts h1 sends across the tunnels; a voice call between vm1
(hv1) and vm2 (hv2) with the stack changed under it and zero frames lost; `lanalab status`
reading the lab; teardown leaving every host clean; between them the cross-host bench,
short (before the call, whose vlink device keeps vm2's eth0). Tests run in file order.

Addresses stay inside the lab: s1 is 10.0.0.0/24, s2 10.0.1.0/24, the underlay the
testbed's 203.0.113.0/24, libvirtd on its 198.51.100.0/29."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from spreadlab import running_spread_lab, shells, virsh_names

from lab.labrun import LabRun
from lab.multihost.hostshell import link_exists
from lab.multihost.testbed import TwoHostTestbed
from lab.multihost.vxlan import CROSSING_MTU
from lab.polling import poll
from lab.runstate import clean

pytestmark = [pytest.mark.root, pytest.mark.vm, pytest.mark.serial, pytest.mark.slow]

libvirt = pytest.importorskip("libvirt")

REPO = Path(__file__).resolve().parents[2]
ETHERTYPE = 0x88B5  # IEEE "local experimental": nothing else on the lab sends it
FRAMES = 200
FRAME_LEN = 60  # 14 header + 46 payload, the Ethernet minimum (no FCS counted)
VOICE_SECONDS = 4.0
VOICE_FRAMES = int(VOICE_SECONDS * 50)

FILTER = f"""ldh [12]
jeq #{ETHERTYPE:#x}, keep, drop
keep: ret #0xffff
drop: ret #0
"""
# eth0 -> bpf(ETHERTYPE) -> counter; while it is hooked, LANA takes all of eth0's traffic
COUNTING_STACK = ("modprobe -a lana fb_eth fb_bpf fb_counter && vlink ethernet hook eth0 && "
                  "fbctl add f bpf && "
                  "bpfc /tmp/exp.bpf > /proc/net/lana/fblock/f && fbctl add c counter && "
                  "fbctl bind f eth0 && fbctl bind c f")
UNDO_COUNTING_STACK = ("fbctl unbind c f && fbctl unbind f eth0 && fbctl rm c && fbctl rm f && "
                       "vlink ethernet unhook eth0")
# scapy, in h1's namespace: {count} broadcasts of ETHERTYPE, FRAME_LEN bytes each. The
# source must be given: without an IP layer scapy would send 00:00:00:00:00:00, which a
# Linux bridge drops as an invalid source
SEND = ("from scapy.all import Ether, Raw, get_if_hwaddr, sendp; "
        "sendp(Ether(dst='ff:ff:ff:ff:ff:ff', src=get_if_hwaddr('h1-eth0'), "
        f"type={ETHERTYPE}) / Raw(bytes(46)), "
        "iface='h1-eth0', count={count}, verbose=False)")


@pytest.fixture(scope="module")
def testbed() -> Iterator[TwoHostTestbed]:
    with TwoHostTestbed(join_local=True) as tb:
        yield tb


@pytest.fixture(scope="module")
def lab(testbed: TwoHostTestbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRun]:
    for run in running_spread_lab(testbed, tmp_path_factory.mktemp("spread")):
        print(f"lab across 3 hosts up: {run.timings}")
        yield run


def test_each_vm_runs_where_the_file_puts_it(lab: LabRun, testbed: TwoHostTestbed) -> None:
    state = lab.state()
    assert {vm: s["on"] for vm, s in state["vms"].items()} == \
        {"vm1": "hv1", "vm2": "hv2", "vm3": "hv1"}
    domains = {n: virsh_names(testbed.hosts[n].uri) for n in (1, 2)}
    assert sorted(d for d in domains[1] if d.startswith(state["id"])) == \
        [f"{state['id']}-vm1", f"{state['id']}-vm3"]
    assert [d for d in domains[2] if d.startswith(state["id"])] == [f"{state['id']}-vm2"]
    [tunnel] = state["spread"]["tunnels"]
    assert tunnel["switch"] == "s1" and tunnel["hosts"] == ["local", "hv1", "hv2"]


def test_bridges_and_tunnels_are_on_the_hosts_that_need_them(lab: LabRun,
                                                            testbed: TwoHostTestbed) -> None:
    assert lab.fabric is not None
    s1, s2 = lab.fabric.bridges["s1"], lab.fabric.bridges["s2"]
    [tunnel] = lab.state()["spread"]["tunnels"]
    on = shells(testbed)
    assert {h: (link_exists(sh, s1), link_exists(sh, s2), link_exists(sh, tunnel["device"]))
            for h, sh in on.items()} == {"local": (True, False, True),
                                         "hv1": (True, True, True),
                                         "hv2": (True, False, True)}
    for host, shell in on.items():
        shown = shell.out(["ip", "-d", "link", "show", "dev", tunnel["device"]])
        assert f"vxlan id {tunnel['vni']}" in shown and f"mtu {CROSSING_MTU}" in shown, host
        floods = shell.out(["bridge", "fdb", "show", "dev", tunnel["device"]])
        assert floods.count("00:00:00:00:00:00 dst") == 2, (host, floods)  # both peers
    # the MTU rule: nodes on the crossing switch get 1450, the others keep 1500
    mtu = {(vm, dev): lab.sh(vm, f"cat /sys/class/net/{dev}/mtu").strip()
           for vm, dev in (("vm1", "eth0"), ("vm1", "eth1"), ("vm2", "eth0"), ("vm3", "eth0"))}
    assert mtu == {("vm1", "eth0"): "1450", ("vm1", "eth1"): "1500", ("vm2", "eth0"): "1450",
                   ("vm3", "eth0"): "1500"}
    assert lab.sh("h1", "cat /sys/class/net/h1-eth0/mtu").strip() == "1450"


def test_ping_crosses_every_host(lab: LabRun) -> None:
    lab.forget_neighbours()
    for src, dst in (("h1", "10.0.0.1"), ("h1", "10.0.0.2"), ("vm1", "10.0.0.2"),
                     ("vm1", "10.0.1.3")):
        # the first echo may wait for ARP across the tunnel: the path, then its answer
        assert poll(lambda s=src, d=dst: "1 received" in lab.sh(
            s, f"ping -n -c 1 -W 2 {d} || true"), 30.0, 0.5), f"{src} cannot reach {dst}"


def test_exact_frame_counts_through_lana_across_vxlan(lab: LabRun) -> None:
    """h1 (local) broadcasts FRAMES frames on s1: the VXLAN ends carry them to hv1 and hv2,
    and the LANA stack in vm1 and in vm2 counts each exactly once."""
    for vm in ("vm1", "vm2"):
        lab.vms[vm].put_file("/tmp/exp.bpf", FILTER.encode())
        lab.sh(vm, COUNTING_STACK)
    def send(count: int) -> None:
        lab.sh("h1", f"{sys.executable} -c \"{SEND.format(count=count)}\"")

    def counted(vm: str) -> tuple[int, int]:
        packets, octets = lab.sh(vm, "cat /proc/net/lana/fblock/c").split()[:2]
        return int(packets), int(octets)

    try:
        send(FRAMES)
        for vm in ("vm1", "vm2"):
            assert poll(lambda v=vm: counted(v)[0] >= FRAMES, 60.0, 0.3), \
                f"{vm} counted {counted(vm)} of {FRAMES}"
        # one frame more, on the same path: once it is counted, any late copy of the
        # first ones (a flood loop, a second tunnel end) has arrived before it
        send(1)
        total = FRAMES + 1
        for vm in ("vm1", "vm2"):
            assert poll(lambda v=vm: counted(v)[0] > FRAMES, 30.0, 0.3), vm
        got = {vm: counted(vm) for vm in ("vm1", "vm2")}
        print(f"LANA counters after {total} broadcasts from h1: {got}")
        assert got == {"vm1": (total, total * FRAME_LEN), "vm2": (total, total * FRAME_LEN)}
    finally:
        for vm in ("vm1", "vm2"):
            lab.sh(vm, UNDO_COUNTING_STACK)
    for vm in lab.vms.values():
        vm.check_console()


def test_crosshost_figure_in_one_run(lab: LabRun, tmp_path: Path) -> None:
    """The bench of lab.bench.crosshost on this lab, short: both paths measured side by
    side, every pktgen frame accounted for, the figure drawn."""
    from lab.bench.crosshost import Plan, measure, render, write_results

    plan = Plan(rounds=2, frames=2000, pings=10)
    samples = measure(lab, plan)
    results = write_results(samples, plan, tmp_path)
    print(render(results))
    assert [s.path for s in samples] == ["same host", "across hosts", "across hosts",
                                         "same host"]  # each round reverses the order
    for s in samples:
        assert s.sent == plan.frames and 0 < s.counted <= s.sent and s.send_seconds > 0
        assert len(s.rtts_ms) >= plan.pings - 1, s  # one echo may fall to ARP
    assert results["ratios"]["rate_across_over_same"] > 0
    assert (tmp_path / "crosshost.json").exists()
    assert results["figure"] is None or Path(results["figure"]).stat().st_size > 10_000


def test_voice_call_across_hosts_loses_no_frame(lab: LabRun) -> None:
    """vm1 on hv1 calls vm2 on hv2 over s1's tunnel; both change their stacks (insert,
    replace, cut) during the call."""
    from lab.voice.scenario import run_call

    result = run_call(lab, seconds=VOICE_SECONDS, changes=True)
    for vm, side in result.sides.items():
        print(f"{vm}: {side.summary}")
        assert side.summary["peer_total"] == VOICE_FRAMES
        assert side.log.lost(VOICE_FRAMES) == [], f"{vm}: frames that never arrived"
        assert side.summary["received"] == VOICE_FRAMES and side.summary["duplicates"] == 0
        assert [c["change"] for c in side.changes] == ["insert", "replace", "cut"]
    for vm in lab.vms.values():
        vm.check_console()


def test_status_shows_the_placement_and_a_whole_underlay(lab: LabRun) -> None:
    lab.release_agents()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "lab.cli", "status"], capture_output=True,
                          text=True, timeout=120, env=env, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("vm2" in line and "running" in line and line.endswith("on hv2")
               for line in lines), done.stdout
    assert any(line.strip().startswith("vxlan  s1") and "across local, hv1, hv2" in line
               for line in lines), done.stdout
    assert "UNDERLAY" not in done.stdout


def test_teardown_leaves_every_host_clean(lab: LabRun, testbed: TwoHostTestbed) -> None:
    assert lab.run is not None and lab.fabric is not None
    run_id = lab.run.id
    bridges = list(lab.fabric.bridges.values())
    [tunnel] = lab.state()["spread"]["tunnels"]
    recorded = [e for e in lab.run.resources() if e["kind"] in ("link", "libvirt-domain")]
    start = time.monotonic()
    lab.down()
    print(f"teardown of {len(recorded)} recorded links and domains took "
          f"{time.monotonic() - start:.1f} s")
    for n in (1, 2):
        assert [d for d in virsh_names(testbed.hosts[n].uri) if d.startswith(run_id)] == []
    for host, shell in shells(testbed).items():
        left = [name for name in [*bridges, tunnel["device"]] if link_exists(shell, name)]
        assert left == [], f"left on {host}: {left}"
    assert clean(run_id).already_gone == [f"run {run_id}"]
    assert lab.vms == {} and lab.run is None  # down() let go of everything
