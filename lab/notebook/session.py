"""A lab for a notebook: `lab = Lab("bench").up()` brings a topology up in a cell, with
live progress; the lab is torn down by `lab.down()`, by leaving a `with Lab(...)` block,
when the kernel shuts down or restarts (atexit, SIGTERM), and when a cell brings up
another lab. An interrupt during bring-up tears down what was made so far.

Run by root, the notebook holds the lab itself. Run by anyone else (a participant on the
bootcamp server), it asks the lab service for it (docs/service.md): the same cells work,
each command going through the service under the participant's identity."""

from __future__ import annotations

import atexit
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TypeVar

import pandas as pd

from lab.errors import LabError
from lab.grading.reset import IPV6_OFF
from lab.labrun import LabRun, open_lab
from lab.notebook.nodes import HostNode, VmNode
from lab.notebook.progress import NotebookProgress
from lab.service.client import ServiceClient, ServiceLab

_ACTIVE: list[Lab] = []
_HOOKS_INSTALLED = False
T = TypeVar("T")


def in_worker_thread(work: Callable[[], T]) -> T:
    """Run `work` in a thread of its own and wait for it. A Jupyter kernel runs cells
    inside a running asyncio loop, and pyroute2 (the fabric's netlink) starts a loop of
    its own, which asyncio refuses in the same thread. An interrupt (KeyboardInterrupt)
    while waiting lets the step finish first, so nothing is left half made, then raises."""
    result: list[T] = []
    error: list[BaseException] = []

    done = threading.Event()

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed to the waiting thread
            error.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    interrupted = False
    # wait on an Event, not Thread.join(): a join interrupted by KeyboardInterrupt can
    # leave the thread's state inconsistent (an AssertionError on the next join, 3.11)
    while not done.is_set():
        try:
            done.wait(0.5)
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: finishing the current step, then tearing down", flush=True)
    if error:
        raise error[0]
    if interrupted:
        raise KeyboardInterrupt
    return result[0]


