"""Exercise 4 grader fixtures: the student's fb_sampler.c built on the host for the guest
kernel, loaded into vm1, and a grader-built stack  eth0 -> s1 (sampler) -> c (counter)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from lab.grading.kbuild import BuildResult, build_block, guest_kernel_release
from lab.grading.nodes import GuestNode
from lab.vm.qga import ExecResult

GUEST_KO = "/tmp/fb_sampler.ko"


@pytest.fixture(scope="session")
def built(submission: Path) -> BuildResult:
    out = Path(tempfile.mkdtemp(prefix="lanalab-block-"))
    release = guest_kernel_release(os.environ.get("LANALAB_GRADE_RUN") or None)
    return build_block(submission / "fb_sampler.c", release, out)


@pytest.fixture(scope="session")
def loaded(built: BuildResult, vm1: GuestNode) -> ExecResult:
    """lana.ko and the blocks the grader needs from the image, the student's module
    from the host build."""
    assert built.module is not None
    vm1.sh("modprobe -a lana fb_eth fb_counter")
    vm1.put(GUEST_KO, built.module.read_bytes())
    return vm1.run(f"insmod {GUEST_KO}")


@pytest.fixture(scope="session")
def stack(loaded: ExecResult, vm1: GuestNode) -> ExecResult:
    return vm1.run("vlink ethernet hook eth0 && fbctl add s1 sampler && fbctl add c counter "
                   "&& fbctl bind s1 eth0 && fbctl bind c s1")


def counter(vm1: GuestNode) -> tuple[int, int]:
    fields = vm1.read("/proc/net/lana/fblock/c").split()
    return int(fields[0]), int(fields[1])


def engine(vm1: GuestNode) -> tuple[int, int]:
    """(packets, drops) of the packet engine, summed over CPUs."""
    packets = drops = 0
    for line in vm1.read("/proc/net/lana/ppe").splitlines():
        fields = line.split()
        if fields and fields[0].startswith("CPU"):
            packets += int(fields[1])
            drops += int(fields[4])
    return packets, drops
