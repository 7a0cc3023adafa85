"""The lab service with two unprivileged participants (alice, bob: bare uids) and one
instructor, on real VMs: each acts on their own labs only, every cross-user attempt is
refused with a clear error and (when it reaches the service) logged, the quota refuses
the VM over the limit, and a service killed with SIGKILL adopts or cleans its labs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from participants import ALICE, BOB, TEACHER, Service

from lab.polling import poll
from lab.reliability.hygiene import leftovers
from lab.runstate import RunRecord, run_base_dir

pytestmark = [pytest.mark.vm, pytest.mark.slow]

BOB_TOPOLOGY = """\
name = "bob-small"
[[switch]]
name = "s1"
[[vm]]
name = "vm1"
nics = [{ switch = "s1", ip = "10.9.0.1/24" }]
[[host]]
name = "h1"
links = [{ switch = "s1", ip = "10.9.0.100/24" }]
"""
EXERCISE_1 = Path(__file__).resolve().parents[2] / "exercises" / "01-first-stack"
EXERCISE_4 = EXERCISE_1.parent / "04-write-a-block"
SUBMISSION = EXERCISE_1 / "starter"


@pytest.fixture(scope="module")
def labs(service: Service) -> dict[str, str]:
    """alice's default lab (2 VMs) and bob's own 1-VM topology, brought up at once."""
    for uid, name in ((ALICE, "alice"), (BOB, "bob")):
        home = service.folder / name
        home.mkdir()
        os.chown(home, uid, uid)
    for name in ("alice", "bob"):
        (service.folder / name / "small.toml").write_text(BOB_TOPOLOGY)
    shutil.copytree(SUBMISSION, service.folder / "bob" / "sub")
    start = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(service.lanalab, ALICE, "up")
        b = pool.submit(service.lanalab, BOB, "up", str(service.folder / "bob" / "small.toml"))
        ups = {"alice": a.result(), "bob": b.result()}
    print(f"\n[service] two labs up through the service in {time.monotonic() - start:.1f} s")
    ids = {}
    for who, proc in ups.items():
        assert proc.returncode == 0, proc.stderr
        ids[who] = proc.stdout.split()[1]
    return ids


def _state(run_id: str) -> dict[str, Any]:
    return json.loads((run_base_dir() / run_id / "lab.json").read_text())


def test_each_sees_and_uses_only_their_own_lab(service: Service, labs: dict[str, str]) -> None:
    mine = service.python(ALICE, "print(json.dumps([l['id'] for l in client.labs()]))")
    assert mine == [labs["alice"]]
    assert service.python(BOB, "print(json.dumps([l['id'] for l in client.labs()]))") == \
        [labs["bob"]]
    everyone = service.python(TEACHER, "print(json.dumps(sorted(l['id'] for l in "
                              "client.labs())))")
    assert everyone == sorted(labs.values())
    status = service.lanalab(ALICE, "status")
    assert labs["alice"] in status.stdout and labs["bob"] not in status.stdout
    assert f"owner uid {ALICE}" in status.stdout
    guest = service.lanalab(ALICE, "exec", "vm1", "--", "sh", "-c", "id -u; touch /lab/x")
    assert guest.stdout.split()[0] == "0"  # root in the guest...
    assert "Read-only file system" in guest.stderr  # ...but not over the host's files
    host = service.lanalab(ALICE, "exec", "h1", "--", "sh", "-c", "id -u; cat /etc/shadow")
    assert host.stdout.split()[0] == str(ALICE)  # a Mininet host runs as the caller
    assert "Permission denied" in host.stderr
    assert (run_base_dir() / labs["alice"]).stat().st_mode & 0o077 == 0
    # the notebooks' handle: LabRun.sh's words, through the service
    kernel = service.python(ALICE, "from lab.service.client import ServiceLab\n"
                            f"lab = ServiceLab(client, {labs['alice']!r})\n"
                            "print(json.dumps([lab.sh('vm2', 'uname -r'), lab.status()['id']]))")
    assert kernel[0].startswith("6.1.") and kernel[1] == labs["alice"]


RAW = """\
from lab.service import protocol
import base64, io, struct, tarfile
def tar(name, link=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo(name)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
            t.addfile(info)
        else:
            info.size = 2
            t.addfile(info, io.BytesIO(b"hi"))
    return base64.b64encode(buf.getvalue()).decode()
try:
    client.send_raw(FRAME)
    print(json.dumps("accepted"))
except ServiceError as e:
    print(json.dumps([e.code, e.message]))
"""


def _raw(frame: str) -> str:
    """Python (run as bob) that sends the bytes `frame` evaluates to; prints the refusal."""
    return RAW.replace("FRAME", frame)


def _tar(name: str, kind: str = "file") -> str:
    return f"tar({name!r}, {kind == 'link'})"


def _request(op: str, args: str) -> str:
    return f"protocol.encode({{'v': 1, 'op': {op!r}, 'args': {args}}})"


def test_cross_user_attempts_are_refused_and_logged(service: Service,
                                                    labs: dict[str, str]) -> None:
    a, b = labs["alice"], labs["bob"]
    pcap = str(service.folder / "bob" / "stolen.pcap")
    sub = str(service.folder / "bob" / "sub")
    cli: list[tuple[str, list[str], str, str]] = [  # (what, argv, op, code)
        ("exec in alice's VM", ["exec", "--run", a, "vm1", "--", "id"], "exec", "not_yours"),
        ("exec in alice's Mininet host", ["exec", "--run", a, "h1", "--", "id"], "exec",
         "not_yours"),
        ("read alice's console", ["console", "vm1", "--run", a], "console", "not_yours"),
        ("tear alice's lab down", ["down", "--run", a], "down", "not_yours"),
        ("grade on alice's lab", ["grade", "1", "--run", a, "--submission", sub,
                                  "--out", str(service.folder / "bob" / "g")], "grade",
         "not_yours"),
        ("capture from alice's lab", ["capture", "vm1", "--run", a, "-w", pcap, "--seconds",
                                      "1"], "capture", "not_yours"),
        ("hidden checks on his own lab", ["grade", "1", "--run", b, "--hidden",
                                          "--submission", sub], "grade", "forbidden"),
        ("build his block on alice's lab", ["grade", "4", "--run", a, "--submission", sub],
         "grade", "not_yours"),
        ("a capture filter that is a tcpdump option", ["capture", "vm1", "--run", b, "-w",
                                                      pcap, "--filter=-z/bin/sh"],
         "capture", "bad_args"),
        ("a lab over his VM quota", ["up"], "up", "quota"),
    ]
    raw: list[tuple[str, str, str | None, str]] = [  # (what, frame, op, code)
        ("status of alice's lab", _request("status", f"{{'run': {a!r}}}"), "status",
         "not_yours"),
        ("exec in alice's VM by the API", _request("exec", f"{{'run': {a!r}, 'node': 'vm2', "
                                                    "'argv': ['cat', '/etc/hostname']}"),
         "exec", "not_yours"),
        ("a lab that does not exist", _request("down", "{'run': 'lab0000'}"), "down",
         "not_yours"),
        ("a topology path on the host", _request("up", "{'topology': '/etc/shadow'}"), "up",
         "bad_args"),
        ("a VM name that climbs out of the run folder",
         _request("up", "{'topology_toml': '[[vm]]\\nname = \"../../etc/x\"'}"), "up",
         "bad_args"),
        ("a host folder shared into his guest", _request("up", "{'share': '/'}"), "up",
         "bad_args"),
        ("path traversal in a submission", _request("grade", f"{{'exercise': '1', 'run': "
                                                     f"{b!r}, 'submission': "
                                                     f"{_tar('../../etc/cron.d/x')}}}"),
         "grade", "submission"),
        ("an absolute path in a submission", _request("grade", f"{{'exercise': '1', 'run': "
                                                       f"{b!r}, 'submission': "
                                                       f"{_tar('/root/.profile')}}}"),
         "grade", "submission"),
        ("a symlink in a submission", _request("grade", f"{{'exercise': '1', 'run': {b!r}, "
                                                f"'submission': {_tar('x', 'link')}}}"),
         "grade", "submission"),
        ("an oversized request", "struct.pack('>I', 1 << 30) + b'{'", None, "too_large"),
        ("malformed JSON", "struct.pack('>I', 5) + b'{oops'", None, "malformed"),
        ("an unknown operation", _request("shell", "{'cmd': 'id'}"), "shell", "unknown_op"),
        ("an old protocol version", "protocol.encode({'v': 0, 'op': 'status'})", "status",
         "version"),
    ]
    seen = len(service.refusals())
    results = []

    def logged(what: str, op: str | None, code: str) -> None:
        nonlocal seen
        new = service.refusals()[seen:]
        seen += len(new)
        assert any(e["uid"] == BOB and e["code"] == code and e["op"] == op and e["reason"]
                   for e in new), f"{what}: not in the refusal log: {new}"

    for what, argv, op, code in cli:
        proc = service.lanalab(BOB, *argv)
        assert proc.returncode != 0 and proc.stderr.startswith("lanalab: "), (what, proc)
        assert "what to do:" in proc.stderr or code == "bad_args", (what, proc.stderr)
        logged(what, op, code)
        results.append((what, proc.stderr.splitlines()[0]))
    for what, frame, op, code in raw:
        got = service.python(BOB, _raw(frame))
        assert got != "accepted" and got[0] == code, (what, got)
        logged(what, op, code)
        results.append((what, got[1]))
    assert not Path(pcap).exists() and _state(a)["id"] == a  # alice's lab is untouched
    for what, message in results:
        print(f"[service] refused: {what}: {message}")
    assert len(results) >= 23


def test_bob_cannot_reach_alice_through_the_filesystem(service: Service,
                                                       labs: dict[str, str]) -> None:
    """Not service requests, so not in its log: the kernel refuses them (EACCES)."""
    vm = _state(labs["alice"])["vms"]["vm1"]
    probes = {
        "alice's guest-agent socket": f"s = __import__('socket').socket(1); "
                                      f"s.connect({vm['qga_socket']!r})",
        "alice's console log": f"open({vm['console_log']!r}).read()",
        "alice's run folder": f"__import__('os').listdir({str(run_base_dir() / labs['alice'])!r})",
        "the run folders": f"__import__('os').listdir({str(run_base_dir())!r})",
        "the refusal log": f"open({str(service.log)!r}).read()",
        "the service's scratch": f"__import__('os').listdir("
                                 f"{str(service.socket.parent / 'service.work')!r})",
    }
    for what, code in probes.items():
        got = service.python(BOB, f"try:\n    {code}\n    print(json.dumps('open'))\n"
                             "except PermissionError:\n    print(json.dumps('refused'))\n")
        assert got == "refused", what


def test_a_flood_does_not_starve_others(service: Service, labs: dict[str, str]) -> None:
    flood = service.python(BOB, "codes = []\nfor _ in range(80):\n    try:\n"
                           "        client.request('hello'); codes.append('ok')\n"
                           "    except ServiceError as e:\n        codes.append(e.code)\n"
                           "print(json.dumps(codes))\n")
    assert "rate_limited" in flood and flood[0] == "ok"
    assert service.python(ALICE, "print(json.dumps(client.hello()['uid']))") == ALICE
    assert any(e["uid"] == BOB and e["code"] == "rate_limited" for e in service.refusals())


def test_the_instructor_acts_on_every_lab(service: Service, labs: dict[str, str]) -> None:
    out = service.lanalab(TEACHER, "exec", "--run", labs["alice"], "vm2", "--", "hostname")
    assert out.returncode == 0, out.stderr
    console = service.lanalab(TEACHER, "console", "vm1", "--run", labs["bob"])
    assert "guest ready" in console.stdout
    assert service.python(TEACHER, "print(json.dumps(client.hello()['instructor']))") is True


def test_the_quota_refuses_the_vm_over_the_limit(service: Service,
                                                 labs: dict[str, str]) -> None:
    """max_vms = 2: alice has 2 and asks for a third (a 1-VM lab), bob has 1 and asks for
    two more; both are refused, naming the limit, before anything is made."""
    before = {p.name for p in run_base_dir().iterdir()}
    for uid, have, new, topology in ((ALICE, 2, 1, str(service.folder / "alice" / "small.toml")),
                                     (BOB, 1, 2, "default")):
        proc = service.lanalab(uid, "up", topology)
        assert proc.returncode == 1
        assert (f"this lab's {new} VM(s) on top of your {have} would exceed your limit of 2 "
                "VMs") in proc.stderr
        assert any(e["uid"] == uid and e["code"] == "quota" for e in service.refusals())
        assert "lanalab down --run ID" in proc.stderr
    assert {p.name for p in run_base_dir().iterdir()} == before
    hello = service.python(ALICE, "print(json.dumps(client.hello()))")
    assert hello["usage"] == {"labs": 1, "vms": 2, "memory_mb": 1024}


def test_alice_captures_her_own_link(service: Service, labs: dict[str, str]) -> None:
    """The pcap comes back in the reply and is written by alice herself."""
    out = service.folder / "alice" / "ping.pcap"
    code = (f"import threading\nout = {str(out)!r}\nrun = {labs['alice']!r}\n"
            "def ping(event):\n    if event['event'] == 'listening':\n"
            "        threading.Thread(target=client.exec, args=(run, 'h1', ['ping', '-c', "
            "'2', '-i', '0.2', '10.0.0.1'])).start()\n"
            "from pathlib import Path\n"
            "r = client.capture(run, 'vm1', Path(out), count=2, seconds=30, "
            "bpf_filter='icmp', on_event=ping)\nprint(json.dumps(r['summary']))\n")
    summary = service.python(ALICE, code)
    assert out.stat().st_uid == ALICE and out.stat().st_size > 24 + 2 * 16, summary


def test_alice_grades_her_work_on_her_own_lab(service: Service, labs: dict[str, str]) -> None:
    """The submission travels as a tar; the report comes back and alice writes it."""
    work, out = service.folder / "alice" / "ex1", service.folder / "alice" / "grade-1"
    shutil.copytree(EXERCISE_1 / "solution", work)
    start = time.monotonic()
    proc = service.lanalab(ALICE, "grade", "1", "--run", labs["alice"], "--submission",
                           str(work), "--out", str(out))
    print(f"\n[service] exercise 1 graded through the service in "
          f"{time.monotonic() - start:.1f} s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    score = json.loads((out / "score.json").read_text())
    assert score["passed"] and score["score"] == score["max_score"] > 0
    assert {p.stat().st_uid for p in out.iterdir()} == {ALICE}


def test_alice_builds_and_grades_her_own_block(service: Service, labs: dict[str, str]) -> None:
    """Exercise 4 compiles her C on the host: the service builds it as alice (never as
    root), so her block loads and passes, and a source that pulls in a root-only file
    gets "Permission denied" in her report, not the file."""
    home = service.folder / "alice"
    shutil.copytree(EXERCISE_4 / "solution", home / "ex4")
    (home / "ex4-evil").mkdir()
    (home / "ex4-evil" / "fb_sampler.c").write_text('#include "/etc/shadow"\n')
    start = time.monotonic()
    good = service.lanalab(ALICE, "grade", "4", "--run", labs["alice"], "--submission",
                           str(home / "ex4"), "--out", str(home / "grade-4"))
    print(f"\n[service] exercise 4 (a block built as alice) graded in "
          f"{time.monotonic() - start:.1f} s")
    assert good.returncode == 0, good.stdout + good.stderr
    evil = service.lanalab(ALICE, "grade", "4", "--run", labs["alice"], "--submission",
                           str(home / "ex4-evil"), "--out", str(home / "grade-4-evil"))
    report = (home / "grade-4-evil" / "report.txt").read_text()
    assert evil.returncode != 0 and "Permission denied" in report, report
    shadow = [line for line in Path("/etc/shadow").read_text().splitlines() if len(line) > 8]
    assert not any(line in report for line in shadow), report


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    assert poll(condition, timeout, interval=0.05), f"waited {timeout:g} s for {what}"


def test_sigkill_then_restart_adopts_the_live_lab_and_cleans_the_dead(
        service: Service, labs: dict[str, str]) -> None:
    a, b = labs["alice"], labs["bob"]
    assert service.proc is not None
    service.proc.send_signal(signal.SIGKILL)
    service.proc.wait(30)
    # bob's lab dies too (its owner process, killed): its VM and taps are orphans now
    bob_run = RunRecord.open(b)
    bob_records = bob_run.resources()
    os.kill(int(bob_run.meta()["owner_pid"]), signal.SIGKILL)
    _wait(lambda: not bob_run.owner_alive(), "bob's lab owner to die")
    started = time.monotonic()
    output = service.start()
    print(f"\n[service] restart after SIGKILL: {time.monotonic() - started:.2f} s")
    assert f"adopted lab {a} of uid {ALICE}" in output
    assert f"cleaned lab {b}" in output
    assert leftovers(b, bob_records) == []
    # alice's lab still works for alice, and is still not bob's
    assert service.lanalab(ALICE, "exec", "--run", a, "vm1", "--", "true").returncode == 0
    assert "not one of your labs" in service.lanalab(BOB, "down", "--run", a).stderr
    alice_records = RunRecord.open(a).resources()
    down = service.lanalab(ALICE, "down")
    assert down.returncode == 0, down.stderr
    assert leftovers(a, alice_records) == []
    assert service.python(TEACHER, "print(json.dumps(client.labs()))") == []
