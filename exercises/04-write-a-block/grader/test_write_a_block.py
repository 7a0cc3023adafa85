"""Grader of exercise 4: the sampler block (fb_sampler.c), built on the host against the
guest kernel's headers, loaded into vm1 and checked under traffic from h1."""

from __future__ import annotations

import pytest

from lab.grading import corpus
from lab.grading.checks import expect
from lab.grading.kbuild import BuildResult, compiler_messages
from lab.grading.nodes import GuestNode, LabNodes
from lab.grading.traffic import send_frames, wait_settled
from lab.vm.qga import ExecResult


def _frames(mac: str, count: int, first_size: int = 100) -> list[bytes]:
    """Frames of distinct sizes: the byte count tells which ones were passed."""
    return [corpus.udp(mac, "10.0.0.1", 9, first_size + i) for i in range(count)]


def _set(vm1: GuestNode, option: str) -> ExecResult:
    return vm1.run(f"fbctl set s1 {option}")


def _stack_ready(stack: ExecResult) -> None:
    expect(stack.exit_code == 0, "the grader could not build eth0 -> s1 (sampler) -> c "
           f"(counter): {stack.stderr.strip() or stack.stdout.strip()}")


def _send_and_count(vm1: GuestNode, lab: LabNodes, frames: list[bytes]) -> tuple[int, int]:
    from conftest import counter, engine

    before, ppe = counter(vm1), engine(vm1)[0]
    send_frames(lab.host("h1"), frames)
    # every frame enters the engine once, passed or dropped: wait for all, then count
    wait_settled(lambda: engine(vm1)[0] - ppe, expect=len(frames))
    after = counter(vm1)
    return after[0] - before[0], after[1] - before[1]


@pytest.mark.host
@pytest.mark.points(3)
def test_fb_sampler_c_builds_against_the_guest_kernel(built: BuildResult) -> None:
    """fb_sampler.c builds into fb_sampler.ko against the guest kernel and lana.ko"""
    expect(built.ok, "fb_sampler.c does not build (compiler and modpost say):\n"
           + compiler_messages(built.log))


@pytest.mark.points(1)
def test_module_loads_and_registers_type_sampler(loaded: ExecResult, vm1: GuestNode) -> None:
    """insmod fb_sampler.ko works and the type 'sampler' appears in /proc/net/lana/types"""
    expect(loaded.exit_code == 0, f"insmod fb_sampler.ko failed in vm1: "
           f"{loaded.stderr.strip()} (dmesg: "
           + vm1.run("dmesg | tail -3").stdout.strip() + ")")
    types = vm1.read("/proc/net/lana/types")
    ours = [line.split()[0] for line in types.splitlines() if line.endswith(" fb_sampler")]
    expect(ours == ["sampler"], "fb_sampler.ko must register exactly the type 'sampler' "
           f"(.type of its fblock_factory), but it registered {ours or 'nothing'}")


@pytest.mark.points(2)
def test_option_n_takes_1_to_1000000_only(stack: ExecResult, vm1: GuestNode) -> None:
    """`fbctl set s1 n=N` accepts 1..1000000, rejects 0, 1000001 and non-numbers
    (EINVAL) and other keys (ENOENT)"""
    _stack_ready(stack)
    for good in ("n=1", "n=1000000", "n=5"):
        result = _set(vm1, good)
        expect(result.exit_code == 0, f"`fbctl set s1 {good}` must work, but failed: "
               f"{result.stderr.strip()}")
    for bad, errno in (("n=0", "Invalid argument"), ("n=1000001", "Invalid argument"),
                       ("n=five", "Invalid argument"), ("rate=5", "No such file")):
        result = _set(vm1, bad)
        expect(result.exit_code != 0, f"`fbctl set s1 {bad}` was accepted; it must fail "
               f"with {errno} (n is 1..1000000; the only key is n)")
        expect(errno in result.stderr, f"`fbctl set s1 {bad}` must fail with {errno}, but "
               f"fbctl said: {result.stderr.strip()}")


