"""The flood scenario, driven from the host: build the defended stack in a guest, start
the controller there with a policy, flood (lab.autonomic.floods), stop the controller,
and hand back what happened. Used by tests/vm/test_autonomic.py and exercise 8's grader.

The stack, on a veth pair va/vb inside the guest (vb hooked into LANA):

    vb -> c0 (counter: rate_high / rate_normal) -> victim (counter)
       -> probe (bpf: the legitimate EtherType only) -> app (counter)

c0 sees everything, `victim` what reached the defended block, `app` the legitimate frames
that reached it: legitimate frames lost = sent - app, flood frames that reached the victim
= victim - app.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.autonomic import bundle
from lab.autonomic.journal import JournalRecord, read_journal

WORK = "/tmp/lanalab-autonomic"
PYTHON = f"{WORK}/py"  # lab.autonomic.bundle, unpacked
GUEST_PY = f"PYTHONPATH={PYTHON} PYTHONDONTWRITEBYTECODE=1 python3"
JOURNAL = f"{WORK}/journal.jsonl"
LEGIT = 0x88B5
# c0's settings: a flood is > 1000 frames/s over 100 ms, normal again below 400/s
WATCH = ("interval_ms=100", "rate_high=1000", "rate_normal=400")
PASS, DROP = 0xFFFFFFFF, 0  # classic BPF verdicts


class Guest(Protocol):
    def sh(self, command: str, timeout: float = 60.0) -> str: ...
    def put(self, path: str, data: bytes | str) -> None: ...


def bpf_ethertype(ethertype: int, on_match: int, otherwise: int) -> str:
    """A classic BPF program (bpfc form): verdict `on_match` for frames of `ethertype`,
    `otherwise` for the rest (0 drops, 0xffffffff passes)."""
    return ("{ 0x28, 0, 0, 0x0000000c },\n"
            f"{{ 0x15, 0, 1, 0x{ethertype:08x} }},\n"
            f"{{ 0x06, 0, 0, 0x{on_match:08x} }},\n"
            f"{{ 0x06, 0, 0, 0x{otherwise:08x} }},\n")


def bpf_accept_only(ethertype: int) -> str:
    return bpf_ethertype(ethertype, PASS, DROP)


def bpf_drop_only(ethertype: int) -> str:
    return bpf_ethertype(ethertype, DROP, PASS)


def build_stack(guest: Guest) -> None:
    """The stack above, and the controller's Python (lab.autonomic.bundle) in WORK."""
    guest.sh(f"rm -rf {WORK} && mkdir -p {WORK}")
    bundle.install(guest, PYTHON)
    guest.put(f"{WORK}/probe.ops", bpf_accept_only(LEGIT))
    watch = " && ".join(f"fbctl set c0 {option}" for option in WATCH)
    guest.sh("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 && "
             "modprobe -a lana fb_eth fb_counter fb_bpf && "
             "ip link add name va type veth peer name vb && "
             "ip link set dev va up && ip link set dev vb up && vlink ethernet hook vb && "
             f"fbctl add c0 counter && {watch} && fbctl add victim counter && "
             f"fbctl add probe bpf && cat {WORK}/probe.ops > /proc/net/lana/fblock/probe && "
             "fbctl add app counter && fbctl bind c0 vb && fbctl bind victim c0 && "
             "fbctl bind probe victim && fbctl bind app probe")


def tear_down_stack(guest: Guest) -> None:
    """Everything build_stack made and whatever a policy left (best effort)."""
    guest.sh("for b in $(cut -d' ' -f1 /proc/net/lana/fblocks 2>/dev/null); do "
             "[ \"$b\" = vb ] || fbctl rm \"$b\" 2>/dev/null || "
             "{ fbctl cut \"$b\" 2>/dev/null; fbctl rm \"$b\" 2>/dev/null; }; done; "
             "vlink ethernet unhook vb 2>/dev/null; ip link del va 2>/dev/null; true")


@dataclass
class Controller:
    """A controller process in the guest; `failed` says why it never got ready."""

    pid: int | None
    failed: str | None = None


