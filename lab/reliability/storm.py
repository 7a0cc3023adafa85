"""Reconfiguration storm, run INSIDE a guest: `python3 -m lab.reliability.storm --seed S
--seconds T --out FILE` (with /lab on PYTHONPATH; Python 3 stdlib only).

While trafgen floods a veth pair (va -> vb, vb hooked into LANA), thousands of random
control operations (add, rm, bind, unbind, replace [--drop-priv], subscribe,
unsubscribe, set, BPF program loads, unhook/hook of vb) go to the LANA core, mostly
through netlink directly and some through the fbctl tool. A model predicts the errno of
every operation; /proc/net/lana/fblocks is compared with the model at checkpoints and at
the end. Then every block is removed and every module unloaded. A reader thread reads
every /proc/net/lana file meanwhile. The figures go to FILE as JSON.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from lab.lana.procfs import parse_fblocks, parse_ppe, ppe_total
from lab.reliability import settings
from lab.reliability.genl import LanaNetlink
from lab.reliability.model import Model

PROC = Path("/proc/net/lana")
# the engine models of kernel/core/engine_*.c (lab.bench.plan.ENGINES, kept in step by a
# unit test; the guest side imports nothing from the bench)
ENGINES = ("kthread-hp", "kthread-np", "kthread-cs", "hrtimer", "softirq")
TYPES = ["fwd", "tee", "counter", "bpf", "mirror", "arp", "icmp_echo", "ratelimit", "ipv4",
         "classify"]
NAMES = [f"s{i}" for i in range(14)]
ETH = "vb"
FRAME = ("{ fill(0xff, 6), 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, c16(0x0800), "
         "fill(0xca, 86) }")
BPF_PROGRAMS = [
    "{ 0x6, 0, 0, 0x0000ffff },\n",  # ret #0xffff
    "{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 1, 0x00000800 },\n"
    "{ 0x6, 0, 0, 0x0000ffff },\n{ 0x6, 0, 0, 0x00000000 },\n",  # IPv4 only
    "{ 0x6, 0, 0, 0x00000000 },\n",  # drop all
]
# Operation kinds and their weights.
OPS = {"add": 12, "rm": 10, "bind": 20, "unbind": 12, "replace": 8, "subscribe": 8,
       "unsubscribe": 6, "set": 8, "bpf": 4, "hook": 2, "unhook": 2}
KERNEL_TROUBLE = re.compile(r"WARNING:|BUG:|Oops|general protection|KASAN|UBSAN|"
                            r"possible recursive locking|circular locking|"
                            r"suspicious RCU usage|unreferenced object|Call Trace")


def sh(command: str) -> str:
    return subprocess.run(["sh", "-c", command], check=True, capture_output=True,
                          text=True).stdout


class Storm:
    def __init__(self, rng: random.Random, use_fbctl_every: int) -> None:
        self.rng = rng
        self.model = Model()
        self.nl = LanaNetlink()
        self.use_fbctl_every = use_fbctl_every
        self.done: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.errnos: Counter[str] = Counter()
        self.mismatches: list[str] = []
        self.silent_refusals: list[str] = []  # refused without an extack message
        self.fbctl_ops = 0
        self.checkpoints = 0

    # ---- one operation --------------------------------------------------------------
    def run(self, op: str, a: str, b: str = "", type_: str = "", drop: bool = False,
            opt: str = "") -> int:
        want = self.model.predict(op, a, b, type_, drop, opt)
        self.done[op] += 1
        tool = self.use_fbctl_every and self.done.total() % self.use_fbctl_every == 0
        if tool:
            got, message = self._fbctl(op, a, b, type_, drop, opt, want)
        else:
            answer = self._netlink(op, a, b, type_, drop, opt)
            if not answer.answered:
                self.mismatches.append(f"{op} {a} {b}: no answer from the kernel")
                return -1
            got, message = answer.errno, answer.message
        label = " ".join(x for x in (op, a, b, type_, opt, "--drop-priv" if drop else "") if x)
        # fbctl reports a failure by exit code 1 only, not by errno
        ok = got != 0 if tool and want else got == want
        if not ok:
            self.mismatches.append(f"{label}: expected {errno.errorcode.get(want, want)}, "
                                   f"got {errno.errorcode.get(got, got)} ({message})")
        if got == 0:
            self.model.apply(op, a, b, type_)
        else:
            self.refused[op] += 1
            self.errnos[errno.errorcode.get(got, str(got)) if not tool else "fbctl-exit-1"] += 1
            if not message:
                self.silent_refusals.append(label)
        return got

    def _netlink(self, op: str, a: str, b: str, type_: str, drop: bool, opt: str):
        if op == "add":
            return self.nl.request("add", name=a, type_=type_)
        if op == "rm":
            return self.nl.request("rm", name=a)
        if op == "set":
            return self.nl.request("set", name=a, opt=opt)
        if op == "replace":
            return self.nl.request("replace", name=a, name2=b, flags=1 if drop else 0)
        return self.nl.request(op, name=a, name2=b)

    def _fbctl(self, op: str, a: str, b: str, type_: str, drop: bool, opt: str,
               want: int) -> tuple[int, str]:
        self.fbctl_ops += 1
        argv = {"add": ["add", a, type_], "rm": ["rm", a], "set": ["set", a, opt],
                "replace": ["replace", a, b] + (["--drop-priv"] if drop else [])
                }.get(op, [op, a, b])
        result = subprocess.run(["fbctl", *argv], capture_output=True, text=True)
        if result.returncode not in (0, 1):
            self.mismatches.append(f"fbctl {' '.join(argv)}: exit {result.returncode}")
        if result.returncode == 1 and not result.stderr.startswith(f"fbctl: {op}"):
            self.mismatches.append(f"fbctl {' '.join(argv)}: unclear message "
                                   f"{result.stderr!r}")
        return (0 if result.returncode == 0 else want or -1), result.stderr.strip()

    # ---- random choices ---------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self.model.types)

    def pick_pair(self, op: str, tries: int = 30, **kw: object) -> tuple[str, str]:
        """A pair the model says succeeds, most of the time; else any pair."""
        names = self.names() or ["x"]
        pair = (self.rng.choice(names), self.rng.choice(names))
        if self.rng.random() < 0.15:
            return pair
        for _ in range(tries):
            candidate = (self.rng.choice(names), self.rng.choice(names))
            if self.model.predict(op, *candidate, **kw) == 0:  # type: ignore[arg-type]
                return candidate
        return pair

    def step(self) -> None:
        op = self.rng.choices(list(OPS), weights=list(OPS.values()))[0]
        rng, m = self.rng, self.model
        if op == "add":
            free = [n for n in NAMES if n not in m.types]
            name = rng.choice(free) if free and rng.random() < 0.9 else rng.choice(NAMES)
            self.run("add", name, type_=rng.choice(TYPES))
        elif op == "rm":
            names = [n for n in self.names() if n != ETH]
            if not names:
                return
            name = rng.choice(names)
            if rng.random() < 0.8:  # as a user would: unbind and unsubscribe it first
                for upper, lower in sorted(e for e in m.binds if name in e):
                    self.run("unbind", upper, lower)
                for sub, pub in sorted(e for e in m.explicit if e[1] == name):
                    self.run("unsubscribe", sub, pub)
            self.run("rm", name)
        elif op in ("bind", "unbind", "subscribe", "unsubscribe"):
            if op in ("unbind", "unsubscribe") and rng.random() < 0.85:
                edges = sorted(m.binds if op == "unbind" else m.explicit)
                if edges:
                    self.run(op, *rng.choice(edges))
                    return
            self.run(op, *self.pick_pair(op))
        elif op == "replace":
            drop = rng.random() < 0.5
            old, new = self.pick_pair("replace", drop=drop)
            free = [n for n in NAMES if n not in m.types]
            if m.types.get(old) and free and rng.random() < 0.8:
                # as a user would: add a fresh instance, then replace the old one by it
                new = rng.choice(free)
                type_ = rng.choice(TYPES) if drop else m.types[old]
                if type_ == "eth":
                    return
                self.run("add", new, type_=type_)
            if ETH in (old, new) and not drop:
                return  # eth without --drop-priv needs a second hooked device
            self.run("replace", old, new, drop=drop)
        elif op == "set":
            counters = [n for n, t in m.types.items() if t == "counter"]
            protocol = [n for n, t in m.types.items() if t in settings.BLOCKS]
            if protocol and rng.random() < 0.5:  # valid and invalid settings, predicted
                name = rng.choice(protocol)
                self.run("set", name, opt=rng.choice(settings.BLOCKS[m.types[name]].cases))
            elif counters and rng.random() < 0.7:
                self.run("set", rng.choice(counters), opt="reset=1")
            elif m.types.get(ETH) == "eth":
                self.run("set", ETH, opt=f"mode={rng.choice(['observe', 'steal'])}")
        elif op == "bpf":
            self.load_bpf()
        elif op == "hook" and ETH not in m.types:
            self.run("add", ETH, type_="eth")
        elif op == "unhook" and m.types.get(ETH) == "eth" and m.predict("rm", ETH) == 0:
            self.run("rm", ETH)

    def load_bpf(self) -> None:
        filters = [n for n, t in self.model.types.items() if t == "bpf"]
        if not filters:
            return
        name = self.rng.choice(filters)
        self.done["bpf"] += 1
        try:
            with open(PROC / "fblock" / name, "w") as f:
                f.write(self.rng.choice(BPF_PROGRAMS))
        except OSError as exc:
            self.mismatches.append(f"bpf load into {name}: {exc}")

    # ---- checks -----------------------------------------------------------------------
    def checkpoint(self) -> None:
        self.checkpoints += 1
        everything = parse_fblocks((PROC / "fblocks").read_text())
        by_idp = {block.idp: name for name, block in everything.items()}
        # the rival process's instances (RIVAL_PREFIX) never touch the model's ones
        actual = {n: b for n, b in everything.items() if not n.startswith(RIVAL_PREFIX)}
        expected = self.model.expected()
        if list(actual) != list(expected):
            self.mismatches.append(f"checkpoint {self.checkpoints}: instances "
                                   f"{list(actual)} != model {list(expected)}")
            return
        for name, block in actual.items():
            want = expected[name]
            got = (block.type, block.refcnt,
                   frozenset((p.direction, by_idp.get(p.idp, "?")) for p in block.ports),
                   frozenset(by_idp.get(i, "?") for i in block.subscriptions),
                   frozenset(by_idp.get(i, "?") for i in block.subscribers))
            wanted = (want.type, want.refcnt, want.ports, want.subscriptions, want.subscribers)
            if got != wanted:
                self.mismatches.append(f"checkpoint {self.checkpoints}: {name}: kernel "
                                       f"{got} != model {wanted}")

    def teardown(self) -> None:
        """Unbind, unsubscribe and remove everything, each step predicted to succeed."""
        for upper, lower in sorted(self.model.binds):
            self.run("unbind", upper, lower)
        for sub, pub in sorted(self.model.explicit):
            self.run("unsubscribe", sub, pub)
        for name in list(self.model.types):
            self.run("rm", name)


RIVAL_PREFIX = "r"
# A second control process on its own instances: the core's mutex, IDP allocation, proc
# file creation and removal then see two writers. Its errors are counted, not modelled.
RIVAL = r"""
i=0
while :; do
  i=$((i + 1)); a=r$((i % 5)); b=r$(((i + 1) % 5)); c=r$(((i + 2) % 5))
  fbctl add $a fwd; fbctl add $b counter; fbctl bind $b $a; fbctl subscribe $c $a
  fbctl add $c tee; fbctl replace $a $c --drop-priv; fbctl set $b reset=1
  fbctl unbind $b $a; fbctl unbind $b $c; fbctl unsubscribe $c $a; fbctl rm $a
  fbctl rm $b; fbctl rm $c
  echo $i > /tmp/storm_rival_rounds
