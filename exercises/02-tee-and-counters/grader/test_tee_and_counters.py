"""Grader of exercise 2: eth0 -> tee fb2 -> {bpf fb3 (IPv4) -> counter fb4,
bpf fb5 (ARP) -> counter fb6} in vm1, with a fixed corpus sent from h1."""

from __future__ import annotations

import pytest

from lab.grading.apply import script_feedback
from lab.grading.checks import expect, expect_on_top, fblocks, instance
from lab.grading.nodes import GuestNode
from lab.vm.qga import ExecResult

TYPES = {"eth0": "eth", "fb2": "tee", "fb3": "bpf", "fb4": "counter", "fb5": "bpf",
         "fb6": "counter"}
BINDINGS = [("fb2", "eth0"), ("fb3", "fb2"), ("fb5", "fb2"), ("fb4", "fb3"), ("fb6", "fb5")]


@pytest.mark.points(1)
def test_stack_sh_runs_to_the_end(stack: ExecResult) -> None:
    """stack.sh runs in vm1 without a failing command"""
    expect(stack.exit_code == 0, script_feedback(stack, "stack.sh"))


@pytest.mark.points(1)
def test_instances_have_the_types_of_figure_c1(stack: ExecResult, vm1: GuestNode) -> None:
    """eth0, fb2 (tee), fb3/fb5 (bpf) and fb4/fb6 (counter) exist"""
    blocks = fblocks(vm1)
    for name, type_ in TYPES.items():
        instance(vm1, name, type_, blocks)


@pytest.mark.points(2)
def test_blocks_are_bound_as_in_figure_c1(stack: ExecResult, vm1: GuestNode) -> None:
    """fb2 on eth0, fb3 and fb5 on fb2, fb4 on fb3, fb6 on fb5"""
    blocks = fblocks(vm1)
    for upper, lower in BINDINGS:
        expect_on_top(vm1, upper, lower, blocks)


@pytest.mark.points(1)
def test_fb3_and_fb5_have_filters_loaded(stack: ExecResult, vm1: GuestNode) -> None:
    """fb3 and fb5 each hold a BPF program (written as bpfc output into their proc file)"""
    blocks = fblocks(vm1)
    for name in ("fb3", "fb5"):
        expect(name in blocks, f"there is no instance {name}")
        program = vm1.run(f"cat /proc/net/lana/fblock/{name}").stdout.strip()
        expect(program, f"{name} has no filter loaded, so it passes every frame: write "
               f"bpfc's output into it (`bpfc FILE > /proc/net/lana/fblock/{name}`)")


def _branch_feedback(counter: str, bpf: str, want: str, traffic: dict) -> str | None:
    classes = traffic["classes"]
    got = traffic["delta"][counter]
    if got is None:
        return f"there is no counter {counter} to read"
    want_n = len(classes[want])
    want_b = sum(map(len, classes[want]))
    if got == (want_n, want_b):
        return None
    sent = ", ".join(f"{len(v)} {k}" for k, v in classes.items())
    text = (f"h1 sent {sent}; {counter} should have counted the {want_n} {want} frames "
            f"({want_b} bytes) but counted {got[0]} packets ({got[1]} bytes). {counter} "
            f"counts what {bpf} lets through, so: ")
    other = [k for k, v in classes.items() if len(v) == got[0] and k != want]
    if got[0] == 0:
        return text + (f"nothing arrived: does {bpf}'s filter compare the EtherType with "
                       f"the {want} value, and is {counter} bound on {bpf}, {bpf} on fb2?")
    if got[0] == traffic["frames"]:
        return text + f"{bpf} passes every frame: its filter accepts too much (or none)"
    if other:
        return text + f"{bpf} passes the {other[0]} frames: is the right filter in {bpf}?"
    return text + f"{bpf}'s filter passes the wrong frames"


@pytest.mark.points(3)
def test_fb4_counts_exactly_the_ipv4_frames(traffic: dict) -> None:
    """fb4 counts exactly the IPv4 frames of the corpus (packets and bytes)"""
    problem = _branch_feedback("fb4", "fb3", "IPv4", traffic)
    expect(problem is None, problem or "")


@pytest.mark.points(3)
def test_fb6_counts_exactly_the_arp_frames(traffic: dict) -> None:
    """fb6 counts exactly the ARP frames of the corpus (packets and bytes)"""
    problem = _branch_feedback("fb6", "fb5", "ARP", traffic)
    expect(problem is None, problem or "")
