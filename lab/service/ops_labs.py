"""Operations on whole labs: hello, status, up, down, clean_own."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
from typing import Any

from lab.errors import LabError
from lab.grading.reset import IPV6_OFF
from lab.labrun import STATE_FILE
from lab.runstate import RunRecord, clean
from lab.service.core import BadArgs, Caller, Notify, ServiceState, clip, run_lanalab, take
from lab.service.ownership import OwnedLab, find_visible, visible_labs
from lab.service.quota import QuotaExceeded, check_quota, check_shape
from lab.topology.loader import TOPOLOGY_DIR, builders, load_topology

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UP_TIMEOUT_S = 300.0
DOWN_WAIT_S = 60.0


def usage(caller: Caller) -> dict[str, int]:
    """What the caller's own labs take now (instructors count like anybody for their own)."""
    own = [lab for lab in visible_labs(caller.uid, False) if lab.alive]
    return {"labs": len(own), "vms": sum(lab.vms for lab in own),
            "memory_mb": sum(lab.memory_mb for lab in own)}


def op_hello(state: ServiceState, caller: Caller, args: dict[str, Any],
             _notify: Notify) -> dict[str, Any]:
    take("hello", args, {})
    q = state.config.quota
    return {"uid": caller.uid, "gid": caller.gid, "instructor": caller.instructor,
            "quota": {"max_labs": q.max_labs, "max_vms": q.max_vms,
                      "max_memory_mb": q.max_memory_mb},
            "usage": usage(caller),
            "max_request_bytes": state.config.limits.max_request_bytes}