done >/dev/null 2>&1
"""


def start_rival() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", RIVAL], cwd="/tmp", stdin=subprocess.DEVNULL,
                            start_new_session=True)


def stop_rival(rival: subprocess.Popen[bytes]) -> list[str]:
    """Stop the rival, remove what it left (its names only); what it could not remove."""
    os.killpg(rival.pid, signal.SIGKILL)
    rival.wait(10)
    with LanaNetlink() as nl:
        for _ in range(3):
            blocks = parse_fblocks((PROC / "fblocks").read_text())
            by_idp = {b.idp: n for n, b in blocks.items()}
            for name, block in blocks.items():
                if not name.startswith(RIVAL_PREFIX):
                    continue
                for port in block.ports:
                    other = by_idp.get(port.idp, "")
                    pair = (name, other) if port.direction == "out" else (other, name)
                    nl.request("unbind", name=pair[0], name2=pair[1])
                for idp in block.subscriptions:
                    nl.request("unsubscribe", name=name, name2=by_idp.get(idp, ""))
                for idp in block.subscribers:
                    nl.request("unsubscribe", name=by_idp.get(idp, ""), name2=name)
            for name in blocks:
                if name.startswith(RIVAL_PREFIX):
                    nl.request("rm", name=name)
    return [n for n in parse_fblocks((PROC / "fblocks").read_text())
            if n.startswith(RIVAL_PREFIX)]


def rival_rounds() -> int:
    try:
        return int(Path("/tmp/storm_rival_rounds").read_text())
    except (OSError, ValueError):
        return 0


class ProcReader(threading.Thread):
    """Reads every /proc/net/lana file while the storm runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.reads = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            files = [PROC / "fblocks", PROC / "ppe", PROC / "types"]
            try:
                files += list((PROC / "fblock").iterdir())
            except OSError as exc:
                self.errors.append(f"listdir: {exc}")
            for path in files:
                try:
                    path.read_bytes()
                    self.reads += 1
                except OSError as exc:
                    # an instance file may vanish between listdir and read (rm, replace)
                    if path.parent.name != "fblock" or exc.errno not in (errno.ENOENT,
                                                                          errno.EIO):
                        self.errors.append(f"{path}: {exc}")
            time.sleep(0.005)


