"""Privilege: the LANA control interface refuses users without CAP_NET_ADMIN in the guest
(an unprivileged user, and root with every capability dropped), the per-instance proc
files refuse their writes, and the guest-agent socket on the host is root's alone."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from debug_guest import debug_manifest

from lab.reliability.guestvm import reliability_guest, report

pytestmark = [pytest.mark.vm, pytest.mark.slow]

PROGRAM = ("cd /lab && PYTHONPATH=/lab PYTHONDONTWRITEBYTECODE=1 "
           "python3 -m lab.reliability.privilege_guest")
USERS = {
    "nobody": "setpriv --reuid=65534 --regid=65534 --clear-groups",
    "root-without-capabilities": "setpriv --inh-caps=-all --bounding-set=-all",
}


def test_control_interface_refuses_the_unprivileged_and_agent_socket_is_private(
        image) -> None:
    figures: dict[str, object] = {}
    # the debug kernel's KASAN shadow, lockdep and kmemleak pools take ~530 MB of 768
    memory_mb = 768 if debug_manifest() is not None else 512
    with reliability_guest(image, cpus=1, memory_mb=memory_mb) as vm:
        setup = ("modprobe -a lana fb_eth fb_fwd fb_counter fb_bpf "
                 "&& ip link add name va type veth peer name vb && vlink ethernet hook vb "
                 "&& fbctl add f1 bpf && fbctl add c1 counter && fbctl bind f1 vb")
        assert vm.exec(["sh", "-c", setup], timeout=60).exit_code == 0
        before = vm.exec(["cat", "/proc/net/lana/fblocks"]).stdout
        for user, prefix in USERS.items():
            result = vm.exec(["sh", "-c", f"{prefix} sh -c '{PROGRAM}'"], timeout=120)
            assert result.exit_code == 0, result.stderr
            seen = json.loads(result.stdout)
            figures[user] = seen
            assert set(seen["netlink"].values()) == {"EPERM"}, seen["netlink"]
            refused = {v for v in seen["procfs"].values()}
            assert "written" not in refused, seen["procfs"]
            assert refused <= {"EACCES", "EPERM"}, seen["procfs"]
        assert vm.exec(["cat", "/proc/net/lana/fblocks"]).stdout == before
        vm.check_console()

        sock = Path(vm.describe()["qga_socket"])
        mode = sock.stat()
        figures["qga_socket"] = {"path": str(sock), "mode": oct(stat.S_IMODE(mode.st_mode)),
                                 "uid": mode.st_uid}
        assert stat.S_ISSOCK(mode.st_mode) and mode.st_uid == os.getuid() == 0
        assert stat.S_IMODE(mode.st_mode) & 0o077 == 0, "group/others may use the socket"
        # a real unprivileged process must be refused by the kernel, not just by the mode
        probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
                 "try:\n  s.connect(sys.argv[1]); print('connected')\n"
                 "except PermissionError: print('refused')\n")
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 "/usr/bin/python3", "-c", probe, str(sock)],
                                capture_output=True, text=True, timeout=30)
        figures["qga_socket"]["nobody_connect"] = result.stdout.strip()  # type: ignore[index]
        assert result.stdout.strip() == "refused", result
    figures["netlink_commands_refused"] = sum(
        len(figures[user]["netlink"]) for user in USERS)  # type: ignore[index]
    figures["agent_socket_mode"] = figures["qga_socket"]["mode"]  # type: ignore[index]
    report("privilege", figures)
