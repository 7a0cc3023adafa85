"""The procfs parsers against the formats docs/kernel/procfs.md documents (lines copied
from a real guest)."""

from __future__ import annotations

import pytest

from lab.lana.procfs import (
    Port,
    ProcfsFormatError,
    parse_fblocks,
    parse_ppe,
    parse_responder,
    parse_types,
    ppe_total,
)

FBLOCKS = """\
vb eth 1 4 [in:2] [2] [2] 0
f1 fwd 2 7 [out:1,in:3] [1,3] [1,3] 0
t1 tee 3 10 [out:2,in:4,in:51] [51,4,2] [2,4,51] 50
lonely counter 9 1 [] [] [] 0
"""


def test_fblocks_fields() -> None:
    blocks = parse_fblocks(FBLOCKS)
    assert list(blocks) == ["vb", "f1", "t1", "lonely"]
    f1 = blocks["f1"]
    assert (f1.type, f1.idp, f1.refcnt, f1.events) == ("fwd", 2, 7, 0)
    assert f1.ports == (Port("out", 1), Port("in", 3))
    assert f1.subscriptions == (1, 3) and f1.subscribers == (1, 3)
    assert blocks["t1"].bound_to() == {2, 4, 51}
    assert blocks["t1"].events == 50
    lonely = blocks["lonely"]
    assert lonely.ports == () and lonely.subscriptions == () and lonely.subscribers == ()


def test_fblocks_empty() -> None:
    assert parse_fblocks("") == {}


@pytest.mark.parametrize("line", [
    "vb eth 1 4 [in:2] [2] [2]",  # events missing
    "vb eth 1 4 [up:2] [2] [2] 0",  # unknown direction
    "vb eth x 4 [] [] [] 0",  # IDP not a number
    "vb eth 1 4 [] [a] [] 0",
])
def test_fblocks_rejects_bad_lines(line: str) -> None:
    with pytest.raises(ProcfsFormatError):
        parse_fblocks(line)


def test_ppe() -> None:
    cpus = parse_ppe("CPU0: 12 976 24 12 0\nCPU1: 1582611 155095878 3188753 1582611 3\n")
    assert [c.cpu for c in cpus] == [0, 1]
    assert cpus[1].calls == 3188753 and cpus[1].backlog == 3
    total = ppe_total(cpus)
    assert (total.packets, total.bytes, total.drops) == (1582623, 155096854, 1582623)


def test_ppe_rejects_garbage() -> None:
    with pytest.raises(ProcfsFormatError):
        parse_ppe("CPU0: 1 2 3\n")


def test_types() -> None:
    assert parse_types("fwd fb_fwd\ncounter fb_counter\n") == {
        "fwd": "fb_fwd", "counter": "fb_counter"}


def test_responder_file() -> None:
    text = "ip 10.0.0.50,10.0.0.51\nrequests 20\nreplies 20\nmalformed 3\npassed 21\ndropped 0\n"
    parsed = parse_responder(text)
    assert parsed.addresses == ("10.0.0.50", "10.0.0.51")
    assert parsed["requests"] == 20 and parsed["malformed"] == 3 and parsed["passed"] == 21
    assert parse_responder("ip none\nrequests 0\nreplies 0\nmalformed 0\npassed 0\n"
                           "dropped 0\n").addresses == ()


@pytest.mark.parametrize("text", [
    "", "requests 1\n", "ip 10.0.0.1 10.0.0.2\n",
    "ip 10.0.0.1\nrequests 1\nreplies 1\nmalformed 0\npassed 0\n",  # no dropped
    "ip 10.0.0.1\nrequests -1\nreplies 1\nmalformed 0\npassed 0\ndropped 0\n",
])
def test_responder_file_malformed(text: str) -> None:
    with pytest.raises(ProcfsFormatError):
        parse_responder(text)