def ppe_packets() -> int:
    return ppe_total(parse_ppe((PROC / "ppe").read_text())).packets


def kernel_trouble(dmesg: str) -> list[str]:
    return [line for line in dmesg.splitlines() if KERNEL_TROUBLE.search(line)]


def setup(engine: str = "softirq") -> subprocess.Popen[bytes]:
    """lana.ko with `engine` as its engine model, the veth pair (kept from an earlier run
    in this guest), trafgen flooding va."""
    sh(f"modprobe lana engine={engine} && sysctl -qw net.ipv6.conf.default.disable_ipv6=1 "
       "&& { ip link show va > /dev/null 2>&1 || ip link add name va type veth peer name vb; }"
       " && ip link set dev va up && ip link set dev vb up")
    # trafgen mmaps a scratch file in its working directory: not on the 9p share
    return subprocess.Popen(["trafgen", "--dev", "va", "--cpus", "1", "--no-cpu-stats",
                             "--num", "0", FRAME], stdin=subprocess.DEVNULL, cwd="/tmp",
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_frames(trafgen: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    tx = Path("/sys/class/net/va/statistics/tx_packets")
    deadline = time.monotonic() + timeout
    while int(tx.read_text()) == 0:
        if trafgen.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"trafgen sends nothing on va (exit {trafgen.poll()})")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)  # trafgen ends on SIGINT, not always on SIGTERM
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def current_engine() -> str:
    """The engine model running now: the marked one in /proc/net/lana/engine."""
    text = (PROC / "engine").read_text()
    found = re.search(r"\[([\w-]+)\]", text) or re.search(r"^([\w-]+)$", text.strip(), re.M)
    return found.group(1) if found else text.strip()