class Lab:
    """One running topology and its nodes: lab["vm1"], lab["h1"], lab.vms, lab.hosts."""

    def __init__(self, topology: str = "bench", **params: object) -> None:
        self.topology = topology
        self.params = params
        self.run: LabRun | None = None
        self.service: ServiceLab | None = None  # the lab, when the lab service holds it
        self._service_state: dict = {}  # its lab.json, as the service reports it
        self.vms: dict[str, VmNode] = {}
        self.hosts: dict[str, HostNode] = {}

    # bring-up and teardown
    def up(self) -> Lab:
        for other in list(_ACTIVE):
            print(f"a lab from an earlier cell ({other.topology}) is still up: "
                  "tearing it down first", flush=True)
            other.down()
        _install_teardown_hooks()
        progress = NotebookProgress(f"topology '{self.topology}'")
        if os.geteuid() != 0:
            return self._up_through_service(progress)
        try:
            run = in_worker_thread(lambda: open_lab(self.topology, progress, **self.params))
            self.run = run
            _ACTIVE.append(self)
            in_worker_thread(run.up)
        except BaseException as exc:
            progress.close(f"failed: {exc.__class__.__name__}")
            self.down(quiet=True)
            raise
        progress.close("lab up")
        self._quiet_ipv6()
        run.release_agents()  # so `lanalab exec` works from a terminal too
        self.vms = {name: VmNode(name, vm) for name, vm in run.vms.items()}
        assert run.fabric is not None
        self.hosts = {h.name: HostNode(h.name, run.fabric.host_pids[h.name],
                                       [f"{h.name}-eth{i}" for i in range(len(h.links))])
                      for h in run.topo.hosts}
        return self

    def _up_through_service(self, progress: NotebookProgress) -> Lab:
        from lab.notebook.remote import ServiceHostNode, ServiceVM

        def said(event: dict) -> None:
            progress(f"lab service: {event['event']} " + ", ".join(
                f"{k} {v}" for k, v in event.items() if k not in ("v", "event")))

        params = {k: str(v) for k, v in self.params.items() if k != "clock"}
        clock = str(self.params.get("clock", "real"))
        try:
            service = in_worker_thread(lambda: ServiceClient().up(
                self.topology, clock=clock, on_event=said, **params))
        except BaseException as exc:
            progress.close(f"failed: {exc.__class__.__name__}")
            raise
        self.service = service
        _ACTIVE.append(self)
        progress.close(f"lab up (lab service, {service.id})")
        state = service.status()["state"]
        self._service_state = state
        for name, vm in state["vms"].items():
            self.vms[name] = VmNode(name, ServiceVM(service, name, vm))  # type: ignore[arg-type]
            self.vms[name].sh(IPV6_OFF)  # the service quiets the Mininet hosts itself
        self.hosts = {name: ServiceHostNode(service, name, [link["if"] for link in h["links"]])
                      for name, h in state["hosts"].items()}
        return self

    def _quiet_ipv6(self) -> None:
        """No IPv6 chatter (router solicitations, MLD) in the counters: with IPv4 only,
        every frame a counter shows is one the notebook sent."""
        assert self.run is not None and self.run.fabric is not None
        for vm in self.run.vms.values():
            vm.exec(["sh", "-c", IPV6_OFF])
        for host in self.run.topo.hosts:
            self.run.fabric.host(host.name).cmd(IPV6_OFF)

    def down(self, quiet: bool = False) -> None:
        """Stop every VM and remove the lab's bridges, taps and namespaces."""
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        run, self.run = self.run, None
        service, self.service = self.service, None
        self.vms, self.hosts = {}, {}
        if service is not None:
            in_worker_thread(service.down)
        elif run is not None:
            in_worker_thread(run.down)
        else:
            return
        if not quiet:
            print(f"lab '{self.topology}' is down", flush=True)

    def __enter__(self) -> Lab:
        return self.up() if self.run is None else self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # nodes
    @property
    def is_up(self) -> bool:
        return self.run is not None or self.service is not None

    @property
    def run_id(self) -> str:
        if self.service is not None:
            return self.service.id
        if self.run is None or self.run.run is None:
            raise LabError("this lab is not up", "run `lab.up()` first")
        return self.run.run.id

    def __getitem__(self, name: str) -> VmNode | HostNode:
        if name in self.vms:
            return self.vms[name]
        if name in self.hosts:
            return self.hosts[name]
        raise LabError(f"no node {name!r} in this lab" if self.is_up else
                       "this lab is not up",
                       f"nodes: {', '.join([*self.vms, *self.hosts])}" if self.is_up
                       else "run `lab.up()` first")

    def nodes(self) -> pd.DataFrame:
        """Every node with its kind, interfaces and addresses."""
        if self.service is not None:
            return _nodes_of_state(self._service_state)
        if self.run is None:
            return pd.DataFrame(columns=["node", "kind", "interface", "address"])
        rows = []
        for spec in self.run.topo.vms:
            for i, nic in enumerate(spec.nics):
                rows.append({"node": spec.name, "kind": "LANA VM", "interface": f"eth{i}",
                             "address": nic.ip or "", "switch": nic.switch})
        for host in self.run.topo.hosts:
            for i, link in enumerate(host.links):
                rows.append({"node": host.name, "kind": "Mininet host",
                             "interface": f"{host.name}-eth{i}", "address": link.ip or "",
                             "switch": link.switch})
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        state = f"up, run {self.run_id}" if self.is_up else "down"
        table = self.nodes().to_html(index=False) if self.is_up else ""
        return f"<b>lab '{self.topology}'</b> ({state}){table}"

    def __repr__(self) -> str:
        return f"<Lab {self.topology!r} {'up' if self.is_up else 'down'}>"

    # grading
    def grade(self, exercise: str, submission: str | Path, student: str | None = None):
        """Grade a submission folder on this running lab (the grader resets LANA in every
        VM before and after); -> lab.grading.engine.GradeResult, shown as a report."""
        from lab.grading.engine import grade
        from lab.grading.exercise import find_exercise
        from lab.notebook.exercises import GradeReport

        if self.service is not None:
            return GradeReport(_grade_through_service(self.service, exercise,
                                                      Path(submission), student))
        assert self.run is not None
        self.run.release_agents()
        return GradeReport(grade(find_exercise(exercise), Path(submission),
                                 run_id=self.run_id, student=student))


def _grade_through_service(lab: ServiceLab, exercise: str, submission: Path,
                           student: str | None):  # -> GradeResult
    """The service grades (as root: graders need the lab's agents) and sends back the
    score file, from which the result is rebuilt as `lanalab grade` made it."""
    from lab.grading.engine import GradeResult

    answer = lab.client.grade(exercise, submission, run=lab.id, student=student)
    score = json.loads(answer["score"])
    return GradeResult(score["exercise"], score["student"], score["variant"], score["checks"],
                       0 if answer["passed"] else 1, answer.get("report", ""))


def _nodes_of_state(state: dict) -> pd.DataFrame:
    """The nodes table of Lab.nodes() from a lab's lab.json."""
    rows = [{"node": name, "kind": "LANA VM", "interface": nic["guest_if"],
             "address": nic["ip"] or "", "switch": nic["bridge"]}
            for name, vm in state["vms"].items() for nic in vm["nics"]]
    rows += [{"node": name, "kind": "Mininet host", "interface": link["if"],
              "address": link["ip"] or "", "switch": ""}
             for name, host in state["hosts"].items() for link in host["links"]]
    return pd.DataFrame(rows)


def down_all() -> None:
    """Tear down every lab this process brought up (atexit, SIGTERM)."""
    for lab in list(_ACTIVE):
        try:
            lab.down(quiet=True)
        except Exception as exc:  # keep going: the other labs must still go
            print(f"tearing down {lab!r}: {exc}; `lanalab clean` removes what is left")


def _install_teardown_hooks() -> None:
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(down_all)
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        down_all()
        if callable(previous):
            previous(signum, frame)
        else:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
