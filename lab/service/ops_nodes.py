"""Operations inside one lab: exec in a node, read a console, capture a link."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from lab.capture import Capture
from lab.errors import LabError
from lab.labrun import STATE_FILE
from lab.labstate import ActiveLab
from lab.privileges import as_user
from lab.service.core import BadArgs, Caller, Notify, ServiceState, clip, take
from lab.service.ownership import find_visible

HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _active(caller: Caller, run_id: str | None) -> ActiveLab:
    lab = find_visible(caller.uid, caller.instructor, run_id)
    try:
        lab_state = json.loads((lab.folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        raise LabError(f"lab {lab.run_id} is not up (yet)",
                       "wait for `lanalab up` to finish; `lanalab status` shows it") from None
    if not lab.alive:
        raise LabError(f"lab {lab.run_id} is not running (its owner process is gone)",
                       f"`lanalab down --run {lab.run_id}` removes what is left")
    return ActiveLab(lab.folder, lab_state)


def op_exec(state: ServiceState, caller: Caller, args: dict[str, Any],
            _notify: Notify) -> dict[str, Any]:
    take("exec", args, {"run": str, "node": str, "argv": list, "timeout": (int, float),
                        "input": str}, ("node", "argv"))
    argv = args["argv"]
    if not argv or not all(isinstance(a, str) and "\0" not in a for a in argv):
        raise BadArgs("exec: argv must be a non-empty list of strings")
    stdin = _stdin(args.get("input"))
    limits = state.config.limits
    timeout = min(float(args.get("timeout") or 120.0), limits.max_exec_seconds)
    lab = _active(caller, args.get("run"))
    node = args["node"]
    if node in lab.state["vms"]:
        result = lab.agent(node).exec(argv, timeout=timeout, input=stdin)
        return {"exit_code": result.exit_code,
                "stdout": clip(result.stdout, limits.max_output_bytes),
                "stderr": clip(result.stderr, limits.max_output_bytes)}
    if node in lab.state["hosts"]:
        return _host_exec(caller, int(lab.state["hosts"][node]["pid"]), argv, timeout,
                          limits.max_output_bytes, stdin)
    raise LabError(f"no node {node!r} in lab {lab.id}",
                   hint=f"nodes: {', '.join([*lab.state['vms'], *lab.state['hosts']])}")


def _stdin(text: str | None) -> bytes | None:
    """The command's standard input, sent base64-encoded (the request's size bounds it)."""
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise BadArgs("exec: input must be base64") from None


# A Mininet host shares the host's file system, so its commands run with the caller's own
# uid and gid, and of all capabilities only CAP_NET_RAW: raw frames and ping from the
# host's interfaces, which are in the lab's own network namespace and on its own switch.
# Changing namespaces needs CAP_SYS_ADMIN, which the bounding set drops for good.


def _host_exec(caller: Caller, pid: int, argv: list[str], timeout: float, limit: int,
               stdin: bytes | None = None) -> dict[str, Any]:
    become = [] if caller.uid == 0 else as_user(caller.uid, caller.gid, net_raw=True)
    try:
        proc = subprocess.run(["mnexec", "-a", str(pid), *become, *argv], capture_output=True,
                              input=stdin or b"", timeout=timeout, check=False, cwd="/",
                              env={"PATH": HOST_PATH, "HOME": "/", "LC_ALL": "C"})
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"the command ran longer than {timeout:g} s") from exc
    return {"exit_code": proc.returncode,
            "stdout": clip(proc.stdout.decode(errors="replace"), limit),
            "stderr": clip(proc.stderr.decode(errors="replace"), limit)}


def op_console(state: ServiceState, caller: Caller, args: dict[str, Any],
               _notify: Notify) -> dict[str, Any]:
    take("console", args, {"run": str, "vm": str, "offset": int}, ("vm",))
    lab = _active(caller, args.get("run"))
    if args["vm"] not in lab.state["vms"]:
        raise LabError(f"no VM {args['vm']!r} in lab {lab.id}",
                       hint=f"VMs: {', '.join(lab.state['vms'])}")
    offset = max(0, int(args.get("offset") or 0))
    with open(lab.state["vms"][args["vm"]]["console_log"], "rb") as log:
        log.seek(offset)
        data = log.read(state.config.limits.max_output_bytes)
    return {"text": data.decode(errors="replace"), "offset": offset + len(data)}


def _check_filter(text: str) -> None:
    # tcpdump (GNU getopt) would take a leading '-' as an option even after the others
    # (e.g. -z: a command run as root); a filter is an expression, never an option
    if text.startswith("-") or "\0" in text or len(text) > 1024:
        raise BadArgs("capture: the filter must be a tcpdump expression (not starting with "
                      "'-', at most 1024 characters)")


def op_capture(state: ServiceState, caller: Caller, args: dict[str, Any],
               notify: Notify) -> dict[str, Any]:
    take("capture", args, {"run": str, "where": str, "count": int,
                           "seconds": (int, float), "filter": str}, ("where",))
    from lab.commands.capture import capture_argv

    limits = state.config.limits
    bpf = args.get("filter") or ""
    _check_filter(bpf)
    count = min(max(1, int(args.get("count") or 1000)), 1_000_000)
    seconds = min(float(args.get("seconds") or 10.0), limits.max_capture_seconds)
    lab = _active(caller, args.get("run"))
    argv = capture_argv(lab, args["where"])
    folder = Path(tempfile.mkdtemp(prefix="capture-", dir=state.workdir))
    try:
        pcap = folder / "capture.pcap"
        capture = Capture(argv, pcap, count, bpf)
        capture.start()
        notify("listening", where=args["where"])
        try:
            capture.wait(seconds)
        finally:
            capture.stop()
        if capture.proc is not None and capture.proc.returncode not in (0, -signal.SIGINT) \
                or not pcap.exists():
            raise LabError("capture failed: " + "\n".join(capture.stderr_lines).strip())
        if pcap.stat().st_size > limits.max_capture_bytes:
            raise LabError(f"the capture is over {limits.max_capture_bytes} bytes",
                           "capture fewer packets (--count) or use a --filter")
        return {"pcap": base64.b64encode(pcap.read_bytes()).decode(),
                "summary": capture.summary()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
