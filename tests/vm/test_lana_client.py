"""lab.lana.client (pyroute2 over the LANA generic netlink family) against the real core.

One guest for the module. The host drives it with RemoteLana (each call one guest-agent
exec of the client in the guest, pyroute2 from the host over the 9p share); one test runs
a script in the guest that imports the client itself. Traffic comes from a veth pair
va/vb in the guest, LANA hooked on vb by the client (what `vlink ethernet hook vb` does).
Every refusal must be a LanaError with the kernel's own message, the same text fbctl
prints, and leave /proc/net/lana/fblocks as it was.
"""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from lab.lana.client import NEEDS_ROOT, NOT_LOADED, Instance, LanaError
from lab.lana.procfs import FBlock, parse_fblocks
from lab.lana.remote import RemoteLana

if TYPE_CHECKING:
    from conftest import Guest

pytestmark = pytest.mark.vm

PROC = "/proc/net/lana"
FRAME = ("{ fill(0xff, 6), 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, c16(0x0800), "
         "fill(0xca, 86) }")


def fblocks(guest: Guest) -> dict[str, FBlock]:
    return parse_fblocks(guest.sh(f"cat {PROC}/fblocks"))


def same_as_procfs(listed: list[Instance], blocks: dict[str, FBlock]) -> None:
    """list() and /proc/net/lana/fblocks agree on every instance, in the same order."""
    assert [i.name for i in listed] == list(blocks)
    for inst in listed:
        block = blocks[inst.name]
        assert (inst.type, inst.idp, inst.refcnt, inst.events) == (
            block.type, block.idp, block.refcnt, block.events), inst


def stack(guest: Guest) -> dict[str, set[str]]:
    """Who sits on top of whom: {upper: {lower, ...}} from procfs, by name."""
    blocks = fblocks(guest)
    by_idp = {b.idp: b.name for b in blocks.values()}
    return {b.name: {by_idp[p.idp] for p in b.ports if p.direction == "out"}
            for b in blocks.values()}


def counter(guest: Guest, name: str) -> int:
    text = guest.sh(f"cat {PROC}/fblock/{name}")
    match = re.fullmatch(r"(\d+) (\d+)\n", text)
    assert match, f"counter {name} printed {text!r}"
    return int(match.group(1))


@pytest.fixture(scope="module")
def remote(guest: Guest) -> RemoteLana:
    return RemoteLana(guest.vm)  # type: ignore[arg-type]


def test_core_not_loaded_is_explained(guest: Guest, remote: RemoteLana) -> None:
    assert "lana" not in guest.sh("cat /proc/modules | cut -d' ' -f1").split()
    with pytest.raises(LanaError) as caught:
        remote.list()
    assert (caught.value.errno, caught.value.message) == (errno.ENOENT, NOT_LOADED)
    assert str(caught.value) in guest.fails("fbctl list").stderr


@pytest.fixture(scope="module")
def lana(guest: Guest, remote: RemoteLana) -> RemoteLana:
    """lana.ko, a quiet veth pair va/vb, vb hooked into LANA by the client."""
    guest.sh("modprobe lana")
    guest.sh("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 "
             "&& ip link add name va type veth peer name vb "
             "&& ip link set dev va up && ip link set dev vb up")
    remote.add("vb", "eth")  # vlink ethernet hook vb; fb_eth loads on demand
    return remote


@pytest.fixture
def client(lana: RemoteLana, guest: Guest) -> Iterator[RemoteLana]:
    """Per test: start from only 'vb'; take down what the test built (with fbctl, so a
    client bug cannot hide behind its own cleanup)."""
    yield lana
    for upper, lowers in stack(guest).items():
        for lower in lowers:
            guest.run(f"fbctl unbind {upper} {lower}")
    for name in reversed(list(fblocks(guest))):
        if name != "vb":
            guest.run(f"fbctl rm {name}")
    assert list(fblocks(guest)) == ["vb"], "test left instances behind"
    guest.vm.check_console()  # type: ignore[attr-defined]


def test_family_has_the_events_group(client: RemoteLana) -> None:
    # the events blocks emit (tests/vm/test_lana_events.py); nothing else
    assert list(client.multicast_groups()) == ["events"]


