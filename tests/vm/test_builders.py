"""Each ready topology comes up with real VMs and Mininet hosts, and traffic from a host
passes through a LANA stack in every VM with exact counts: eth0 -> bpf(ethertype 0x88b5)
-> counter, fed with broadcast frames of that ethertype sent from a Mininet host."""

from __future__ import annotations

import time

import pytest

from lab.errors import LabError
from lab.labrun import LabRun
from lab.topology.loader import load_topology

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.serial]  # a libvirt lab

ETHERTYPE = 0x88B5  # IEEE "local experimental": nothing else on the lab sends it
FRAMES = 50
FILTER = f"""ldh [12]
jeq #{ETHERTYPE:#x}, keep, drop
keep: ret #0xffff
drop: ret #0
"""
# Runs in a Mininet host (the host's python3): FRAMES broadcast frames of ETHERTYPE.
SEND = ("python3 -c 'import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
        "s.bind((\"{ifname}\", 0)); frame = b\"\\xff\" * 6 + b\"\\x02\\x00\\x00\\x00\\x00\\x42\" "
        f"+ bytes([{ETHERTYPE >> 8}, {ETHERTYPE & 0xFF}]) + bytes(46); "
        f"[s.send(frame) for _ in range({FRAMES})]'")


def build_counting_stack(lab: LabRun, vm: str) -> None:
    lab.vms[vm].put_file("/tmp/exp.bpf", FILTER.encode())
    lab.sh(vm, "modprobe -a lana fb_eth fb_bpf fb_counter && vlink ethernet hook eth0 && "
               "fbctl add f bpf && bpfc /tmp/exp.bpf > /proc/net/lana/fblock/f && "
               "fbctl add c counter && fbctl bind f eth0 && fbctl bind c f")


def counted(lab: LabRun, vm: str, expected: int = FRAMES, timeout: float = 10.0) -> int:
    """The counter's packets, read until it reaches `expected` or `timeout` passes (frames
    may still be on their way through the bridge and the emulated NIC)."""
    deadline = time.monotonic() + timeout
    while True:
        packets = int(lab.sh(vm, "cat /proc/net/lana/fblock/c").split()[0])
        if packets >= expected or time.monotonic() > deadline:
            return packets
        time.sleep(0.2)


def send_from(lab: LabRun, host: str) -> None:
    lab.sh(host, SEND.format(ifname=f"{host}-eth0"))


def bring_up_and_count(name: str, params: dict[str, str], image, sender: str = "h1",
                       backend: str | None = None) -> None:
    with LabRun(load_topology(name, params), image, backend=backend) as lab:
        vms = list(lab.vms)
        for vm in vms:
            build_counting_stack(lab, vm)
        send_from(lab, sender)
        for vm in vms:
            assert counted(lab, vm) == FRAMES, f"{name}: {vm}"
            lab.vms[vm].check_console()


def test_bench_topology_source_to_lana_sink(image) -> None:
    bring_up_and_count("bench", {}, image)


def test_bench_topology_with_the_libvirt_backend(image) -> None:
    bring_up_and_count("bench", {}, image, backend="libvirt")


def test_star_of_three_vms_all_see_the_broadcast(image) -> None:
    bring_up_and_count("star", {"n": "3"}, image)


def test_mixed_virtio_and_e1000e_vms_with_hosts(image) -> None:
    with LabRun(load_topology("mixed"), image) as lab:
        drivers = {vm: lab.sh(vm, "basename $(readlink /sys/class/net/eth0/device/driver)")
                   .strip() for vm in lab.vms}
        assert drivers == {"vm1": "virtio_net", "vm2": "e1000e"}
        lab.sh("h1", "ping -c 1 -W 5 10.0.0.2")  # Linux talks over the e1000e NIC
        for vm in lab.vms:
            build_counting_stack(lab, vm)
        send_from(lab, "h2")
        for vm in lab.vms:
            assert counted(lab, vm) == FRAMES, vm


def test_chain_of_two_vms_patched_through_by_lana_xconnect(image) -> None:
    with LabRun(load_topology("chain", {"n": "2"}), image) as lab:
        probe = "ping -c 1 -W 2 10.0.0.102"
        with pytest.raises(LabError):  # nothing forwards between the switches yet
            lab.sh("h1", probe)
        for vm in lab.vms:
            lab.sh(vm, "modprobe -a lana fb_eth fb_xconnect && vlink ethernet hook eth0 && "
                       "vlink ethernet hook eth1 && fbctl set eth0 promisc=1 && "
                       "fbctl set eth1 promisc=1 && fbctl add x xconnect && "
                       "fbctl bind x eth0 && fbctl bind x eth1")
        lab.forget_neighbours()  # the failed probe's ARP attempt may still be running out
        out = lab.sh("h1", "ping -c 3 -W 5 10.0.0.102")  # h1 -> vm1 -> vm2 -> h2 and back
        assert " 0% packet loss" in out, out
        for vm in lab.vms:
            lab.sh(vm, "fbctl unbind x eth1 && fbctl unbind x eth0 && fbctl rm x && "
                       "vlink ethernet unhook eth0 && vlink ethernet unhook eth1 && "
                       "rmmod fb_xconnect fb_eth lana")
            lab.vms[vm].check_console()
        with pytest.raises(LabError):  # and the patch is gone again
            lab.sh("h1", probe)
