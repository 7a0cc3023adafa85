"""The voice call between two VMs, with the stack changed while audio flows.

Each VM runs lanavoice on a PF_LANA socket named `voice`, bound on top of an ethvlink
device `vl1` (EtherType 0xAC01) whose carrier is the VM's eth0 on the lab's bridge:

    lanavoice -> [voice: pflana] -> [vl1: ethvlink] -> eth0 ~~ bridge ~~ eth0 -> ... (peer)

While both directions carry audio, a change runner in a guest changes its stack at set
times after the first frame: by default each VM inserts a fwd block between `voice` and
`vl1` (fbctl insert), replaces it by another fwd block (fbctl replace) and cuts it out
again (fbctl cut); exercise 5 runs a student's script instead. Each change is timed with
the guest's CLOCK_MONOTONIC, the clock lanavoice stamps frames with, so gaps can be looked
at around each change; the runner also records the block graph right after the changes,
while the call still runs (the socket disappears with lanavoice).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lab.capture import Capture
from lab.errors import LabError
from lab.labrun import REPO_ROOT, LabRun
from lab.vm.qga import ExecResult
from lab.voice.analysis import Fidelity, FrameLog, fidelity, parse_log
from lab.voice.signals import from_wav, test_signal, to_wav
from lab.voice.wire import WireStream, read_streams

APP_DIR = REPO_ROOT / "kernel" / "apps" / "voice"
# The freshly built app on the /lab share if the lab has one, else the image's copy
# (the image is rebuilt whenever kernel/apps changes, so both are the same program).
SHARED_APP = "/lab/kernel/apps/voice/lanavoice"
GUEST_APP = f"$(test -x {SHARED_APP} && echo {SHARED_APP} || echo lanavoice)"
VMS = ("vm1", "vm2")
VLINK_ID = 1
MODULES = "lana fb_fwd fb_ethvlink fb_pflana"
# Jitter buffer: 10 frames (200 ms). A TCG guest on a loaded 2-core host stalls for
# 100-400 ms at times; a smaller buffer turns those stalls into concealed frames.
JITTER_FRAMES = 10
FIRST_FRAME_DELAY_S = 1.0  # lanavoice sends its first frame 1 s after the go file


class VoiceGuest(Protocol):
    """What the call needs of a VM: a QemuVM or libvirt VM, or a grader's GuestAgent."""

    def exec(self, argv: Sequence[str], timeout: float = 60.0) -> ExecResult: ...
    def put_file(self, path: str, data: bytes) -> None: ...
    def get_file(self, path: str) -> bytes: ...


@dataclass(frozen=True)
class Change:
    """A shell command run `at` seconds after the call's first frame; `prepare` runs
    before the wait (not timed), so the timed command is the change alone."""

    at: float
    name: str
    run: str
    prepare: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangePlan:
    changes: tuple[Change, ...]
    cleanup: tuple[str, ...] = ()  # after the changes and the block-graph snapshot


SCRIPTED = ChangePlan(
    changes=(Change(1.0, "insert", "fbctl insert f1 voice", ("fbctl add f1 fwd",)),
             Change(2.0, "replace", "fbctl replace f1 f2", ("fbctl add f2 fwd",)),
             Change(3.0, "cut", "fbctl cut f2")),
    cleanup=("fbctl rm f2",))

# Runs in the guest: waits for the call to start, then runs the plan's changes at their
# times; stops at the first change that fails and records its exit code and output.
CHANGES_SOURCE = r'''
import json, os, subprocess, sys, time
first_frame = float(sys.argv[1])  # lanavoice sends its first frame this long after go
plan = json.load(open("/tmp/voice_changes.plan.json"))
open("/tmp/voice_changes.ready", "w").close()   # python is up (slow under TCG)
while not os.path.exists("/tmp/voice.go"):   # both sockets are bound: the call starts
    time.sleep(0.005)
t0 = time.monotonic() + first_frame
done = []
for step in plan["changes"]:
    for cmd in step["prepare"]:
        subprocess.run(cmd, shell=True, check=True)
    time.sleep(max(0.0, t0 + step["at"] - time.monotonic()))
    start = time.monotonic()
    r = subprocess.run(step["run"], shell=True, capture_output=True, text=True)
    done.append({"change": step["name"], "start_ms": start * 1e3,
                 "end_ms": time.monotonic() * 1e3, "exit_code": r.returncode,
                 "stdout": r.stdout[-4000:], "stderr": r.stderr[-4000:]})
    if r.returncode != 0:
        break
fblocks = open("/proc/net/lana/fblocks").read()
for cmd in plan["cleanup"]:
    subprocess.run(cmd, shell=True, check=True)
json.dump({"changes": done, "fblocks": fblocks}, open("/tmp/voice_changes.json.tmp", "w"))
os.rename("/tmp/voice_changes.json.tmp", "/tmp/voice_changes.json")
'''