def test_build_list_replace_insert_cut(client: RemoteLana, guest: Guest) -> None:
    client.batch([("add", "f1", "fwd"), ("add", "c1", "counter"),
                  ("bind", "f1", "vb"), ("bind", "c1", "f1")])
    assert stack(guest) == {"vb": set(), "f1": {"vb"}, "c1": {"f1"}}
    listed = client.list()
    same_as_procfs(listed, fblocks(guest))
    assert [i.name for i in listed] == ["vb", "f1", "c1"]

    guest.sh(f"trafgen --dev va --cpus 1 --no-cpu-stats --num 10 \"{FRAME}\" >/dev/null")
    guest.wait_for(f"[ \"$(cut -d' ' -f1 {PROC}/fblock/c1)\" = 10 ]", what="c1 to count 10")

    # replace keeps the IDP, the bindings and (same type) the count
    c1 = {i.name: i for i in listed}["c1"]
    client.batch([("add", "c2", "counter"), ("replace", "c1", "c2")])
    listed = client.list()
    assert "c1" not in {i.name for i in listed}
    assert {i.name: i for i in listed}["c2"].idp == c1.idp
    assert stack(guest) == {"vb": set(), "f1": {"vb"}, "c2": {"f1"}}
    assert counter(guest, "c2") == 10
    client.set("c2", "reset=1")
    assert counter(guest, "c2") == 0

    # --drop-priv: a fwd takes over a counter's place
    client.batch([("add", "f9", "fwd"), ("replace", "c2", "f9", True)])
    assert stack(guest) == {"vb": set(), "f1": {"vb"}, "f9": {"f1"}}

    # insert a fresh block under f9, cut it out again
    client.batch([("add", "c3", "counter"), ("insert", "c3", "f9")])
    assert stack(guest) == {"vb": set(), "f1": {"vb"}, "f9": {"c3"}, "c3": {"f1"}}
    guest.sh(f"trafgen --dev va --cpus 1 --no-cpu-stats --num 4 \"{FRAME}\" >/dev/null")
    guest.wait_for(f"[ \"$(cut -d' ' -f1 {PROC}/fblock/c3)\" = 4 ]", what="c3 to count 4")
    client.cut("c3")
    assert stack(guest) == {"vb": set(), "f1": {"vb"}, "f9": {"f1"}, "c3": set()}

    # subscribe/unsubscribe: LANA's in-kernel notifier, seen in procfs
    client.subscribe("c3", "f1")
    blocks = fblocks(guest)
    assert blocks["c3"].subscriptions == (blocks["f1"].idp,)
    client.unsubscribe("c3", "f1")
    assert fblocks(guest)["c3"].subscriptions == ()

    client.batch([("unbind", "f9", "f1"), ("unbind", "f1", "vb"),
                  ("rm", "c3"), ("rm", "f9"), ("rm", "f1")])
    listed = client.list()
    same_as_procfs(listed, fblocks(guest))
    assert [i.name for i in listed] == ["vb"]