@pytest.mark.points(3)
def test_n5_passes_exactly_every_fifth_of_52_frames(stack: ExecResult, vm1: GuestNode,
                                                    lab: LabNodes, vm1_mac: str) -> None:
    """with n=5, of 52 frames exactly the 5th, 10th, ..., 50th reach the counter"""
    _stack_ready(stack)
    expect(_set(vm1, "n=5").exit_code == 0, "`fbctl set s1 n=5` failed")
    frames = _frames(vm1_mac, 52)
    want = (10, sum(len(f) for f in frames[4::5]))
    got = _send_and_count(vm1, lab, frames)
    first = sum(len(f) for f in frames[0::5][:got[0]])
    expect(got == want, f"h1 sent 52 frames (sizes 100, 101, ... 151) with n=5: the 5th, "
           f"10th, ... 50th ({want[0]} frames, {want[1]} bytes) must pass, but the counter "
           f"above s1 saw {got[0]} frames, {got[1]} bytes"
           + ("; that is the 1st, 6th, 11th, ...: count the packet before you test it"
              if got == (11, first) or got[1] == first else "")
           + ("; every frame passed: netrx does not drop yet" if got[0] == 52 else ""))


@pytest.mark.points(2)
def test_setting_n_starts_the_count_afresh(stack: ExecResult, vm1: GuestNode,
                                          lab: LabNodes, vm1_mac: str) -> None:
    """after `fbctl set s1 n=4`, the 4th frame from then on is the first to pass"""
    _stack_ready(stack)
    for option in ("n=5", "n=4"):
        result = _set(vm1, option)
        expect(result.exit_code == 0, f"`fbctl set s1 {option}` failed: "
               f"{result.stderr.strip()}")
        if option == "n=5":
            _send_and_count(vm1, lab, _frames(vm1_mac, 3))
    got = _send_and_count(vm1, lab, _frames(vm1_mac, 3, 200))
    expect(got[0] == 0, f"after `set n=4` the first 3 frames must all be dropped, but "
           f"{got[0]} passed: setting n must reset the packet count")
    got = _send_and_count(vm1, lab, _frames(vm1_mac, 1, 300))
    expect(got == (1, 300), f"the 4th frame after `set n=4` must pass; the counter saw "
           f"{got[0]} frames")


@pytest.mark.points(2)
def test_dropped_packets_are_freed(stack: ExecResult, vm1: GuestNode, lab: LabNodes,
                                   vm1_mac: str) -> None:
    """with n=250, 250 frames give 1 pass, 249 drops, and no sk_buff leaks"""
    from conftest import engine

    _stack_ready(stack)
    slab = "/sys/kernel/slab/skbuff_head_cache/objects"
    _set(vm1, "n=250")
    objects_before = int(vm1.read(slab).split()[0])
    drops_before = engine(vm1)[1]
    got = _send_and_count(vm1, lab, _frames(vm1_mac, 1, 64) * 250)
    drops = engine(vm1)[1] - drops_before
    leaked = int(vm1.read(slab).split()[0]) - objects_before
    # 249 drops in s1, plus the one passed frame, which ends in the counter c (a sink)
    expect(got[0] == 1 and drops == 250, f"of 250 frames with n=250, 1 must pass and 249 "
           f"be dropped by s1; {got[0]} passed, and the engine counted {drops - got[0]} "
           "drops besides the frames that ended in the counter")
    expect(leaked < 100, f"after 249 drops the guest holds {leaked} more sk_buffs than "
           "before: a netrx that returns PPE_DROPPED must kfree_skb() the packet first")


@pytest.mark.points(1)
def test_second_bind_in_one_direction_is_refused(stack: ExecResult, vm1: GuestNode) -> None:
    """binding a second block on top of s1 fails with EBUSY (one port per direction)"""
    _stack_ready(stack)
    vm1.sh("fbctl add c2 counter")
    result = vm1.run("fbctl bind c2 s1")
    if result.exit_code == 0:
        vm1.run("fbctl unbind c2 s1")
    vm1.run("fbctl rm c2")
    expect(result.exit_code != 0 and "busy" in result.stderr.lower(),
           "`fbctl bind c2 s1` while c sits on s1 must fail with EBUSY (Device or resource "
           "busy); it " + ("succeeded and silently replaced c" if result.exit_code == 0
                           else f"failed with: {result.stderr.strip()}"))


@pytest.mark.points(1)
def test_module_unloads_cleanly(stack: ExecResult, vm1: GuestNode) -> None:
    """after unbinding and removing s1, rmmod fb_sampler works"""
    _stack_ready(stack)
    vm1.sh("fbctl unbind c s1 && fbctl unbind s1 eth0 && fbctl rm s1")
    result = vm1.run("rmmod fb_sampler")
    expect(result.exit_code == 0, f"rmmod fb_sampler failed: {result.stderr.strip()}")
