"""The pytest side of grading: fixtures graders use and the collection of results.

Loaded with `-p lab.grading.plugin` by the engine. Settings come from the environment
(the engine sets them):
  LANALAB_EXERCISE      the exercise folder
  LANALAB_SUBMISSION    the folder with the student's files
  LANALAB_STUDENT       student id (variants); empty: the default variant
  LANALAB_GRADE_RUN     run id of a running lab to grade on; unset: boot the exercise's
                        topology for this session and tear it down afterwards
  LANALAB_GRADE_RESULTS where to write the per-check results (JSON)
  LANALAB_GRADE_ONLY    comma-separated check names: run only these (the others are
                        deselected; an unknown name is an error)

Fixtures: exercise, submission, variant, lab (the booted or attached lab), vm1, vm1_mac.
Markers: points(n) (default 1), host (needs no VM; runs before any VM boots).
Checks in the exercise's hidden/ folder are hidden checks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.errors import GradingError
from lab.grading import exercise as exercises
from lab.grading.nodes import GuestCrashed, GuestNode, LabNodes, as_crash
from lab.grading.reset import quiet_ipv6, reset_lana


class _State:
    nodes: LabNodes | None = None
    own_lab: Any = None  # lab.labrun.LabRun when this session booted it
    host_failures: list[str] = []
    results: list[dict[str, Any]] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): what the check is worth")
    config.addinivalue_line("markers", "host: runs on the host only, before any VM boots")
    _State.results = []
    _State.host_failures = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    only = [name for name in os.environ.get("LANALAB_GRADE_ONLY", "").split(",") if name]
    if not only:
        return
    known = {item.name for item in items}
    unknown = sorted(set(only) - known)
    if unknown:
        raise pytest.UsageError(f"no check named {', '.join(unknown)} in this grader; "
                                f"its checks: {', '.join(sorted(known))}")
    config.hook.pytest_deselected(items=[item for item in items if item.name not in only])
    items[:] = [item for item in items if item.name in only]


@pytest.fixture(scope="session")
def exercise() -> exercises.Exercise:
    return exercises.load(Path(os.environ["LANALAB_EXERCISE"]))


@pytest.fixture(scope="session")
def submission() -> Path:
    return Path(os.environ["LANALAB_SUBMISSION"])


@pytest.fixture(scope="session")
def variant(exercise: exercises.Exercise) -> dict[str, Any]:
    return exercise.variant(os.environ.get("LANALAB_STUDENT") or None)


@pytest.fixture(scope="session")
def lab(exercise: exercises.Exercise) -> Iterator[LabNodes]:
    """The lab, with no LANA state in any guest and no IPv6 chatter on the wire."""
    if _State.host_failures:
        pytest.fail("not run: fix the host-side checks first ("
                    + "; ".join(_State.host_failures) + ")", pytrace=False)
    run_id = os.environ.get("LANALAB_GRADE_RUN")
    if not run_id:
        run_id = _boot(exercise)
    nodes = LabNodes.attach(run_id)
    _State.nodes = nodes
    # Neighbour entries left by earlier traffic (a ping from a notebook) would be probed
    # again by unicast ARP, up to 3 frames into the very stack whose counts are graded.
    for host in nodes.hosts.values():
        host.run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        host.run(["ip", "neigh", "flush", "all"])
    for guest in nodes.vms.values():
        quiet_ipv6(guest)
        guest.run("ip neigh flush all")
        reset_lana(guest)
    try:
        yield nodes
    finally:
        _cleanup(nodes)


@pytest.fixture(scope="session")
def vm1(lab: LabNodes) -> GuestNode:
    """The VM every exercise works in (an exercise's conftest may override it)."""
    return lab.vm("vm1")


@pytest.fixture(scope="session")
def vm1_mac(vm1: GuestNode) -> str:
    return vm1.read("/sys/class/net/eth0/address").strip()


def _boot(exercise: exercises.Exercise) -> str:
    from lab.image.store import resolve_image
    from lab.labrun import LabRun, icount_for
    from lab.topology.loader import load_topology

    lab = LabRun(load_topology(exercise.topology), resolve_image(), share=None,
                 progress=lambda msg: print(f"[grade] {msg}", flush=True),
                 icount_shift=icount_for(exercise.clock))
    lab.up()
    if exercise.clock != "real":
        clocks = {name: lab.clock_of(vm) for name, vm in lab.vms.items()}
        print(f"[grade] guest clock ({exercise.clock} asked for): {clocks}", flush=True)
    _State.own_lab = lab
    assert lab.run is not None
    return lab.run.id


def _cleanup(nodes: LabNodes) -> None:
    """Leave the guests as found (no LANA state), and take down a lab we booted."""
    try:
        for guest in nodes.vms.values():
            if guest.crashed is None:
                try:
                    reset_lana(guest)
                except (GradingError, GuestCrashed) as exc:
                    print(f"[grade] cleanup of {guest.name}: {exc}", flush=True)
    finally:
        if _State.own_lab is not None:
            _State.own_lab.down()
            _State.own_lab = None
        _State.nodes = None


def _feedback(excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[str, str]:
    """(kind, text): 'fail' for a check that failed, 'crash' for a guest kernel crash,
    'error' when the grader itself could not check."""
    exc = excinfo.value
    crash = as_crash(exc)
    if crash is not None:
        return "crash", f"the guest kernel crashed: {crash.headline}\n{crash.trace}"
    if isinstance(exc, pytest.fail.Exception):
        return "fail", str(exc.msg)
    if isinstance(exc, AssertionError):
        return "fail", str(exc).split("\nassert ")[0]
    if isinstance(exc, GradingError):
        return "error", f"the grader could not check this: {exc}"
    return "error", f"the grader could not check this: {type(exc).__name__}: {exc}"


def _points(item: pytest.Item) -> int:
    marker = item.get_closest_marker("points")
    return int(marker.args[0]) if marker else 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if call.when == "call" or (call.when == "setup" and report.failed):
        kind, text = "pass", ""
        if call.excinfo is not None and not report.skipped:
            kind, text = _feedback(call.excinfo)
        crash = _new_crash()
        if crash is not None and kind != "crash":
            kind, text = "crash", f"the guest kernel crashed: {crash.headline}\n{crash.trace}"
            report.outcome = "failed"
            report.longrepr = text
        elif kind != "pass":
            report.longrepr = text
        hidden = "hidden" in Path(str(item.fspath)).parts
        doc = (getattr(item, "function", None).__doc__ or "").strip().splitlines()
        max_points = _points(item)
        _State.results.append({
            "check": item.name, "title": doc[0] if doc else item.name.replace("_", " "),
            "hidden": hidden, "max_points": max_points,
            "points": max_points if kind == "pass" else 0,
            "status": kind, "feedback": text})
        if kind != "pass" and item.get_closest_marker("host"):
            _State.host_failures.append(item.name)


def _new_crash() -> GuestCrashed | None:
    if _State.nodes is None:
        return None
    for guest in _State.nodes.vms.values():
        if guest.crashed is not None:
            continue
        try:
            guest.raise_if_crashed()
        except GuestCrashed as crash:
            return crash
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("LANALAB_GRADE_RESULTS")
    if path:
        Path(path).write_text(json.dumps(_State.results, indent=2))