def switch_engine(rng: random.Random, switched: Counter[str]) -> None:
    """Another engine model, under the flood and the storm: every packet must survive
    the switch (lana_engine_select)."""
    engine = rng.choice(ENGINES)
    (PROC / "engine").write_text(engine + "\n")
    switched[engine] += 1


CPU1_ONLINE = Path("/sys/devices/system/cpu/cpu1/online")


def toggle_cpu1(toggled: Counter[str]) -> None:
    """CPU 1 off if it is on, on if it is off: the engine's per-CPU threads, queues and
    timers must carry on through CPU hotplug (the packets of a CPU going away too)."""
    online = CPU1_ONLINE.read_text().strip() == "1"
    CPU1_ONLINE.write_text("0\n" if online else "1\n")
    toggled["offline" if online else "online"] += 1


def unload_modules() -> tuple[dict[str, int], list[str]]:
    """Module reference counts before unloading, and what could not be unloaded."""
    refs = {}
    for line in Path("/proc/modules").read_text().splitlines():
        name, _size, refcnt = line.split()[:3]
        if name == "lana" or name.startswith("fb_"):
            refs[name] = int(refcnt)
    failed = []
    for name in sorted(refs, key=lambda n: n == "lana"):  # blocks first, then the core
        result = subprocess.run(["rmmod", name], capture_output=True, text=True)
        if result.returncode != 0:
            failed.append(f"{name}: {result.stderr.strip()}")
    return refs, failed