# (client call, the same as an fbctl command line, errno, a piece of the kernel's message)
BAD_CALLS: list[tuple[tuple[str, ...], str, int, str]] = [
    (("add", "x", "nosuchtype"), "add x nosuchtype", errno.ENOENT,
     "unknown block type 'nosuchtype'"),
    (("add", "bad/name", "counter"), "add bad/name counter", errno.EINVAL,
     "bad character in instance name 'bad/name'"),
    (("add", "n" * 40, "counter"), "add " + "n" * 40 + " counter", errno.ENAMETOOLONG,
     "instance name too long"),
    (("add", "c1", "fwd"), "add c1 fwd", errno.EEXIST,
     "an instance named 'c1' exists already"),
    (("bind", "vb", "c1"), "bind vb c1", errno.ELOOP, "would close a loop"),
    (("bind", "c1", "f1"), "bind c1 f1", errno.EEXIST, "'c1' is already bound on top of 'f1'"),
    (("rm", "f1"), "rm f1", errno.EBUSY, "unbind it first"),
    (("rm", "nosuch"), "rm nosuch", errno.ENOENT, "no instance named 'nosuch'"),
    (("unbind", "f1", "c1"), "unbind f1 c1", errno.ENOENT, "it is the other way round"),
    (("set", "c1", "novalue"), "set c1 novalue", errno.EINVAL, "key=value"),
    (("replace", "c1", "f1"), "replace c1 f1", errno.EBUSY, "must be fresh"),
    (("cut", "vb"), "cut vb", errno.EINVAL, "cut needs exactly one of each"),
    (("add", "..", "counter"), "add .. counter", errno.EINVAL, "not a usable instance name"),
    (("bind", "c1", "c1"), "bind c1 c1", errno.EINVAL, "cannot bind 'c1' to itself"),
    (("bind", "c1", "nosuch"), "bind c1 nosuch", errno.ENOENT, "no instance named 'nosuch'"),
    (("unbind", "nosuch", "c1"), "unbind nosuch c1", errno.ENOENT,
     "no instance named 'nosuch'"),
    (("set", "gone", "reset=1"), "set gone reset=1", errno.ENOENT,
     "no instance named 'gone'"),
    (("set", "c1", "=1"), "set c1 =1", errno.EINVAL, "key=value"),
    (("set", "c1", "k=" + "v" * 300), "set c1 k=" + "v" * 300, errno.EINVAL,
     "option too long"),
    (("replace", "c1", "c1"), "replace c1 c1", errno.EINVAL, "by itself"),
    (("replace", "c1", "spare"), "replace c1 spare", errno.EINVAL,
     "private data can only move within one type; use --drop-priv"),
    (("replace", "nosuch", "spare"), "replace nosuch spare", errno.ENOENT,
     "no instance named 'nosuch'"),
    (("insert", "c1", "f1"), "insert c1 f1", errno.EBUSY, "must be a fresh instance"),
    (("insert", "spare", "vb"), "insert spare vb", errno.EINVAL, "insert needs exactly one"),
    (("subscribe", "c1", "c1"), "subscribe c1 c1", errno.EINVAL,
     "'c1' cannot subscribe to itself"),
    (("unsubscribe", "spare", "c1"), "unsubscribe spare c1", errno.ENOENT,
     "'spare' is not subscribed to 'c1'"),
    (("set", "a1", "ip=10.0.0.256"), "set a1 ip=10.0.0.256", errno.EINVAL, "bad address"),
    (("set", "a1", "ip=127.0.0.1"), "set a1 ip=127.0.0.1", errno.EINVAL,
     "not a unicast address"),
    (("set", "a1", "port=7"), "set a1 port=7", errno.ENOENT, "unknown option"),
    (("set", "u1", "port=65536"), "set u1 port=65536", errno.EINVAL, "bad port"),
    (("set", "r1", "rate=0"), "set r1 rate=0", errno.EINVAL, "bad rate"),
    (("set", "r1", "burst=1000001"), "set r1 burst=1000001", errno.EINVAL, "bad burst"),
    (("bind", "spare", "u1"), "bind spare u1", errno.EBUSY,
     "an application is already bound on top"),
]


REFUSALS_SCRIPT = """
import json, sys
from lab.lana.client import Lana, LanaError
out = []
with Lana() as lana:
    for command, *args in json.load(sys.stdin):
        before = open("/proc/net/lana/fblocks").read()
        try:
            getattr(lana, command)(*args)
            out.append(None)
        except LanaError as err:
            out.append([err.errno, err.message, str(err),
                        open("/proc/net/lana/fblocks").read() == before])
print(json.dumps(out))
"""


def test_refusals_raise_the_kernels_message_and_change_nothing(
        client: RemoteLana, guest: Guest) -> None:
    """All refusals on one connection, in the guest (one exec, not one per call); then
    fbctl refuses the same commands and prints the same text."""
    client.batch([("add", "f1", "fwd"), ("add", "c1", "counter"),
                  ("bind", "f1", "vb"), ("bind", "c1", "f1"), ("add", "spare", "fwd"),
                  ("add", "gone", "counter"), ("rm", "gone"), ("add", "a1", "arp"),
                  ("add", "u1", "udp"), ("add", "r1", "ratelimit"), ("bind", "r1", "u1")])
    before = guest.sh(f"cat {PROC}/fblocks")
    guest.put("/tmp/lana_client_refusals.py", REFUSALS_SCRIPT)
    result = guest.vm.exec(  # type: ignore[attr-defined]
        [*client.argv[:3], "python3", "/tmp/lana_client_refusals.py"],
        input=json.dumps([call for call, *_ in BAD_CALLS]).encode(), timeout=120)
    assert result.exit_code == 0, result.stderr
    answers = json.loads(result.stdout)
    fbctl = guest.sh("for c in " + " ".join(guest.quote(c) for _, c, *_ in BAD_CALLS)
                     + "; do fbctl $c 2>&1 && echo 'fbctl: succeeded'; done; true").splitlines()
    for (call, command, code, fragment), answer, printed in zip(
            BAD_CALLS, answers, fbctl, strict=True):
        assert answer is not None, f"{call} was not refused"
        got_errno, message, text, unchanged = answer
        assert fragment in message, (call, answer)
        assert got_errno == code, (call, answer)
        assert unchanged, f"{call} changed the state"
        assert printed == f"fbctl: {command}: {text}", call
    assert guest.sh(f"cat {PROC}/fblocks") == before


