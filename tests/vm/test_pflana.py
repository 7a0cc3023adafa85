"""PF_LANA sockets (kernel/blocks/fb_pflana.c) between two real guests.

One two-VM lab for the module (vm1 10.0.0.1, vm2 10.0.0.2 on one bridge). In each VM a
PF_LANA socket is bound on top of the eth block that hooks eth0:

    socket (pflana) -> eth0 (eth) ~~ bridge ~~ eth0 (eth) -> socket (pflana)

Datagrams are whole Ethernet frames with EtherType 0xAC05 and a sequence number, so each
side can tell exactly which frames arrived. The errno tests run in vm1 only.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.grading.traffic import wait_settled

pytestmark = pytest.mark.vm

REPO_ROOT = Path(__file__).resolve().parents[2]

HELPER = "/tmp/pfl.py"
# PF_LANA from Python: socket() works with the raw number; bind/getsockname need ctypes
# because Python does not know struct sockaddr_lana.
HELPER_SOURCE = r'''
import ctypes, errno, json, select, socket, struct, sys, time
AF_LANA = 19
ETYPE = b"\xac\x05"
libc = ctypes.CDLL(None, use_errno=True)

def lana_bind(s, name, family=AF_LANA, length=None):
    addr = struct.pack("H32s", family, name.encode())
    n = len(addr) if length is None else length
    if libc.bind(s.fileno(), ctypes.c_char_p(addr), n) != 0:
        return errno.errorcode[ctypes.get_errno()]
    return "ok"

def lana_name(s):
    buf = ctypes.create_string_buffer(64)
    n = ctypes.c_uint(64)
    libc.getsockname(s.fileno(), buf, ctypes.byref(n))
    return buf.raw[2:34].split(b"\0")[0].decode()

PATTERN = bytes(range(256)) * 8

def frame(seq, size, src):
    head = b"\xff" * 6 + src + ETYPE + struct.pack("!I", seq)
    start = seq & 0xFF   # payload byte i is (seq + i) & 0xff; slicing is cheap under TCG
    return head + PATTERN[start:start + size - len(head)]

def errname(fn):
    try:
        fn()
    except OSError as exc:
        return errno.errorcode[exc.errno]
    return "ok"

def wait_bound(name):
    while "egress 0\n" in open(f"/proc/net/lana/fblock/{name}").read():
        time.sleep(0.01)

cmd = sys.argv[1]
if cmd == "send":      # send NAME COUNT SIZE SRCBYTE: bind, wait for fbctl, send
    s = socket.socket(AF_LANA, socket.SOCK_RAW, 0)
    assert lana_bind(s, sys.argv[2]) == "ok"
    print("bound", flush=True)
    wait_bound(sys.argv[2])
    count, size, src = int(sys.argv[3]), int(sys.argv[4]), bytes([2, 0, 0, 0, 0, int(sys.argv[5])])
    start = time.monotonic()
    for seq in range(count):
        s.send(frame(seq, size, src))
    print(json.dumps({"sent": count, "seconds": time.monotonic() - start}))
elif cmd == "recv":    # recv NAME COUNT SIZE TIMEOUT: bind, then receive ETYPE frames
    s = socket.socket(AF_LANA, socket.SOCK_RAW, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    assert lana_bind(s, sys.argv[2]) == "ok"
    print("bound", flush=True)
    count, size, timeout = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    seqs, bad, first, last = [], 0, None, None
    end = time.monotonic() + timeout
    while len(seqs) < count and time.monotonic() < end:
        if not select.select([s], [], [], 0.2)[0]:
            continue
        data = s.recv(2000)
        if data[12:14] != ETYPE:
            continue
        now = time.monotonic()
        first = first or now
        last = now
        seq = struct.unpack("!I", data[14:18])[0]
        bad += data != frame(seq, size, data[6:12])
        seqs.append(seq)
    print(json.dumps({"seqs": seqs, "corrupt": bad,
                      "seconds": (last - first) if first else 0}))
elif cmd == "errnos":
    out = {}
    for name, typ, proto in (("dgram", socket.SOCK_DGRAM, 0), ("stream", socket.SOCK_STREAM, 0),
                             ("proto", socket.SOCK_RAW, 1)):
        out[name] = errname(lambda: socket.socket(AF_LANA, typ, proto))
    s = socket.socket(AF_LANA, socket.SOCK_RAW, 0)
    out["default_name"] = lana_name(s)
    out["unbound_send"] = errname(lambda: s.send(frame(0, 60, bytes(6))))
    out["bind_family"] = lana_bind(s, "x1", family=2)
    out["bind_short"] = lana_bind(s, "x1", length=4)
    out["bind_badname"] = lana_bind(s, "bad/name")
    out["bind_taken"] = lana_bind(s, "eth0")
    out["bind"] = lana_bind(s, "e1")
    out["name"] = lana_name(s)
    print(json.dumps(out), flush=True)
    sys.stdin.readline()   # the test binds e1 on top of eth0 meanwhile
    out = {"rebind_bound": lana_bind(s, "e2"),
           "oversize": errname(lambda: s.send(frame(0, 1515, bytes(6)))),
           "max_size": errname(lambda: s.send(frame(0, 1514, bytes(6)))),
           "runt": errname(lambda: s.send(b"\xff" * 13))}
    print(json.dumps(out), flush=True)
    sys.stdin.readline()   # the test checks the instance while the socket is open
    s.close()
'''


@pytest.fixture(scope="module")
def lab(image) -> Iterator:  # -> lab.labrun.LabRun
    """Two VMs with eth0 hooked into LANA; IPv6 off so that eth0 stays quiet."""
    from lab.labrun import LabRun
    from lab.topology.loader import load_topology

    run = LabRun(load_topology("default"), image)
    run.up()
    try:
        for vm in ("vm1", "vm2"):
            run.sh(vm, "modprobe -a lana fb_eth fb_pflana "
                   "&& sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 "
                   "&& vlink ethernet hook eth0")
            run.vms[vm].put_file(HELPER, HELPER_SOURCE.encode())
        yield run
        for vm in ("vm1", "vm2"):
            run.vms[vm].check_console()
    finally:
        run.down()


def _background(lab, vm: str, args: str, out: str) -> None:
    lab.sh(vm, f"rm -f {out}; setsid sh -c 'python3 {HELPER} {args} > {out}.tmp 2>&1; "
           f"mv {out}.tmp {out}' < /dev/null > /dev/null 2>&1 &")


def _wait_json(lab, vm: str, path: str, timeout: float = 120.0) -> dict:
    lab.sh(vm, f"for i in $(seq {int(timeout * 10)}); do test -e {path} && break; "
           "sleep 0.1; done; test -e " + path, timeout=timeout + 30)
    text = lab.sh(vm, f"cat {path}")
    return json.loads(text.strip().splitlines()[-1])


def _wait_instance(lab, vm: str, name: str) -> None:
    lab.sh(vm, f"for i in $(seq 300); do test -e /proc/net/lana/fblock/{name} && exit 0; "
           "sleep 0.1; done; exit 1")


def _transfer(lab, sender: str, receiver: str, count: int, size: int) -> tuple[dict, dict]:
    """`count` frames of `size` bytes from sender to receiver through both LANA stacks."""
    _background(lab, receiver, f"recv rx {count} {size} 60", "/tmp/pfl_rx.json")
    _wait_instance(lab, receiver, "rx")
    lab.sh(receiver, "fbctl bind rx eth0")
    _background(lab, sender, f"send tx {count} {size} {7 if sender == 'vm1' else 8}",
                "/tmp/pfl_tx.json")
    _wait_instance(lab, sender, "tx")
    lab.sh(sender, "fbctl bind tx eth0")
    sent = _wait_json(lab, sender, "/tmp/pfl_tx.json")
    got = _wait_json(lab, receiver, "/tmp/pfl_rx.json")
    # the sockets closed: their instances are gone and eth0 is free again
    for vm in (sender, receiver):
        fblocks = lab.sh(vm, "cat /proc/net/lana/fblocks")
        assert not re.search(r"^(rx|tx) ", fblocks, re.M), fblocks
    return sent, got


@pytest.mark.parametrize("sender,receiver", [("vm1", "vm2"), ("vm2", "vm1")])
def test_datagrams_pass_between_two_hosts(lab, sender: str, receiver: str) -> None:
    sent, got = _transfer(lab, sender, receiver, count=200, size=300)
    assert sent["sent"] == 200
    assert got["seqs"] == list(range(200)), "every frame, in order, exactly once"
    assert got["corrupt"] == 0


def test_throughput_of_a_pf_lana_socket_pair(lab) -> None:
    """pfbench (C) blasts 5000 frames of 1000 B from vm1; vm2's socket counts them.
    Under TCG this measures the emulation more than LANA; it is reported, and the
    receiver must get most of the burst (the rest is dropped before LANA, by virtio)."""
    bench = "/lab/kernel/apps/pfbench/pfbench"
    done = subprocess.run(["make", "-s", "-C", str(REPO_ROOT / "kernel/apps/pfbench")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lab.sh("vm2", f"rm -f /tmp/pfb_rx.json; setsid sh -c '{bench} recv brx 5000 40 "
           "> /tmp/pfb_rx.tmp; mv /tmp/pfb_rx.tmp /tmp/pfb_rx.json' < /dev/null "
           "> /dev/null 2>&1 &")
    _wait_instance(lab, "vm2", "brx")
    lab.sh("vm2", "fbctl bind brx eth0")
    lab.sh("vm1", f"rm -f /tmp/pfb_tx.json; setsid sh -c '{bench} send btx 5000 1000 "
           "> /tmp/pfb_tx.tmp; mv /tmp/pfb_tx.tmp /tmp/pfb_tx.json' < /dev/null "
           "> /dev/null 2>&1 &")
    _wait_instance(lab, "vm1", "btx")
    lab.sh("vm1", "fbctl bind btx eth0")
    sent = _wait_json(lab, "vm1", "/tmp/pfb_tx.json")
    got = _wait_json(lab, "vm2", "/tmp/pfb_rx.json", timeout=60)
    tx_rate = sent["frames"] / sent["seconds"] if sent["seconds"] else 0.0
    rx_rate = got["frames"] / got["seconds"] if got["seconds"] else 0.0
    print(f"\nPF_LANA (pfbench) vm1 sent 5000 x 1000 B at {tx_rate:.0f} frames/s "
          f"({tx_rate * 8000 / 1e6:.1f} Mbit/s); vm2's socket got {got['frames']} at "
          f"{rx_rate:.0f} frames/s ({rx_rate * 8000 / 1e6:.1f} Mbit/s)")
    assert sent["frames"] == 5000
    assert got["frames"] >= 2500


def test_bad_calls_return_the_right_errno(lab) -> None:
    vm = lab.vms["vm1"]
    result = vm.exec(["sh", "-c", f"printf '\\n\\n' | python3 {HELPER} errnos"],
                     timeout=60)
    assert result.exit_code == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines()[:2])
    assert first["dgram"] == first["stream"] == "ESOCKTNOSUPPORT"
    assert first["proto"] == "EPROTONOSUPPORT"
    assert re.fullmatch(r"pf\d+", first["default_name"])
    assert first["unbound_send"] == "ENOTCONN"
    assert first["bind_family"] == "EAFNOSUPPORT"
    assert first["bind_short"] == "EINVAL"
    assert first["bind_badname"] == "EINVAL"
    assert first["bind_taken"] == "EADDRINUSE"
    assert first["bind"] == "ok" and first["name"] == "e1"
    # not bound by the test (the socket is not on top of a block): rename is allowed,
    # sends stay ENOTCONN; oversize is checked before the port
    assert second["oversize"] == "EMSGSIZE"
    assert second["runt"] == "EINVAL"
    assert second["max_size"] == "ENOTCONN", "nothing below the socket"


def test_rename_refused_once_bound_and_close_unbinds(lab) -> None:
    """bind(2) is EBUSY once fbctl bound the socket; close(2) unbinds and removes it."""
    script = (f"mkfifo /tmp/pfl_in; (python3 {HELPER} errnos < /tmp/pfl_in > /tmp/pfl_err.out "
              "2>&1 &) ; exec 3> /tmp/pfl_in; "
              "for i in $(seq 100); do test -e /proc/net/lana/fblock/e1 && break; sleep 0.1; done; "
              "fbctl bind e1 eth0 && echo >&3 && "
              # the socket has tried to rename and sent its frames once it printed them
              "for i in $(seq 300); do grep -q rebind_bound /tmp/pfl_err.out && break; "
              "sleep 0.1; done; cat /proc/net/lana/fblock/e1 "
              "&& fbctl list && echo >&3 && exec 3>&- && "
              "for i in $(seq 300); do test -e /proc/net/lana/fblock/e1 || break; sleep 0.1; "
              "done; rm -f /tmp/pfl_in; cat /tmp/pfl_err.out; cat /proc/net/lana/fblocks")
    out = lab.sh("vm1", script, timeout=60)
    second = json.loads([ln for ln in out.splitlines() if "rebind_bound" in ln][0])
    assert second["rebind_bound"] == "EBUSY"
    assert second["max_size"] == "ok", "a 1514-byte frame is the largest allowed"
    assert re.search(r"^e1 +pflana .*out:eth0", out, re.M), out
    assert "tx 1" in out  # the max-size frame went down to eth0
    assert not re.search(r"^e1 ", out.split("rebind_bound")[-1], re.M), \
        "close(2) must remove the bound instance"


def test_fbctl_cannot_make_a_socketless_pflana(lab) -> None:
    result = lab.vms["vm1"].exec(["fbctl", "add", "p9", "pflana"], timeout=30)
    assert result.exit_code == 1
    assert "socket(AF_LANA" in result.stderr


def test_receive_queue_is_limited_and_counts_drops(lab) -> None:
    """A socket that does not read: its queue stops at SO_RCVBUF, the rest is counted."""
    reader = ("import socket, ctypes, struct, time\n"
              "s = socket.socket(19, socket.SOCK_RAW, 0)\n"
              "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)\n"
              "a = struct.pack('H32s', 19, b'slow')\n"
              "ctypes.CDLL(None).bind(s.fileno(), ctypes.c_char_p(a), len(a))\n"
              "time.sleep(30)\n")
    lab.vms["vm2"].put_file("/tmp/pfl_slow.py", reader.encode())
    lab.sh("vm2", "setsid python3 /tmp/pfl_slow.py < /dev/null > /dev/null 2>&1 & "
           "echo $! > /tmp/pfl_slow.pid")
    _wait_instance(lab, "vm2", "slow")
    lab.sh("vm2", "fbctl bind slow eth0")
    _background(lab, "vm1", "send tx 300 1000 7", "/tmp/pfl_tx.json")
    _wait_instance(lab, "vm1", "tx")
    lab.sh("vm1", "fbctl bind tx eth0")
    _wait_json(lab, "vm1", "/tmp/pfl_tx.json")
    # every frame has arrived once queued + dropped reach what was sent (or stop moving)
    stats = str(wait_settled(lambda: lab.sh("vm2", "cat /proc/net/lana/fblock/slow"),
                             expect=None, timeout=30))
    lab.sh("vm2", "kill $(cat /tmp/pfl_slow.pid)")
    values = dict(line.split() for line in stats.splitlines())
    queued, drops = int(values["rcvqueue"]), int(values["drops"])
    assert queued + drops >= 300
    assert drops > 0 and queued < 300, stats
    # the killed socket's instance went with it
    lab.sh("vm2", "for i in $(seq 50); do test -e /proc/net/lana/fblock/slow || exit 0; "
           "sleep 0.1; done; exit 1")
