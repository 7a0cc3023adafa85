"""Run records and cleanup against real processes, files and (as root) real links."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lab import runstate
from lab.errors import RunStateError
from lab.runstate import RunRecord, clean, list_runs, process_starttime

IS_ROOT = os.geteuid() == 0


@pytest.fixture()
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANALAB_RUN_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_create_gives_prefixed_id_and_private_folder(base: Path) -> None:
    run = RunRecord.create()
    assert run.run_id.startswith("lab") and len(run.run_id) == 7
    int(run.run_id[3:], 16)
    assert run.folder == base / run.run_id
    assert run.folder.stat().st_mode & 0o777 == 0o700
    assert run.owner_alive()


def test_record_appends_json_lines(base: Path) -> None:
    run = RunRecord.create()
    run.record("path", path="/tmp/x")
    run.record("link", ifname=run.ifname("t0"))
    lines = (run.folder / "resources.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["path", "link"]
    assert run.resources()[1]["ifname"] == f"{run.run_id}-t0"


def test_record_rejects_unknown_kind(base: Path) -> None:
    with pytest.raises(RunStateError, match="unknown resource kind"):
        RunRecord.create().record("bridge", name="x")


def test_ifname_enforces_linux_limit(base: Path) -> None:
    run = RunRecord.create()
    assert run.ifname("h1-eth0") == f"{run.run_id}-h1-eth0"
    assert len(run.ifname("h1-eth0")) == 15
    with pytest.raises(RunStateError, match="Linux allows 15") as err:
        run.ifname("h1-eth10")
    assert err.value.hint and "7 chars" in err.value.hint


def test_spawn_records_the_process_before_it_runs(base: Path) -> None:
    run = RunRecord.create()
    proc = run.spawn(["sleep", "60"])
    try:
        entry = run.resources()[-1]
        assert (entry["kind"], entry["pid"], entry["argv0"]) == ("process", proc.pid, "sleep")
        assert entry["starttime"] == process_starttime(proc.pid)  # exec keeps it
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        deadline = time.monotonic() + 10  # the waiting sh becomes sleep, same pid
        while not cmdline.read_bytes().startswith(b"sleep") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cmdline.read_bytes() == b"sleep\x0060\x00"
    finally:
        clean(run.run_id)
    assert proc.wait(timeout=5) == -15


def test_spawn_that_cannot_record_never_runs_the_program(
        base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stands for the owner killed between fork and record: the pipe closes unsent."""
    run = RunRecord.create()
    marker = tmp_path / "ran"

    def fail(*_: object) -> None:
        raise OSError("killed here")

    monkeypatch.setattr(run, "record_process", fail)
    started: list[subprocess.Popen[bytes]] = []

    class Kept(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(runstate.subprocess, "Popen", Kept)
    with pytest.raises(OSError, match="killed here"):
        run.spawn(["touch", str(marker)])
    assert started[0].wait(timeout=10) != 0, "the waiting sh exits by itself on EOF"
    assert not marker.exists()


def test_clean_kills_recorded_process_and_is_idempotent(base: Path) -> None:
    run = RunRecord.create()
    proc = subprocess.Popen(["sleep", "60"])
    run.record_process(proc.pid, "sleep")
    report = clean(run.run_id)
    assert report.ok, report.errors
    assert any("sleep" in r for r in report.removed)
    assert proc.wait(timeout=5) == -15
    assert not run.folder.exists()
    again = clean(run.run_id)
    assert again.ok and not again.removed


def test_clean_escalates_to_sigkill(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runstate, "TERM_GRACE_S", 0.3)
    run = RunRecord.create()
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print(1, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline()  # handler installed
    run.record_process(proc.pid, "python")
    assert clean(run.run_id).ok
    assert proc.wait(timeout=5) == -9


def test_clean_spares_a_reused_pid(base: Path) -> None:
    run = RunRecord.create()
    proc = subprocess.Popen(["sleep", "60"])
    start = process_starttime(proc.pid)
    assert start is not None
    run.record("process", pid=proc.pid, starttime=start + 1, argv0="sleep")  # another process
    try:
        report = clean(run.run_id)
        assert report.ok and report.already_gone
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_clean_removes_recorded_paths_only(base: Path, tmp_path: Path) -> None:
    run = RunRecord.create()
    made, other = tmp_path / "made", tmp_path / "other"
    run.record("path", path=str(made))
    made.mkdir()
    (made / "f").write_text("x")
    other.write_text("keep")
    run.record("path", path=str(tmp_path / "never-created"))
    report = clean(run.run_id)
    assert report.ok, report.errors
    assert not made.exists() and other.exists()
    assert len(report.already_gone) == 1


def test_clean_all_skips_live_runs_and_takes_dead_ones(base: Path) -> None:
    live = RunRecord.create()
    code = "from lab.runstate import RunRecord; print(RunRecord.create().run_id)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=os.environ.copy())
    dead_id = out.stdout.strip()
    runs = {r.run_id: r for r in list_runs()}
    assert runs[live.run_id].alive and not runs[dead_id].alive
    report = clean()
    assert report.skipped_live_runs == [live.run_id]
    assert not (base / dead_id).exists() and live.folder.exists()


def test_clean_with_nothing_there(base: Path) -> None:
    assert clean().ok
    assert clean("lab0000").already_gone == ["run lab0000"]


@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="root: creating a tap needs CAP_NET_ADMIN")
def test_clean_removes_recorded_link(base: Path) -> None:
    from pyroute2 import IPRoute

    run = RunRecord.create()
    name = run.ifname("t0")
    run.record("link", ifname=name)
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="tuntap", mode="tap")
        assert ipr.link_lookup(ifname=name)
        report = clean(run.run_id)
        assert report.ok, report.errors
        assert not ipr.link_lookup(ifname=name)


def test_links_and_netns_without_the_run_prefix_are_never_touched(base: Path) -> None:
    run = RunRecord.create()
    run.record("link", ifname="lo")
    run.record("netns", name="someone-elses")
    report = clean(run.run_id)
    assert len(report.refused) == 2 and "lacks the run prefix" in report.refused[0]
    assert report.ok and not run.folder.exists()
    assert Path("/sys/class/net/lo").exists()


def test_clean_destroys_recorded_libvirt_domain(base: Path) -> None:
    libvirt = pytest.importorskip("libvirt")
    # libvirt's in-process test driver: real libvirt API, no daemon, state shared per process
    uri = "test:///default"
    conn = libvirt.open(uri)
    xml = ("<domain type='test'><name>{}</name><memory>65536</memory>"
           "<os><type>hvm</type></os></domain>")
    run = RunRecord.create()
    name = f"{run.prefix}-vm1"
    run.record("libvirt-domain", uri=uri, name=name)
    conn.createXML(xml.format(name), 0)  # transient, as the libvirt backend makes them
    report = clean(run.run_id)
    assert report.ok, report.errors
    assert any(name in item for item in report.removed)
    assert name not in [d.name() for d in conn.listAllDomains()]
    assert conn.lookupByName("test").isActive()  # the driver's own domain is untouched
    assert clean(run.run_id).ok


@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="root: creating a netns needs CAP_SYS_ADMIN")
def test_clean_removes_recorded_netns(base: Path) -> None:
    from pyroute2 import netns

    run = RunRecord.create()
    name = f"{run.prefix}-h1"
    run.record("netns", name=name)
    netns.create(name)
    assert name in netns.listnetns()
    report = clean(run.run_id)
    assert report.ok, report.errors
    assert name not in netns.listnetns()