def start_controller(guest: Guest, policy: str, kwargs: dict[str, Any] | None = None,
                     timeout: float = 120.0) -> Controller:
    """Start `python3 -m lab.autonomic --policy POLICY` in the background and wait until
    its journal says "ready" (subscribed), or until it exits (then: its standard error)."""
    guest.put(f"{WORK}/kwargs.json", json.dumps(kwargs or {}))
    command = (f"{GUEST_PY} -m lab.autonomic --policy {shlex.quote(policy)} "
               f"--kwargs \"$(cat {WORK}/kwargs.json)\" --journal {JOURNAL}")
    # the wrapping sh ignores SIGTERM (the controller sets its own handler), so it lives
    # to write the exit code: the group is signalled only while that file is missing
    script = (f"trap '' TERM; {command} > {WORK}/controller.out 2>&1; "
              f"echo $? > {WORK}/controller.rc")
    pid = int(guest.sh(f"rm -f {JOURNAL} {WORK}/controller.rc; "
                       f"setsid sh -c {shlex.quote(script)} < /dev/null > /dev/null 2>&1 & "
                       "echo $!").strip())
    deadline = time.monotonic() + timeout
    while not any(r.kind == "ready" for r in journal(guest)):
        rc = guest.sh(f"cat {WORK}/controller.rc 2>/dev/null || true").strip()
        if rc:
            said = guest.sh(f"cat {WORK}/controller.out").strip()
            return Controller(None, f"the controller exited ({rc}) before it was ready: "
                                    f"{said[-2000:]}")
        if time.monotonic() > deadline:
            return Controller(pid, f"the controller was not ready after {timeout:.0f} s")
        time.sleep(0.3)
    return Controller(pid)


def wait_stopped(guest: Guest, controller: Controller, timeout: float = 30.0) -> bool:
    """Wait until the journal says "stopped" (True) or the controller exited without
    (False), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not any(r.kind == "stopped" for r in journal(guest)):
        if guest.sh(f"cat {WORK}/controller.rc 2>/dev/null || true").strip():
            return any(r.kind == "stopped" for r in journal(guest))
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


def stop_controller(guest: Guest, controller: Controller, timeout: float = 30.0) -> bool:
    """SIGTERM its process group (setsid made one) and wait for "stopped"; SIGKILL the
    group if it does not stop in time."""
    if controller.pid is None:
        return False
    running = f"[ ! -e {WORK}/controller.rc ]"
    guest.sh(f"{running} && kill -TERM -{controller.pid} 2>/dev/null; true")
    stopped = wait_stopped(guest, controller, timeout)
    if not stopped:
        guest.sh(f"{running} && kill -KILL -{controller.pid} 2>/dev/null; true")
    return stopped


def journal(guest: Guest) -> list[JournalRecord]:
    return read_journal(guest.sh(f"cat {JOURNAL} 2>/dev/null || true"))


@dataclass
class FloodRun:
    """What lab.autonomic.floods reported, and the counters after it."""

    first_shape: str
    legit: int  # legitimate frames sent
    flood: int  # flood frames sent
    floods: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)  # c0, victim, app

    @property
    def reactions(self) -> list[float]:
        """Seconds from each flood's first frame to the changed stack (floods reacted to)."""
        return [f["guard_seen"] - f["start"] for f in self.floods if "guard_seen" in f]

    @property
    def recoveries(self) -> list[float]:
        """Seconds from each flood's last frame to the first shape again."""
        return [f["restored_seen"] - f["end"] for f in self.floods if "restored_seen" in f]

    @property
    def legit_lost(self) -> int:
        return self.legit - self.counts["app"]

    @property
    def flood_at_victim(self) -> int:
        return self.counts["victim"] - self.counts["app"]


def flood(guest: Guest, floods: int, flood_type: int, timeout: float = 900.0,
          **options: float) -> FloodRun:
    args = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in options.items())
    out = guest.sh(f"{GUEST_PY} -m lab.autonomic.floods --floods {floods} "
                   f"--legit {LEGIT:#x} --flood {flood_type:#x} {args}", timeout=timeout)
    result = json.loads(out.strip().splitlines()[-1])
    run = FloodRun(result["first_shape"], result["legit"], result["flood"], result["floods"])
    names = ("c0", "victim", "app")
    firsts = guest.sh(" ".join(["head -qn1"] + [f"/proc/net/lana/fblock/{n}" for n in names]))
    run.counts = {name: int(line.split()[0])  # one round trip for the three
                  for name, line in zip(names, firsts.splitlines(), strict=True)}
    return run