def _describe(lab: OwnedLab) -> dict[str, Any]:
    try:
        lab_state = json.loads((lab.folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        lab_state = None  # still coming up, or going
    return {"id": lab.run_id, "owner_uid": lab.owner_uid, "alive": lab.alive,
            "service": lab.from_service, "vms": lab.vms, "memory_mb": lab.memory_mb,
            "state": lab_state}


def op_status(state: ServiceState, caller: Caller, args: dict[str, Any],
              _notify: Notify) -> dict[str, Any]:
    take("status", args, {"run": str})
    if args.get("run"):
        return {"labs": [_describe(find_visible(caller.uid, caller.instructor, args["run"]))]}
    return {"labs": [_describe(lab) for lab in visible_labs(caller.uid, caller.instructor)]}


def _topology_ref(state: ServiceState, args: dict[str, Any]) -> str:
    """A name in topologies/ (or a builder), or TOML text written to root's scratch; never
    a path of the caller's: the service does not open files on a user's behalf."""
    name, text = args.get("topology"), args.get("topology_toml")
    if name is not None and text is not None:
        raise BadArgs("up: give either a topology name or topology_toml, not both")
    if text is not None:
        if len(text.encode()) > state.config.limits.max_topology_bytes:
            raise BadArgs(f"up: topology_toml is over {state.config.limits.max_topology_bytes} "
                          "bytes")
        path = state.workdir / f"topology-{secrets.token_hex(4)}.toml"
        path.write_text(text, encoding="utf-8")
        return str(path)
    name = name or "default"
    if not NAME.match(name):
        raise BadArgs(f"up: topology {name!r} is not a topology name",
                      "through the service, name a topology of topologies/ or send a TOML "
                      "file's contents (the client does that for a .toml path); Python "
                      "topology files run only in root's own `lanalab up`")
    toml = TOPOLOGY_DIR / f"{name}.toml"
    if toml.is_file():
        return str(toml)
    if name in builders():
        return name
    raise BadArgs(f"up: no topology {name!r}",
                  f"names: {', '.join(sorted([p.stem for p in TOPOLOGY_DIR.glob('*.toml')]))}"
                  f", {', '.join(sorted(builders()))}")


def op_up(state: ServiceState, caller: Caller, args: dict[str, Any],
          notify: Notify) -> dict[str, Any]:
    take("up", args, {"topology": str, "topology_toml": str, "params": dict, "clock": str})
    params = args.get("params") or {}
    if not all(isinstance(k, str) and isinstance(v, str) and NAME.match(k)
               and len(v) <= 64 for k, v in params.items()):
        raise BadArgs("up: params must map short names to short strings")
    clock = args.get("clock") or "real"
    if clock not in ("real", "instructions"):
        raise BadArgs(f"up: unknown clock {clock!r}", "clocks: real, instructions")
    ref = _topology_ref(state, args)
    try:
        topo = load_topology(ref, params or None)
        check_shape(state.config.quota, topo)
        vms, memory = len(topo.vms), sum(vm.memory_mb for vm in topo.vms)
        with state.lock:
            if caller.uid in state.starting:
                raise QuotaExceeded("one of your labs is still coming up",
                                    "wait until it is up, then ask again")
            now = usage(caller)
            check_quota(state.config.quota, now["labs"], now["vms"], now["memory_mb"],
                        vms, memory)
            state.starting.add(caller.uid)
        try:
            notify("starting", vms=vms, memory_mb=memory)
            argv = ["up", ref, "--clock", clock]
            for key, value in params.items():
                argv += ["--param", f"{key}={value}"]
            meta = {"service": True, "owner_uid": caller.uid, "vms": vms, "memory_mb": memory}
            proc = run_lanalab(state, argv, meta, UP_TIMEOUT_S)
        finally:
            with state.lock:
                state.starting.discard(caller.uid)
    finally:
        if ref.startswith(str(state.workdir)):
            os.unlink(ref)
    found = re.search(r"lab (lab[0-9a-f]{4}) is up", proc.stdout)
    if proc.returncode != 0 or not found:
        raise LabError("the lab did not come up:\n" + clip(proc.stdout + proc.stderr, 4000))
    _quiet_hosts(found.group(1))
    return {"id": found.group(1), "log": clip(proc.stdout, 20000)}


def _quiet_hosts(run_id: str) -> None:
    """No IPv6 chatter from the Mininet hosts (it would show up in LANA's counters). Their
    users hold no CAP_NET_ADMIN to turn it off themselves, so the service does it."""
    lab_state = json.loads((RunRecord.open(run_id).folder / STATE_FILE).read_text())
    for host in lab_state["hosts"].values():
        subprocess.run(["mnexec", "-a", str(host["pid"]), "sh", "-c", IPV6_OFF],
                       capture_output=True, timeout=30, check=False)


def take_down(lab: OwnedLab) -> list[str]:
    """End the lab's owner process (it tears down), then clean what it left."""
    record = RunRecord(lab.run_id, lab.folder)
    meta = record.meta()
    if record.owner_alive():
        os.kill(int(meta["owner_pid"]), signal.SIGTERM)
        deadline = time.monotonic() + DOWN_WAIT_S
        while record.owner_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    if record.owner_alive():
        raise LabError(f"lab {lab.run_id}: its owner process did not end",
                       "an instructor can run `lanalab clean` as root")
    report = clean(lab.run_id)
    if report.errors:
        raise LabError(f"lab {lab.run_id}: cleaning failed: {'; '.join(report.errors)}")
    return report.removed


def op_down(state: ServiceState, caller: Caller, args: dict[str, Any],
            _notify: Notify) -> dict[str, Any]:
    take("down", args, {"run": str})
    lab = find_visible(caller.uid, caller.instructor, args.get("run"))
    take_down(lab)
    return {"id": lab.run_id}


def op_clean_own(state: ServiceState, caller: Caller, args: dict[str, Any],
                 _notify: Notify) -> dict[str, Any]:
    """Tear down every lab of the caller's own (an instructor's too: only their own)."""
    take("clean_own", args, {})
    done = []
    for lab in visible_labs(caller.uid, False):
        take_down(lab)
        done.append(lab.run_id)
    return {"down": done}
