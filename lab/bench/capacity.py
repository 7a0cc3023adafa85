"""How many participants' labs this machine holds: default labs started one after another
(each two LANA VMs and a Mininet host, as a participant's notebook 01 makes them), with
every lab's boot time, the memory its VMs really use (qemu's resident set), the CPU an
idle lab takes, and how quickly a guest answers while all of them run. Stops at
--max-labs, when a boot takes longer than --boot-limit, or when the next lab would leave
less than 10 % of the memory free. Then the same extrapolated to a bigger server.

With --busy every lab is worked in as it comes up: h1 pings both VMs 20 times a second
each (BUSY_PPS), the traffic of a participant sending frames through a notebook's stack,
kept up while the next labs boot. CPU per lab is then the busy figure.

    sudo .venv/bin/python -m lab.bench.capacity --max-labs 6 --out capacity.json
    sudo .venv/bin/python -m lab.bench.capacity --busy --max-labs 4

With --grade-at-once, once every lab is up (and any pings ended, they would upset the
grader's exact counts) exercise 1's solution is graded on the first lab alone, then on
every lab at once, as when a whole class is told to grade: each grade's time and whether
it passed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.image.store import ImageInfo
from lab.labrun import LabRun

BUSY_PPS = 20  # per VM, from h1: ping -i 0.05
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Step:
    labs: int
    boot_s: float  # this lab's `up`, with the others running
    rss_mb_per_vm: float  # mean qemu resident set of this lab's VMs
    cpu_per_lab: float  # cores all labs' qemus use (idle, or busy with --busy) / labs
    exec_ms: float  # a guest-agent `true` in the first lab, all labs running
    mem_available_mb: float


def meminfo() -> dict[str, int]:
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, rest = line.split(":", 1)
        values[key] = int(rest.split()[0]) // 1024  # MB
    return values


def rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE / 2**20


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def qemu_pids(lab: LabRun) -> list[int]:
    return [pid for vm in lab.vms.values() if (pid := getattr(vm, "pid", None))]


def lab_cores(labs: list[LabRun], seconds: float = 5.0) -> float:
    """Cores the labs' qemus use, over a window of `seconds`."""
    pids = [pid for lab in labs for pid in qemu_pids(lab)]
    before, start = {pid: cpu_ticks(pid) for pid in pids}, time.monotonic()
    time.sleep(seconds)  # a measuring window, not a wait for a condition
    elapsed = time.monotonic() - start
    return sum(cpu_ticks(pid) - before[pid] for pid in pids) / TICKS / elapsed