# Through RemoteLana itself (guest agent, one exec each): the same LanaError.
REMOTE_BAD_CALLS = [call for call in BAD_CALLS if call[0][0] in ("bind", "set", "replace")
                    and call[0][1] in ("c1", "a1", "u1")][:6]


def test_refusals_through_the_guest_agent(client: RemoteLana, guest: Guest) -> None:
    client.batch([("add", "f1", "fwd"), ("add", "c1", "counter"), ("bind", "f1", "vb"),
                  ("bind", "c1", "f1"), ("add", "spare", "fwd"), ("add", "a1", "arp"),
                  ("add", "u1", "udp"), ("add", "r1", "ratelimit"), ("bind", "r1", "u1")])
    before = guest.sh(f"cat {PROC}/fblocks")
    assert len(REMOTE_BAD_CALLS) >= 5
    for call, _command, code, fragment in REMOTE_BAD_CALLS:
        with pytest.raises(LanaError) as caught:
            getattr(client, call[0])(*call[1:])
        assert (caught.value.errno, fragment in caught.value.message) == (code, True), call
    for name, type_, fragment in (("", "counter", "empty instance name"),
                                  ("x", "", "empty block type")):  # fbctl cannot say these
        with pytest.raises(LanaError) as caught:
            client.add(name, type_)
        assert caught.value.errno == errno.EINVAL and fragment in caught.value.message
    with pytest.raises(LanaError) as caught:  # refused by the client: no NUL in strings
        client.add("x\0y", "counter")
    assert caught.value.errno == errno.EINVAL and "NUL byte" in caught.value.message
    assert guest.sh(f"cat {PROC}/fblocks") == before


def test_batch_stops_at_the_first_refusal(client: RemoteLana, guest: Guest) -> None:
    with pytest.raises(LanaError, match="unknown block type 'nope'"):
        client.batch([("add", "f1", "fwd"), ("add", "x", "nope"), ("add", "f2", "fwd")])
    assert list(fblocks(guest)) == ["vb", "f1"]


GUEST_SCRIPT = """
import json
from lab.lana.client import Lana, LanaError
out = {}
with Lana() as lana:
    lana.add("g1", "counter")
    lana.bind("g1", "vb")
    out["listed"] = [i.name for i in lana.list()]
    try:
        lana.rm("g1")
    except LanaError as err:
        out["error"] = [err.errno, err.message]
    lana.unbind("g1", "vb")
    lana.rm("g1")
    out["after"] = [i.name for i in lana.list()]
print(json.dumps(out))
"""


def test_in_guest_script_and_unprivileged_user(client: RemoteLana, guest: Guest) -> None:
    env = client.argv[:3]  # env PYTHONPATH=... PYTHONDONTWRITEBYTECODE=1
    guest.put("/tmp/lana_client_script.py", GUEST_SCRIPT)
    out = json.loads(guest.sh(" ".join([*env, "python3", "/tmp/lana_client_script.py"])))
    assert out == {"listed": ["vb", "g1"], "after": ["vb"],
                   "error": [errno.EBUSY, "'g1' is bound to 'vb'; unbind it first"]}

    result = guest.run("echo '{\"calls\": [[\"list\", [], {}]]}' | setpriv --reuid=65534 "
                       "--regid=65534 --clear-groups " + " ".join(client.argv))
    assert json.loads(result.stdout)["error"] == [errno.EPERM, NEEDS_ROOT], result