def kmemleak_report() -> list[str]:
    """Leaks kmemleak attributes to LANA (only on a kernel with CONFIG_DEBUG_KMEMLEAK)."""
    path = Path("/sys/kernel/debug/kmemleak")
    if not path.exists():
        subprocess.run(["mount", "-t", "debugfs", "none", "/sys/kernel/debug"],
                       capture_output=True)
    if not path.exists():
        return []
    path.write_text("scan\n")
    report = path.read_text()
    return [block for block in report.split("unreferenced object")
            if re.search(r"\[(lana|fb_\w+)\]", block)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--checkpoint-every", type=int, default=150)
    parser.add_argument("--fbctl-every", type=int, default=25,
                        help="every Nth operation goes through the fbctl tool")
    parser.add_argument("--engine", choices=ENGINES, default="softirq",
                        help="the engine model lana.ko is loaded with")
    parser.add_argument("--switch-engine-every", type=int, default=0, metavar="N",
                        help="every Nth operation also switches to a random engine model "
                             "(0: never)")
    parser.add_argument("--hotplug-every", type=int, default=0, metavar="N",
                        help="every Nth operation also takes CPU 1 off line, or back on "
                             "(0: never)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.hotplug_every and not CPU1_ONLINE.exists():
        parser.error("--hotplug-every needs a guest with a CPU 1 that can go off line")

    rng = random.Random(args.seed)
    dmesg_before = sh("dmesg")
    trafgen = setup(args.engine)
    loaded_with = current_engine()
    switched: Counter[str] = Counter()
    toggled: Counter[str] = Counter()
    wait_for_frames(trafgen)
    storm = Storm(rng, args.fbctl_every)
    storm.run("add", ETH, type_="eth")
    reader = ProcReader()
    started = time.monotonic()
    packets_before = ppe_packets()
    tx_before = int(Path("/sys/class/net/va/statistics/tx_packets").read_text())
    reader.start()
    rival = start_rival()
    ops = 0
    while time.monotonic() - started < args.seconds:
        storm.step()
        ops += 1
        if args.switch_engine_every and ops % args.switch_engine_every == 0:
            switch_engine(rng, switched)
        if args.hotplug_every and ops % args.hotplug_every == 0:
            toggle_cpu1(toggled)
        if ops % args.checkpoint_every == 0:
            storm.checkpoint()
    storm.checkpoint()
    rival_left = stop_rival(rival)
    storm.checkpoint()
    storm_seconds = time.monotonic() - started
    packets = ppe_packets() - packets_before
    tx = int(Path("/sys/class/net/va/statistics/tx_packets").read_text()) - tx_before
    if toggled and CPU1_ONLINE.read_text().strip() == "0":
        toggle_cpu1(toggled)  # back on line before the teardown
    engine_at_end = current_engine()
    qdrops = re.search(r"^qdrops (\d+)", (PROC / "engine").read_text(), re.M)
    stop(trafgen)
    storm.teardown()
    reader.stop.set()
    reader.join(10)
    left = list(parse_fblocks((PROC / "fblocks").read_text()))
    storm.nl.close()
    refs, unload_failed = unload_modules()
    still_loaded = [line.split()[0] for line in Path("/proc/modules").read_text().splitlines()
                    if line.startswith(("lana ", "fb_"))]
    dmesg = sh("dmesg")
    new_dmesg = dmesg[len(dmesg_before):] if dmesg.startswith(dmesg_before) else dmesg
    summary = {
        "seed": args.seed,
        "seconds": round(storm_seconds, 1),
        "engine": loaded_with,
        "engine_switches": dict(switched),
        "engine_at_end": engine_at_end,
        "engine_queue_drops": int(qdrops.group(1)) if qdrops else None,
        "cpu1_toggles": dict(toggled),
        # a bound engine thread whose CPU went away runs on elsewhere: the kernel says so
        "affinity_broken": [line for line in new_dmesg.splitlines()
                            if "no longer affine" in line][:10],
        "operations": storm.done.total(),
        "operations_by_kind": dict(storm.done),
        "refused_by_kind": dict(storm.refused),
        "refusals_by_errno": dict(storm.errnos),
        "through_fbctl": storm.fbctl_ops,
        "rival_fbctl_operations": 13 * rival_rounds(),
        "checkpoints": storm.checkpoints,
        "model_mismatches": storm.mismatches[:50],
        "model_mismatch_count": len(storm.mismatches),
        "refusals_without_message": storm.silent_refusals[:20],
        "packets_processed": packets,
        "frames_sent": tx,
        "proc_reads": reader.reads,
        "proc_read_errors": reader.errors[:20],
        "instances_left": left + rival_left,
        "module_refs_before_unload": refs,
        "leaked_module_refs": sum(refs.get(n, 0) for n in refs if n != "lana"),
        "unload_failed": unload_failed,
        "modules_still_loaded": still_loaded,
        "kernel_trouble": kernel_trouble(new_dmesg)[:40],
        "kmemleak": kmemleak_report()[:10],
        "instance_left_warnings": new_dmesg.count("left at unload"),
    }
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: summary[k] for k in ("operations", "packets_processed",
                                              "model_mismatch_count")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