def keep_busy(lab: LabRun) -> list[subprocess.Popen[bytes]]:
    """h1 pinging both VMs at BUSY_PPS each, until the caller ends the pings."""
    h1 = lab.fabric.host("h1") if lab.fabric else None
    if h1 is None:
        return []
    return [h1.popen(["ping", "-q", "-i", f"{1 / BUSY_PPS:g}", address],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for address in ("10.0.0.1", "10.0.0.2")]


def end_pings(pings: list[subprocess.Popen[bytes]]) -> None:
    """Ours, started by keep_busy: ended by their Popen, once."""
    while pings:
        ping = pings.pop()
        ping.terminate()
        ping.wait(timeout=10)


def grade_once(lab: LabRun) -> tuple[float, bool]:
    """Exercise 1's solution graded on `lab`: (seconds, passed)."""
    from lab.grading.engine import grade
    from lab.grading.exercise import find_exercise

    exercise = find_exercise("1")
    start = time.monotonic()
    result = grade(exercise, exercise.folder("solution"),
                   run_id=lab.run.run_id if lab.run else None)
    return round(time.monotonic() - start, 1), result.score == result.max_score > 0


def grade_at_once(labs: list[LabRun], say: Callable[[str], None] = print
                  ) -> dict[str, object]:
    alone = grade_once(labs[0])
    say(f"[capacity] one grade alone: {alone[0]} s, passed {alone[1]}")
    with ThreadPoolExecutor(len(labs)) as pool:
        together = list(pool.map(grade_once, labs))
    say(f"[capacity] {len(labs)} grades at once: " + ", ".join(
        f"{s} s{'' if ok else ' (failed)'}" for s, ok in together))
    return {"alone_s": alone[0], "alone_passed": alone[1],
            "at_once_s": [s for s, _ in together], "at_once_passed": [ok for _, ok in together]}


def measure(image: ImageInfo, max_labs: int, boot_limit: float, busy: bool = False,
            say: Callable[[str], None] = print,
            at_peak: Callable[[list[LabRun]], None] | None = None) -> list[Step]:
    from lab.topology.loader import load_topology

    labs: list[LabRun] = []
    steps: list[Step] = []
    pings: list[subprocess.Popen[bytes]] = []
    try:
        while len(labs) < max_labs:
            memory = meminfo()
            per_lab = (steps[-1].rss_mb_per_vm * 2) if steps else 0.0
            if steps and memory["MemAvailable"] - per_lab < memory["MemTotal"] * 0.1:
                say(f"[capacity] stopping: lab {len(labs) + 1} would leave < 10 % memory")
                break
            lab = LabRun(load_topology("default"), image, share=None)
            start = time.monotonic()
            lab.up()
            boot = time.monotonic() - start
            labs.append(lab)
            if busy:
                pings += keep_busy(lab)
            rss = [rss_mb(pid) for pid in qemu_pids(lab)]
            cores = lab_cores(labs)
            t0 = time.monotonic()
            labs[0].sh("vm1", "true")
            step = Step(len(labs), round(boot, 1), round(sum(rss) / len(rss), 1),
                        round(cores / len(labs), 3), round((time.monotonic() - t0) * 1e3, 1),
                        meminfo()["MemAvailable"])
            steps.append(step)
            say(f"[capacity] {step.labs} labs: boot {step.boot_s} s, {step.rss_mb_per_vm} MB "
                f"per VM, {'busy' if busy else 'idle'} {step.cpu_per_lab} cores per lab, "
                f"exec {step.exec_ms} ms, {step.mem_available_mb} MB available")
            if boot > boot_limit:
                say(f"[capacity] stopping: the last boot took over {boot_limit:g} s")
                break
        end_pings(pings)
        if at_peak is not None and labs:
            at_peak(labs)
    finally:
        end_pings(pings)
        for lab in reversed(labs):
            lab.down()
    return steps


def extrapolate(steps: list[Step], cores: int, memory_mb: int) -> dict[str, float]:
    """Labs a machine of `cores` and `memory_mb` holds: by memory (the VMs' resident sets,
    10 % kept free) and by CPU (the labs' measured use, idle or busy, each core at most
    70 % used so boots and the participants' own work still get time). The smaller one
    is what it holds."""
    last = steps[-1]
    per_lab_mb = last.rss_mb_per_vm * 2 + 60  # two VMs and the Mininet host's shell
    by_memory = memory_mb * 0.9 / per_lab_mb
    by_cpu = cores * 0.7 / max(last.cpu_per_lab, 1e-3)
    return {"cores": cores, "memory_mb": memory_mb, "by_memory": round(by_memory, 1),
            "by_cpu": round(by_cpu, 1), "labs": int(round(min(by_memory, by_cpu), 6))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.bench.capacity",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-labs", type=int, default=6)
    parser.add_argument("--boot-limit", type=float, default=120.0,
                        help="stop once a lab takes longer than this to boot (s)")
    parser.add_argument("--busy", action="store_true",
                        help=f"work in every lab: h1 pings both VMs {BUSY_PPS} times a second")
    parser.add_argument("--grade-at-once", action="store_true",
                        help="then grade exercise 1 on one lab alone and on all at once")
    parser.add_argument("--server-cores", type=int, default=32)
    parser.add_argument("--server-memory-gb", type=int, default=128)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from lab.image.store import resolve_image

    graded: dict[str, object] = {}

    def at_peak(labs: list[LabRun]) -> None:
        graded.update(grade_at_once(labs))

    steps = measure(resolve_image(), args.max_labs, args.boot_limit, busy=args.busy,
                    at_peak=at_peak if args.grade_at_once else None)
    here = extrapolate(steps, os.cpu_count() or 1, meminfo()["MemTotal"])
    server = extrapolate(steps, args.server_cores, args.server_memory_gb * 1024)
    result = {"mode": "busy" if args.busy else "idle", "steps": [asdict(s) for s in steps],
              "this_machine": here, "server": server, "grading": graded or None}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