@dataclass
class CallSide:
    """What one VM received from the other."""

    vm: str
    summary: dict
    log: FrameLog
    fidelity: Fidelity  # the real-time playout (late frames concealed)
    fidelity_received: Fidelity  # every received frame decoded in order
    changes: list[dict] = field(default_factory=list)  # this VM's stack changes
    fblocks_after_changes: str = ""  # /proc/net/lana/fblocks right after them
    counters: str = ""  # LANA engine and device counters after the call
    wire_sent: WireStream | None = None  # this VM's frames on the bridge (with capture)

    def wire_around_own_changes(self) -> dict[str, float]:
        """Wire path gap of this VM's frames near each change of its stack (its egress)."""
        if self.wire_sent is None:
            return {}
        return {c["change"]: self.wire_sent.worst_path_gap_around(
                    (c["start_ms"] + c["end_ms"]) / 2) for c in self.changes}

    def around_changes(self, changes: list[dict], own: bool) -> dict[str, tuple[float, float]]:
        """(gap, path gap) maxima near each change. own: the changes of this VM's stack
        (its ingress; arrival times are its clock); else the peer's changes (the peer's
        egress; the frames' send times are the peer's clock)."""
        return {c["change"]: self.log.worst_around((c["start_ms"] + c["end_ms"]) / 2,
                                                   sender_clock=not own)
                for c in changes}


@dataclass
class CallResult:
    sides: dict[str, CallSide]
    pcap: Path | None = None


def build_app() -> Path:
    """Build lanavoice on the host (libopus-dev; Opus linked statically)."""
    done = subprocess.run(["make", "-s", "-C", str(APP_DIR)], capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"building lanavoice failed: {done.stderr.strip()}",
                       hint="install libopus-dev on the host (scripts/setup-host.sh)")
    return APP_DIR / "lanavoice"


def _sh(guest: VoiceGuest, vm: str, command: str, timeout: float = 120.0) -> str:
    result = guest.exec(["sh", "-c", command], timeout=timeout)
    if result.exit_code != 0:
        raise LabError(f"{vm}: `{command}` failed with exit code {result.exit_code}: "
                       f"{(result.stderr or result.stdout).strip()}")
    return result.stdout


def prepare(guests: Mapping[str, VoiceGuest]) -> None:
    """Modules, the vlink device vl1 on eth0 in both VMs (idempotent)."""
    for vm, guest in guests.items():
        _sh(guest, vm, f"modprobe -a {MODULES} && "
            f"(test -e /proc/net/lana/fblock/vl1 || vlink ethernet add vl1 eth0 {VLINK_ID}) "
            "&& sysctl -qw net.ipv6.conf.vl1.disable_ipv6=1 && ip link set vl1 up")


BACKGROUND = ("/tmp/voice.json", "/tmp/voice_changes.out")


def _start_background(guest: VoiceGuest, vm: str, command: str, out: str) -> None:
    """`command` in its own session; its PID (= process group) goes to out.pid."""
    _sh(guest, vm, f"rm -f {out} {out}.err; setsid sh -c {shlex.quote(command)} "
        f"> {out}.tmp 2> {out}.err < /dev/null & echo $! > {out}.pid")


def _stop_background(guest: VoiceGuest) -> None:
    """End what this module started in the guest (a call that did not finish leaves
    lanavoice holding its socket, which would keep LANA loaded)."""
    for out in BACKGROUND:
        guest.exec(["sh", "-c", f"test -f {out}.pid && kill -KILL -- -$(cat {out}.pid) "
                    f"2>/dev/null; rm -f {out}.pid"], timeout=30)


