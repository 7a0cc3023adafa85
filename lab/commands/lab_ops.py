"""Commands on labs: up, down, status, exec, console, demo."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab.errors import LabError
from lab.labstate import ActiveLab, find_lab, list_labs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="bring up a topology (default: two VMs, one host)",
                       description="Bring up a topology: bridges and Mininet hosts on this "
                       "machine, VMs booted from the guest image with LANA installed. By "
                       "default the lab keeps running in the background; `lanalab down` "
                       "ends it.")
    p.add_argument("topology", nargs="?", help="a .toml file or a name in topologies/ "
                   "(default: default)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="parameter of a Python builder, e.g. --param n=4 for `star`")
    p.add_argument("--foreground", action="store_true",
                   help="stay attached; Ctrl-C tears the lab down")
    p.add_argument("--cli", action="store_true",
                   help="open the Mininet CLI (VM names work too); leaving it tears down")
    p.add_argument("--backend", choices=["qemu", "libvirt"],
                   help="how VMs run: qemu directly (default) or libvirt domains "
                        "(default from $LANALAB_BACKEND)")
    p.add_argument("--libvirt-uri", help="libvirt connection, e.g. qemu+ssh://host/system "
                   "(default qemu:///system; see docs/backends.md)")
    p.add_argument("--share", type=Path, help="host folder shared at /lab in every guest "
                   "(default: this repository)")
    p.add_argument("--underlay", metavar="ADDRESS",
                   help="for a topology across hypervisors ([[hypervisor]] tables) whose "
                   "switches span this machine too: the address the other hypervisors "
                   "reach this machine at for VXLAN, never one of the default route's "
                   "device (default: $LANALAB_UNDERLAY; docs/design/multihost.md)")
    p.add_argument("--clock", choices=["real", "instructions"], default="real",
                   help="the guests' clock: real (default) or instructions (TCG only, qemu "
                   "backend: 1 ns per guest instruction, so rates measured in a guest do "
                   "not depend on the host's load, as `lanalab bench` and exercise 6's "
                   "grader measure; under KVM the clock stays real)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="tear a lab down")
    p.add_argument("--run", help="run id (default: the only running lab)")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="show running labs, their nodes and addresses")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("exec", help="run a command in a VM or a Mininet host",
                       description="Run a command in a node and print its output; the exit "
                       "code is the command's. Example: lanalab exec vm1 -- fbctl list")
    p.add_argument("node")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND...")
    p.add_argument("--run", help="run id (default: the only running lab)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("console", help="show a VM's serial console log")
    p.add_argument("vm")
    p.add_argument("--run", help="run id (default: the only running lab)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("demo", help="bring up the default lab, show LANA counting, tear down")
    p.add_argument("topology", nargs="?", help="topology (default: default)")
    p.set_defaults(func=cmd_demo)


def _say(msg: str) -> None:
    print(f"[lanalab {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LabError(f"bad --param {pair!r}", hint="write it as KEY=VALUE, e.g. n=4")
        params[key] = value
    return params


def _bring_up(topology: str | None, share: Path | None, params: dict[str, str] | None = None,
              backend: str | None = None, libvirt_uri: str | None = None,
              clock: str = "real", underlay: str | None = None):  # -> LabRun
    from lab.image.store import resolve_image
    from lab.labrun import REPO_ROOT, LabRun, icount_for
    from lab.topology.loader import load_topology

    topo = load_topology(topology, params)
    image = resolve_image()
    lab = LabRun(topo, image, share=(share or REPO_ROOT).resolve(), progress=_say,
                 backend=backend, libvirt_uri=libvirt_uri, icount_shift=icount_for(clock),
                 local_underlay=underlay)
    lab.up()
    if clock != "real":
        got = {lab.clock_of(vm) for vm in lab.vms.values()}
        _say(f"guest clock: {', '.join(sorted(got))}"
             + (" (under KVM the clock stays real)" if got == {"real"} else ""))
    return lab


def cmd_up(args: argparse.Namespace) -> int:
    lab = _bring_up(args.topology, args.share, _params(args.param), args.backend,
                    args.libvirt_uri, args.clock, args.underlay)
    _print_lab(lab.state())
    if args.cli:
        from lab.labcli import run_cli

        try:
            run_cli(lab)
        finally:
            _say("tearing down")
            lab.down()
        return 0
    if args.foreground:
        lab.release_agents()
        print("lab is up; Ctrl-C tears it down", flush=True)
        return _serve_until_signal(lab)
    lab.release_agents()  # the idle-release timers of the agents do not survive the fork
    sys.stdout.flush()  # else a pipe's buffer is printed twice, or lost by os._exit
    if os.fork() != 0:  # the parent returns to the shell; the child owns the lab
        print(f"lab {lab.run.id} is up and runs in the background; `lanalab down` ends it",
              flush=True)
        os._exit(0)
    os.setsid()
    log = open(lab.run.dir / "owner.log", "a")  # noqa: SIM115 - lives as long as the owner
    os.dup2(log.fileno(), sys.stdout.fileno())
    os.dup2(log.fileno(), sys.stderr.fileno())
    lab.run.adopt()  # the owner's pid changed with the fork
    lab.write_state()
    os._exit(_serve_until_signal(lab))


def _serve_until_signal(lab) -> int:
    """Own the lab until SIGTERM/SIGINT, watching its VMs; a crashed VM ends the lab."""
    from lab.watchdog import check_vms, keep_evidence

    stop = False

    def request_stop(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    status = 0
    while not stop:
        time.sleep(1.0)
        events = check_vms(lab)
        if not events:
            continue
        folder = keep_evidence(lab, events)
        for event in events:
            kind = "FAILED" if event.fatal else "warning"
            _say(f"{event.vm} {kind}: {event.headline} (evidence in {folder})")
            print(event.trace, flush=True)
        if any(event.fatal for event in events):
            _say("a VM failed: tearing the rest of the lab down")
            status = 1
            break
    _say("tearing down")
    lab.down()
    _say("down")
    return status


def cmd_down(args: argparse.Namespace) -> int:
    lab = find_lab(args.run)
    if lab.owner_alive():
        os.kill(lab.owner_pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while lab.owner_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
    if lab.owner_alive():
        raise LabError(f"lab {lab.id}: the owner process {lab.owner_pid} did not end",
                       hint="run `lanalab clean` to remove what the lab recorded creating")
    from lab.runstate import clean

    clean(lab.id)  # whatever the owner could not remove, or everything if it had died
    print(f"lab {lab.id} is down")
    return 0


def vm_liveness(vm: dict) -> str:
    """A VM of lab.json: its local qemu's state, or, on another hypervisor, its domain's
    (an unreachable host shows as such, quickly: the status must not hang on it)."""
    uri = vm.get("uri")
    if vm.get("on", "local") == "local" or not uri:
        return _liveness(vm.get("pid"))
    from lab.multihost.health import domain_state

    return domain_state(uri, vm.get("domain", ""))


def _liveness(pid: int | None) -> str:
    from lab.runstate import process_state

    return "running" if pid and process_state(pid) not in (None, "Z", "X") else "DEAD"


def _print_lab(state: dict) -> None:
    print(f"lab {state['id']}  topology {state['topology']['name']}  "
          f"owner pid {state['owner_pid']}")
    spread = state.get("spread")
    for name, vm in state["vms"].items():
        nics = ", ".join(f"{n['guest_if']} {n['ip'] or '-'} (tap {n['tap']} on {n['bridge']})"
                         for n in vm["nics"])
        clock = ", instruction clock" if vm.get("clock") == "instructions" else ""
        where = f" on {vm.get('on', 'local')}" if spread else ""
        print(f"  vm   {name:<8} {vm_liveness(vm):<8} {nics}{clock}{where}")
        print(f"       {'':<8} {'':<8} console {vm.get('console_log', '?')}")
    for name, host in state["hosts"].items():
        links = ", ".join(f"{lk['if']} {lk['ip'] or '-'}" for lk in host["links"])
        print(f"  host {name:<8} {_liveness(host['pid']):<8} {links}")
    for switch, bridge in state["bridges"].items():
        print(f"  switch {switch:<6} bridge {bridge}")
    for hv, host in (spread or {}).get("hypervisors", {}).items():
        print(f"  hypervisor {hv:<6} {host['uri']}  underlay {host.get('underlay') or '-'}")
    for tunnel in (spread or {}).get("tunnels", []):
        print(f"  vxlan  {tunnel['switch']:<6} VNI {tunnel['vni']} device {tunnel['device']} "
              f"across {', '.join(tunnel['hosts'])}")
    if spread and spread.get("tunnels"):
        from lab.multihost.health import underlay_problems

        for problem in underlay_problems(spread):
            print(f"  UNDERLAY: {problem}")


def cmd_status(_args: argparse.Namespace) -> int:
    from lab.watchdog import last_failures

    labs = list_labs()
    if not labs:
        print("no lab is running (start one with `lanalab up`)")
    for run_id, event in last_failures():
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.at))
        print(f"  earlier: lab {run_id}, {event.vm} failed at {stamp}: {event.headline}")
    if not labs:
        return 0
    for lab in labs:
        _print_lab(lab.state)
        if not lab.owner_alive():
            print("  the owner process is gone: run `lanalab clean` to remove leftovers")
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise LabError("no command given", hint="lanalab exec vm1 -- fbctl list")
    lab = find_lab(args.run)
    if args.node in lab.state["vms"]:
        result = lab.agent(args.node).exec(argv, timeout=args.timeout)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.exit_code
    if args.node in lab.state["hosts"]:
        pid = lab.state["hosts"][args.node]["pid"]
        return subprocess.run(["mnexec", "-a", str(pid), *argv], timeout=args.timeout).returncode
    raise LabError(f"no node {args.node!r} in lab {lab.id}",
                   hint=f"nodes: {', '.join([*lab.state['vms'], *lab.state['hosts']])}")


def cmd_console(args: argparse.Namespace) -> int:
    lab: ActiveLab = find_lab(args.run)
    if args.vm not in lab.state["vms"]:
        raise LabError(f"no VM {args.vm!r} in lab {lab.id}",
                       hint=f"VMs: {', '.join(lab.state['vms'])}")
    path = Path(lab.state["vms"][args.vm]["console_log"])
    with path.open(errors="replace") as log:
        sys.stdout.write(log.read())
        while args.follow:
            line = log.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.3)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lab.demo import run_counter_demo

    lab = _bring_up(args.topology, None)
    try:
        _print_lab(lab.state())
        run_counter_demo(lab, _say)
    finally:
        _say("tearing the lab down")
        lab.down()
        _say("done: nothing of the lab is left on this machine")
    return 0
