"""lab.multihost.hostshell: the argv each shell runs, its timeout and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.multihost.hostshell import (
    HostCommandError,
    LocalShell,
    NetnsShell,
    SshShell,
    hostshell_from,
)


def test_local_runs_the_argv_as_it_is() -> None:
    assert LocalShell().wrap(["ip", "link"]) == ["ip", "link"]
    assert LocalShell().out([sys.executable, "-c", "print('hi')"]) == "hi\n"


def test_netns_prefixes_ip_netns_exec() -> None:
    shell = NetnsShell("hv2", "lab1234-hv2")
    assert shell.wrap(["ip", "-j", "link"]) == ["ip", "netns", "exec", "lab1234-hv2",
                                                "ip", "-j", "link"]


def test_ssh_is_batch_mode_and_quotes_each_word() -> None:
    argv = SshShell("hv3", "root@hv3.example").wrap(["sh", "-c", "echo a b; true"])
    assert argv[0] == "ssh"
    assert argv[argv.index("BatchMode=yes") - 1] == "-o"
    assert "ConnectTimeout=10" in argv
    assert argv[-3:] == ["--", "root@hv3.example", "sh -c 'echo a b; true'"]


def test_failure_names_the_host_and_the_command() -> None:
    shell = LocalShell("hv9")
    with pytest.raises(HostCommandError) as err:
        shell.run([sys.executable, "-c", "import sys; sys.exit('no such bridge')"])
    assert "on host hv9" in str(err.value) and "no such bridge" in str(err.value)
    assert err.value.returncode == 1 and err.value.host == "hv9"
    assert isinstance(err.value, LabError)
    unchecked = shell.run([sys.executable, "-c", "raise SystemExit(3)"], check=False)
    assert unchecked.returncode == 3


def test_timeout_is_an_error_not_a_hang() -> None:
    with pytest.raises(HostCommandError, match="no answer within 0.2 s"):
        LocalShell("hv1").run([sys.executable, "-c", "import select; select.select([], [], [])"],
                              timeout=0.2)


def test_missing_program_is_an_error() -> None:
    with pytest.raises(HostCommandError, match="could not start"):
        LocalShell().run(["/nonexistent/lanalab-tool"])


def test_ssh_timeout_without_a_real_ssh(monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(argv: list[str], **kw: object) -> None:
        raise subprocess.TimeoutExpired(argv, 5)

    monkeypatch.setattr(subprocess, "run", hang)
    with pytest.raises(HostCommandError, match="on host hv3: `ip link` gave no answer"):
        SshShell("hv3", "hv3.example").run(["ip", "link"], timeout=5)


@pytest.mark.parametrize("shell", [LocalShell("local"), NetnsShell("hv2", "lab1-hv2"),
                                   SshShell("hv3", "root@hv3")])
def test_describe_round_trips(shell: LocalShell | NetnsShell | SshShell) -> None:
    assert hostshell_from(shell.describe()) == shell


def test_unknown_shell_in_a_record_is_refused() -> None:
    with pytest.raises(LabError, match="unknown shell"):
        hostshell_from({"host": "hv2", "shell": "telnet"})


# -- lab.multihost.hostnet: records name the host, cleanup runs there ------------------


class FakeHost:
    """Stands in for `ip netns exec`: links the commands made, by namespace."""

    def __init__(self) -> None:
        self.links: dict[str, set[str]] = {}
        self.calls: list[list[str]] = []

    def run(self, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        assert argv[:3] == ["ip", "netns", "exec"], argv
        ns, cmd = argv[3], argv[4:]
        links = self.links.setdefault(ns, set())
        code = 0
        if cmd[:3] == ["ip", "link", "add"]:
            links.add(cmd[3])
        elif cmd[:4] == ["ip", "link", "del", "dev"]:
            links.discard(cmd[4])
        elif cmd[:3] == ["ip", "-j", "link"]:
            code = 0 if cmd[-1] in links else 1
        return subprocess.CompletedProcess(argv, code, "", "")


def test_bridge_is_recorded_with_its_host_and_cleaned_there(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lab.multihost.hostnet import add_bridge
    from lab.runstate import RunRecord, clean

    fake = FakeHost()
    monkeypatch.setattr(subprocess, "run", fake.run)
    run = RunRecord.create(tmp_path)
    shell = NetnsShell("hv2", "lab1-hv2")
    add_bridge(run, shell, run.ifname("s0"))
    [entry] = run.resources()
    assert entry["host"] == "hv2" and entry["netns"] == "lab1-hv2"
    assert fake.links == {"lab1-hv2": {run.ifname("s0")}}
    report = clean(run.id, base=tmp_path)
    assert report.removed[0] == f"link ifname={run.ifname('s0')} host=hv2" and not report.errors
    assert fake.links == {"lab1-hv2": set()}
    assert clean(run.id, base=tmp_path).already_gone == [f"run {run.id}"]


def test_cleanup_owns_the_runs_vxlan_devices_only(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """lvx<run tag><n> is the run's own; another run's lvx name or a host device is refused."""
    from lab.multihost.vxlan import device_name
    from lab.runstate import RunRecord, clean

    fake = FakeHost()
    monkeypatch.setattr(subprocess, "run", fake.run)
    run = RunRecord.create(tmp_path)
    mine, other = device_name(run.id, 0), device_name("lab0zzzzz", 0)
    fake.links["lab1-hv2"] = {mine, other, "eth0"}
    for name in (mine, other, "eth0"):
        run.record("link", ifname=name, host="hv2", shell="netns", netns="lab1-hv2")
    report = clean(run.id, base=tmp_path)
    assert report.removed[0] == f"link ifname={mine} host=hv2"
    assert len(report.refused) == 2 and fake.links["lab1-hv2"] == {other, "eth0"}
