"""The voice call between two VMs, with the stack changed while audio flows.

Each VM runs lanavoice on a PF_LANA socket named `voice`, bound on top of an ethvlink
device `vl1` (EtherType 0xAC01) whose carrier is the VM's eth0 on the lab's bridge:

    lanavoice -> [voice: pflana] -> [vl1: ethvlink] -> eth0 ~~ bridge ~~ eth0 -> ... (peer)

While both directions carry audio, a script in each guest changes its stack:
insert a fwd block between `voice` and `vl1` (fbctl insert), replace it by another fwd
block (fbctl replace) and cut it out again (fbctl cut). Each change is timed with the
guest's CLOCK_MONOTONIC, the clock lanavoice stamps arrivals with, so gaps can be
looked at around each change.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError
from lab.labrun import REPO_ROOT, LabRun
from lab.voice.analysis import Fidelity, FrameLog, fidelity, parse_log
from lab.voice.signals import from_wav, test_signal, to_wav
from lab.voice.wire import WireStream, read_streams

APP_DIR = REPO_ROOT / "kernel" / "apps" / "voice"
GUEST_APP = "/lab/kernel/apps/voice/lanavoice"
VMS = ("vm1", "vm2")
VLINK_ID = 1
MODULES = "lana fb_fwd fb_ethvlink fb_pflana"
# Jitter buffer: 10 frames (200 ms). A TCG guest on a loaded 2-core host stalls for
# 100-400 ms at times; a smaller buffer turns those stalls into concealed frames.
JITTER_FRAMES = 10

# Runs in the guest: waits for the call to start, then changes the stack at set times.
CHANGES_SOURCE = r'''
import json, os, subprocess, sys, time
offset = float(sys.argv[1])
open("/tmp/voice_changes.ready", "w").close()   # python is up (slow under TCG)
steps = [
    (1.0, "insert", ["fbctl add f1 fwd"], "fbctl insert f1 voice"),
    (2.0, "replace", ["fbctl add f2 fwd"], "fbctl replace f1 f2"),
    (3.0, "cut", [], "fbctl cut f2"),
]
while not os.path.exists("/tmp/voice.go"):   # both sockets are bound: the call starts
    time.sleep(0.005)
t0 = time.monotonic() + 1.0 + offset   # lanavoice sends its first frame 1 s after go
done = []
for at, name, prepare, change in steps:
    for cmd in prepare:
        subprocess.run(cmd.split(), check=True)
    time.sleep(max(0.0, t0 + at - time.monotonic()))
    start = time.monotonic()
    subprocess.run(change.split(), check=True)
    done.append({"change": name, "start_ms": start * 1e3, "end_ms": time.monotonic() * 1e3})
subprocess.run(["fbctl", "rm", "f2"], check=True)
json.dump(done, open("/tmp/voice_changes.json.tmp", "w"))
subprocess.run(["mv", "/tmp/voice_changes.json.tmp", "/tmp/voice_changes.json"])
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


def prepare(lab: LabRun) -> None:
    """Modules, the vlink device vl1 on eth0 in both VMs (idempotent)."""
    for vm in VMS:
        lab.sh(vm, f"modprobe -a {MODULES} && "
               f"(test -e /proc/net/lana/fblock/vl1 || vlink ethernet add vl1 eth0 {VLINK_ID}) "
               "&& sysctl -qw net.ipv6.conf.vl1.disable_ipv6=1 && ip link set vl1 up")


def _start_background(lab: LabRun, vm: str, command: str, out: str) -> None:
    lab.sh(vm, f"rm -f {out} {out}.err; setsid sh -c {shlex.quote(command)} "
           f"> {out}.tmp 2> {out}.err < /dev/null &")


def _wait_file(lab: LabRun, vm: str, path: str, errors: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if lab.vms[vm].exec(["test", "-e", path], timeout=30).exit_code == 0:
            return
        time.sleep(0.5)
    err = lab.vms[vm].exec(["sh", "-c", f"cat {errors}"], timeout=30)
    raise LabError(f"{vm}: {path} did not appear within {timeout:.0f} s: {err.stdout.strip()}")


def run_call(lab: LabRun, seconds: float = 4.0, changes: bool = True,
             capture: Path | None = None) -> CallResult:
    """One bidirectional call of `seconds` of audio; optionally the stack changes in both
    VMs and a pcap of the bridge (tcpdump on the host, LANA frames only)."""
    build_app()
    prepare(lab)
    sent = {vm: test_signal(seconds, variant=i) for i, vm in enumerate(VMS)}
    for i, vm in enumerate(VMS):
        lab.vms[vm].put_file("/tmp/voice_in.wav", to_wav(sent[vm]))
        lab.sh(vm, "rm -f /tmp/voice_changes.json /tmp/voice_changes.ready /tmp/voice.go "
               "/tmp/voice_out.wav /tmp/voice_rx.wav /tmp/voice.csv")
        if changes:
            lab.vms[vm].put_file("/tmp/voice_changes.py", CHANGES_SOURCE.encode())
            _start_background(lab, vm, f"python3 /tmp/voice_changes.py {0.25 * i}",
                              "/tmp/voice_changes.out")
    for i, vm in enumerate(VMS):
        if changes:
            _wait_file(lab, vm, "/tmp/voice_changes.ready", "/tmp/voice_changes.out*", 60)
        # Real-time priority, as voice applications run: on a one-vCPU guest the change
        # script (python, fbctl) would otherwise preempt the call for tens of ms.
        command = ("$(command -v chrt >/dev/null && echo chrt -f 20) "
                   f"{GUEST_APP} -n voice -i /tmp/voice_in.wav -o /tmp/voice_out.wav "
                   "-r /tmp/voice_rx.wav "
                   f"-l /tmp/voice.csv -t {VLINK_ID} -s {i + 1} -j {JITTER_FRAMES} "
                   "-g /tmp/voice.go "
                   "&& mv /tmp/voice.json.tmp /tmp/voice.json")
        _start_background(lab, vm, command, "/tmp/voice.json")
    tcpdump = None
    if capture is not None and lab.fabric is not None:
        bridge = lab.fabric.bridges["s1"]
        tcpdump = subprocess.Popen(["tcpdump", "-i", bridge, "-U", "-n", "-w", str(capture),
                                    f"ether proto {0xAC00 | VLINK_ID:#x}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # tcpdump needs a moment before it captures
    try:
        for vm in VMS:
            lab.sh(vm, "for i in $(seq 300); do test -e /proc/net/lana/fblock/voice && break; "
                   "sleep 0.05; done; fbctl bind voice vl1")
        for vm in VMS:  # both bound: start both calls (skew: one exec, ~50 ms)
            lab.sh(vm, "touch /tmp/voice.go")
        for vm in VMS:
            _wait_file(lab, vm, "/tmp/voice.json", "/tmp/voice.json.err",
                       timeout=seconds + 60)
            if changes:
                _wait_file(lab, vm, "/tmp/voice_changes.json", "/tmp/voice_changes.out*",
                           timeout=30)
    finally:
        if tcpdump is not None:
            time.sleep(0.5)
            tcpdump.terminate()
            tcpdump.wait(timeout=10)
    sides = {}
    for i, vm in enumerate(VMS):
        peer = VMS[1 - i]
        got = from_wav(lab.vms[vm].get_file("/tmp/voice_out.wav"))
        sides[vm] = CallSide(
            vm=vm,
            summary=json.loads(lab.vms[vm].get_file("/tmp/voice.json")),
            log=parse_log(lab.vms[vm].get_file("/tmp/voice.csv").decode()),
            fidelity=fidelity(sent[peer], got),
            fidelity_received=fidelity(
                sent[peer], from_wav(lab.vms[vm].get_file("/tmp/voice_rx.wav"))),
            changes=(json.loads(lab.vms[vm].get_file("/tmp/voice_changes.json"))
                     if changes else []),
            counters=lab.sh(vm, "cat /proc/net/lana/ppe; ip -s link show vl1; "
                            "ip -s link show eth0"))
    if tcpdump is not None and capture is not None:
        streams = read_streams(capture, VLINK_ID)
        for i, vm in enumerate(VMS):
            sides[vm].wire_sent = streams.get(i + 1)
    return CallResult(sides, capture if tcpdump is not None else None)
