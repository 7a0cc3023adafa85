"""The service's rules without a VM: quotas, admission (rate and in-flight), the config
file, argument checks, capture filters, topology references and lab ownership."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.runstate import RUN_META_ENV, RunRecord
from lab.service.config import Quota, ServiceConfig, load_config
from lab.service.core import BadArgs, ServiceState, take
from lab.service.ops_labs import _topology_ref
from lab.service.ops_nodes import _check_filter
from lab.service.ownership import NotYours, find_visible, visible_labs
from lab.service.quota import QuotaExceeded, check_quota, check_shape
from lab.service.ratelimit import Admission


def test_quota_names_the_limit() -> None:
    q = Quota(max_labs=2, max_vms=3, max_memory_mb=1024)
    check_quota(q, 1, 1, 512, 2, 512)  # exactly at the limits: fine
    with pytest.raises(QuotaExceeded, match="at most 2 at once"):
        check_quota(q, 2, 0, 0, 1, 1)
    with pytest.raises(QuotaExceeded, match="limit of 3 VMs") as exc:
        check_quota(q, 1, 2, 0, 2, 0)
    assert "lanalab down" in (exc.value.hint or "")
    with pytest.raises(QuotaExceeded, match="limit of 1024 MB"):
        check_quota(q, 0, 0, 768, 1, 512)


def test_rate_limit_per_uid_and_refill() -> None:
    now = [0.0]
    adm = Admission(rate=2.0, burst=3, max_inflight=10, clock=lambda: now[0])
    for _ in range(3):
        assert adm.admit(1000) is None
        adm.done(1000)
    assert "rate limit" in (adm.admit(1000) or "")
    assert adm.admit(1001) is None  # another uid is not starved
    now[0] += 0.5  # one token back
    assert adm.admit(1000) is None


def test_inflight_cap() -> None:
    adm = Admission(rate=100.0, burst=100, max_inflight=2)
    assert adm.admit(7) is None and adm.admit(7) is None
    assert "2 requests running" in (adm.admit(7) or "")
    adm.done(7)
    assert adm.admit(7) is None


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "service.toml"
    path.write_text('[service]\nsocket = "/tmp/s.sock"\n[instructors]\nuids = [2003]\n'
                    "[quota]\nmax_vms = 2\n[limits]\nrate_burst = 5\n")
    cfg = load_config(path)
    assert cfg.socket == Path("/tmp/s.sock") and cfg.quota.max_vms == 2
    assert cfg.limits.rate_burst == 5 and cfg.quota.max_labs == Quota().max_labs
    assert cfg.is_instructor(2003, 2003) and cfg.is_instructor(0, 0)
    assert not cfg.is_instructor(2001, 2001)
    for bad, words in [("[quota]\nmax_vms = -1\n", "positive"),
                       ("[quota]\nvms = 1\n", "unknown key"), ("[nope]\n", "unknown section"),
                       ("[instructors]\nuids = ['x']\n", "uids are numbers"),
                       ("[classroom]\nwork = '../../etc'\n", "inside a home"),
                       ("[classroom]\nwork = '/etc'\n", "inside a home"),
                       ("[classroom]\nhomes = 3\n", "as strings")]:
        path.write_text(bad)
        with pytest.raises(LabError, match=words):
            load_config(path)


def test_take_checks_arguments() -> None:
    spec = {"run": str, "timeout": (int, float), "argv": list}
    assert take("exec", {"run": "lab0001", "timeout": 3}, spec) == {"run": "lab0001",
                                                                    "timeout": 3}
    with pytest.raises(BadArgs, match="unknown argument.*share"):
        take("up", {"share": "/etc"}, {"topology": str})
    with pytest.raises(BadArgs, match="'argv' is required"):
        take("exec", {}, spec, ("argv",))
    with pytest.raises(BadArgs, match="wrong type"):
        take("exec", {"timeout": True}, spec)
    with pytest.raises(BadArgs, match="wrong type"):
        take("exec", {"run": ["lab0001"]}, spec)


@pytest.mark.parametrize("text", ["-z /tmp/x", "-r/etc/shadow", "a\0b", "x" * 2000])
def test_capture_filters_that_are_options_are_refused(text: str) -> None:
    with pytest.raises(BadArgs):
        _check_filter(text)
    _check_filter("udp port 9 and not arp")


def test_topology_names_never_paths(tmp_path: Path) -> None:
    state = ServiceState(ServiceConfig(), tmp_path)
    assert _topology_ref(state, {"topology": "default"}).endswith("topologies/default.toml")
    assert _topology_ref(state, {"topology": "star"}) == "star"
    for ref in ["/etc/shadow", "../topologies/default", "x.py", "etc"]:
        with pytest.raises(BadArgs):
            _topology_ref(state, {"topology": ref})
    written = Path(_topology_ref(state, {"topology_toml": 'name = "t"\n'}))
    assert written.parent == tmp_path and written.read_text() == 'name = "t"\n'
    with pytest.raises(BadArgs, match="over"):
        _topology_ref(state, {"topology_toml": "#" * (70 << 10)})


def test_ownership_from_run_meta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANALAB_RUN_DIR", str(tmp_path))
    monkeypatch.setenv(RUN_META_ENV, json.dumps({"service": True, "owner_uid": 2001,
                                                 "vms": 2, "memory_mb": 1024}))
    alice = RunRecord.create()
    alice.adopt()  # the fork's re-adoption keeps the owner
    monkeypatch.setenv(RUN_META_ENV, json.dumps({"service": True, "owner_uid": 2002}))
    bob = RunRecord.create()
    monkeypatch.delenv(RUN_META_ENV)
    root = RunRecord.create()  # root's own lanalab up: no owner uid
    assert alice.meta()["owner_uid"] == 2001 and alice.meta()["vms"] == 2
    assert [lab.run_id for lab in visible_labs(2001, False)] == [alice.run_id]
    assert {lab.run_id for lab in visible_labs(2003, True)} == {alice.run_id, bob.run_id,
                                                                root.run_id}
    assert find_visible(2002, False, None).run_id == bob.run_id
    with pytest.raises(NotYours, match="not one of your labs"):
        find_visible(2002, False, alice.run_id)
    with pytest.raises(NotYours, match="not one of your labs"):
        find_visible(2002, False, "lab9999")  # the same words: existence is not revealed
    with pytest.raises(NotYours, match="not one of your labs"):
        find_visible(2001, False, root.run_id)
    with pytest.raises(NotYours, match="3 labs"):
        find_visible(0, True, None)


def test_the_shape_of_a_users_lab_is_bounded(tmp_path: Path) -> None:
    from lab.topology.loader import load_topology

    big = tmp_path / "big.toml"
    big.write_text('[[vm]]\nname = "vm1"\ncpus = 8\n')

    check_shape(Quota(), load_topology("default"))
    with pytest.raises(QuotaExceeded, match="4 nodes.*limit is 3 per lab"):
        check_shape(Quota(max_nodes_per_lab=3), load_topology("default"))
    with pytest.raises(QuotaExceeded, match="vm1 asks for 8 vCPUs; the limit is 2"):
        check_shape(Quota(), load_topology(str(big)))