def _wait_file(guest: VoiceGuest, vm: str, path: str, errors: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if guest.exec(["test", "-e", path], timeout=30).exit_code == 0:
            return
        time.sleep(0.5)
    err = guest.exec(["sh", "-c", f"cat {errors}"], timeout=30)
    raise LabError(f"{vm}: {path} did not appear within {timeout:.0f} s: {err.stdout.strip()}")


def _start_changes(guest: VoiceGuest, vm: str, plan: ChangePlan) -> None:
    doc = {"changes": [asdict(c) for c in plan.changes], "cleanup": list(plan.cleanup)}
    guest.put_file("/tmp/voice_changes.plan.json", json.dumps(doc).encode())
    guest.put_file("/tmp/voice_changes.py", CHANGES_SOURCE.encode())
    _start_background(guest, vm, f"python3 /tmp/voice_changes.py {FIRST_FRAME_DELAY_S}",
                      "/tmp/voice_changes.out")


def run_voice_call(guests: Mapping[str, VoiceGuest], seconds: float = 4.0,
                   plans: Mapping[str, ChangePlan] | None = None,
                   bridge: str | None = None, capture: Path | None = None) -> CallResult:
    """One bidirectional call of `seconds` of audio between the two VMs of `guests`
    (vm1, vm2); each VM in `plans` changes its stack during the call; with `bridge`
    and `capture`, a pcap of the call's frames on the bridge (tcpdump on the host)."""
    plans = plans or {}
    build_app()
    prepare(guests)
    sent = {vm: test_signal(seconds, variant=i) for i, vm in enumerate(VMS)}
    for vm in VMS:
        guests[vm].put_file("/tmp/voice_in.wav", to_wav(sent[vm]))
        _sh(guests[vm], vm, "rm -f /tmp/voice_changes.json /tmp/voice_changes.ready "
            "/tmp/voice.go /tmp/voice_out.wav /tmp/voice_rx.wav /tmp/voice.csv")
        if vm in plans:
            _start_changes(guests[vm], vm, plans[vm])
    for i, vm in enumerate(VMS):
        if vm in plans:
            _wait_file(guests[vm], vm, "/tmp/voice_changes.ready", "/tmp/voice_changes.out*",
                       60)
        # Real-time priority, as voice applications run: on a one-vCPU guest the change
        # script (python, fbctl) would otherwise preempt the call for tens of ms.
        command = ("$(command -v chrt >/dev/null && echo chrt -f 20) "
                   f"{GUEST_APP} -n voice -i /tmp/voice_in.wav -o /tmp/voice_out.wav "
                   "-r /tmp/voice_rx.wav "
                   f"-l /tmp/voice.csv -t {VLINK_ID} -s {i + 1} -j {JITTER_FRAMES} "
                   "-g /tmp/voice.go "
                   "&& mv /tmp/voice.json.tmp /tmp/voice.json")
        _start_background(guests[vm], vm, command, "/tmp/voice.json")
    tcpdump = None
    if capture is not None and bridge is not None:
        tcpdump = Capture(["tcpdump", "-i", bridge], capture,
                          bpf_filter=f"ether proto {0xAC00 | VLINK_ID:#x}").start()
    try:
        for vm in VMS:
            _sh(guests[vm], vm, "for i in $(seq 300); do "
                "test -e /proc/net/lana/fblock/voice && break; sleep 0.05; done; "
                "fbctl bind voice vl1")
        for vm in VMS:  # both bound: start both calls (skew: one exec, ~50 ms)
            _sh(guests[vm], vm, "touch /tmp/voice.go")
        for vm in VMS:
            _wait_file(guests[vm], vm, "/tmp/voice.json", "/tmp/voice.json.err",
                       timeout=seconds + 60)
            if vm in plans:
                _wait_file(guests[vm], vm, "/tmp/voice_changes.json",
                           "/tmp/voice_changes.out*", timeout=60)
    except BaseException:
        for guest in guests.values():
            _stop_background(guest)
        raise
    finally:
        if tcpdump is not None:
            tcpdump.stop(settle=0.5)  # the last frames land in the pcap first
    sides = {vm: _collect(guests[vm], vm, sent[VMS[1 - i]], vm in plans)
             for i, vm in enumerate(VMS)}
    if tcpdump is not None and capture is not None:
        streams = read_streams(capture, VLINK_ID)
        for i, vm in enumerate(VMS):
            sides[vm].wire_sent = streams.get(i + 1)
    return CallResult(sides, capture if tcpdump is not None else None)


def _collect(guest: VoiceGuest, vm: str, peer_sent: np.ndarray, changed: bool) -> CallSide:
    changes: dict[str, Any] = (json.loads(guest.get_file("/tmp/voice_changes.json"))
                               if changed else {"changes": [], "fblocks": ""})
    return CallSide(
        vm=vm,
        summary=json.loads(guest.get_file("/tmp/voice.json")),
        log=parse_log(guest.get_file("/tmp/voice.csv").decode()),
        fidelity=fidelity(peer_sent, from_wav(guest.get_file("/tmp/voice_out.wav"))),
        fidelity_received=fidelity(peer_sent, from_wav(guest.get_file("/tmp/voice_rx.wav"))),
        changes=changes["changes"],
        fblocks_after_changes=changes["fblocks"],
        counters=_sh(guest, vm, "cat /proc/net/lana/ppe; ip -s link show vl1; "
                     "ip -s link show eth0"))


def shifted(plan: ChangePlan, seconds: float) -> ChangePlan:
    """The same plan, every change `seconds` later."""
    return ChangePlan(tuple(Change(c.at + seconds, c.name, c.run, c.prepare)
                            for c in plan.changes), plan.cleanup)


def run_call(lab: LabRun, seconds: float = 4.0, changes: bool = True,
             capture: Path | None = None) -> CallResult:
    """The call in a lab this process runs; with `changes`, both VMs run the scripted
    insert/replace/cut (vm2 a quarter second after vm1)."""
    plans = {vm: shifted(SCRIPTED, 0.25 * i) for i, vm in enumerate(VMS)} if changes else {}
    bridge = lab.fabric.bridges["s1"] if lab.fabric is not None else None
    return run_voice_call({vm: lab.vms[vm] for vm in VMS}, seconds, plans, bridge, capture)
