"""lab.autonomic pieces that need no kernel: the stack's shape from /proc/net/lana/fblocks
text, the journal's format, loading a policy and what a bad policy spec says."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lab.autonomic.controller import load_policy
from lab.autonomic.journal import Journal, read_journal
from lab.autonomic.policy import FloodGuard
from lab.autonomic.stack import shape_of
from lab.lana.procfs import parse_fblocks

# vb -> c0 -> legit -> app, as /proc/net/lana/fblocks shows it (IDPs 1..4)
FBLOCKS = """vb eth 1 2 [in:2] [] [] 0
c0 counter 2 2 [in:3,out:1] [] [] 0
legit bpf 3 2 [in:4,out:2] [] [] 0
app counter 4 1 [out:3] [] [] 0
"""


def test_shape_names_bindings_upper_on_lower() -> None:
    shape = shape_of(parse_fblocks(FBLOCKS))
    assert shape.bindings == {("c0", "vb"), ("legit", "c0"), ("app", "legit")}
    assert ("legit", "bpf") in shape.blocks
    assert shape.describe() == "app on legit; c0 on vb; legit on c0"


def test_shape_ignores_idps_and_counts() -> None:
    renumbered = FBLOCKS.replace(" 0\n", " 7\n")
    assert shape_of(parse_fblocks(renumbered)) == shape_of(parse_fblocks(FBLOCKS))
    with_guard = ("vb eth 1 2 [in:2] [] [] 0\nc0 counter 2 2 [in:5,out:1] [] [] 0\n"
                  "guard bpf 5 2 [in:3,out:2] [] [] 0\n"
                  "legit bpf 3 2 [in:4,out:5] [] [] 0\napp counter 4 1 [out:3] [] [] 0\n")
    assert shape_of(parse_fblocks(with_guard)) != shape_of(parse_fblocks(FBLOCKS))


def test_journal_lines_read_back_and_a_cut_last_line_is_ignored() -> None:
    out = io.StringIO()
    journal = Journal(out)
    journal.write("ready", shape="x")
    journal.write("action", command="insert", args=["g", "legit"], ok=True)
    records = read_journal(out.getvalue() + '{"t": 1.0, "kind": "ev')
    assert [r.kind for r in records] == ["ready", "action"]
    assert records[1].fields == {"command": "insert", "args": ["g", "legit"], "ok": True}
    assert records[0].t <= records[1].t


def test_load_policy_from_module_and_file(tmp_path: Path) -> None:
    policy = load_policy("lab.autonomic.policy:FloodGuard",
                         {"watch": "c0", "victim": "app", "guard_type": "ratelimit"})
    assert isinstance(policy, FloodGuard) and policy.victim == "app"
    source = tmp_path / "mine.py"
    source.write_text("from lab.autonomic.policy import Policy\n"
                      "class Mine(Policy):\n    pass\n")
    assert type(load_policy(f"{source}:Mine", {})).__name__ == "Mine"


@pytest.mark.parametrize(("spec", "says"), [
    ("FloodGuard", "expected FILE.py:CLASS or MODULE:CLASS"),
    ("/nonexistent/p.py:P", "does not exist"),
    ("lab.autonomic.journal:Journal", "is not a subclass of"),
    ("lab.autonomic.policy:Nope", "is not a subclass of"),
])
def test_bad_policy_specs_say_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        load_policy(spec, {})
