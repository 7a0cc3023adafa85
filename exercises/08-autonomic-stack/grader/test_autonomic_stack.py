"""Grader of exercise 8: the student's controller policy defends `victim` against floods.
Host check first (policy.py parses, defines Guard); then in vm1 the controller runs the
policy while lab.autonomic.floods sends a legitimate flow and floods of the variant's
EtherType, and the stack is read while guarded and after."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lab.autonomic import scenario
from lab.autonomic.stack import shape_of
from lab.grading.checks import expect
from lab.lana.procfs import parse_fblocks

if TYPE_CHECKING:
    from conftest import Defence


def _ran(defence: Defence) -> Defence:
    expect(defence.failed is None, f"not checked: {defence.failed}")
    return defence


def _run(defence: Defence) -> scenario.FloodRun:
    """The floods' outcome (the check is not run when the controller never started)."""
    run = _ran(defence).run
    assert run is not None  # failed is None only once the floods ran
    return run


def _why_not(defence: Defence) -> str:
    """What the journal says went wrong, for feedback."""
    said = defence.refusals() + defence.policy_errors()
    return (" The controller's journal: " + "; ".join(said[:3])) if said else ""


@pytest.mark.host
@pytest.mark.points(1)
def test_policy_defines_guard(submission: Path) -> None:
    """policy.py parses and defines class Guard(Policy) (checked on the host, not run)"""
    source = submission / "policy.py"
    expect(source.is_file(), f"the submission has no policy.py: put it into {submission}")
    try:
        tree = ast.parse(source.read_text(errors="replace"), filename="policy.py")
    except SyntaxError as err:
        expect(False, f"policy.py does not parse: line {err.lineno}: {err.msg}")
        return
    guards = [node for node in tree.body
              if isinstance(node, ast.ClassDef) and node.name == "Guard"]
    expect(guards, "policy.py defines no class Guard (the controller runs "
           "policy.py:Guard)")
    bases = [ast.unparse(base) for base in guards[0].bases]
    expect(any(base.split(".")[-1] == "Policy" for base in bases),
           "class Guard must derive from Policy (from lab.autonomic.policy import Policy)")


@pytest.mark.points(1)
def test_controller_runs_your_policy(defence: Defence) -> None:
    """the controller starts with policy.py:Guard in vm1 and subscribes to the events"""
    expect(defence.failed is None, defence.failed or "")


@pytest.mark.points(2)
def test_every_flood_gets_a_guard(defence: Defence) -> None:
    """each flood changes the stack (a guard goes in) within 5 s of its first frame"""
    from conftest import FLOODS, MAX_FLOOD_S

    floods = _ran(defence).graded
    for i, flood in enumerate(floods):
        expect("guard_seen" in flood,
               f"flood {i + 1} of {FLOODS}: the stack did not change within "
               f"{MAX_FLOOD_S:.0f} s of the flood's first frame; react to c0's rate_high "
               "event by putting a guard in." + _why_not(defence))
    expect(len(floods) == FLOODS, f"only {len(floods)} of {FLOODS} floods ran: the stack "
           "did not get its first shape back after the last one (see the shape check)")


@pytest.mark.points(2)
def test_guard_sits_between_c0_and_victim(defence: Defence) -> None:
    """while guarded, victim sits on the guard and the guard on c0"""
    for i, flood in enumerate(_ran(defence).graded):
        if "fblocks_guarded" not in flood:
            continue  # no guard: the reaction check says so
        shape = shape_of(parse_fblocks(flood["fblocks_guarded"]))
        below_victim = [lower for upper, lower in shape.bindings if upper == "victim"]
        guard = below_victim[0] if below_victim else None
        ok = guard not in (None, "c0") and (guard, "c0") in shape.bindings
        expect(ok, f"during flood {i + 1} the stack was: {shape.describe()}. The guard "
               "must sit between c0 and victim (victim on the guard, the guard on c0): "
               "stack.guard(name, type, under=\"victim\", ...)")


@pytest.mark.points(2)
def test_guard_stops_the_flood(defence: Defence) -> None:
    """no flood frame reaches victim once the guard is in"""
    run = _run(defence)
    guarded = [f for f in defence.graded if "guard_seen" in f]
    expect(guarded, "not checked: no flood got a guard")
    before = sum(f["flood_before_guard"] for f in run.floods)
    leaked = run.flood_at_victim - before
    expect(leaked <= 0, f"{leaked} flood frames (EtherType "
           f"0x{defence.flood_ethertype:04x}) reached victim after your guard was in: "
           "the guard must drop the flood's EtherType (lanalab grade 8 --show-variant)")


@pytest.mark.points(2)
def test_no_legitimate_frame_lost(defence: Defence) -> None:
    """every legitimate frame (EtherType 0x88b5) reaches app, floods or not"""
    run = _run(defence)
    expect(run.legit_lost == 0, f"{run.legit_lost} of {run.legit} legitimate frames "
           "(EtherType 0x88b5) never reached app: the guard must drop the flood's frames "
           "only (a rate limiter drops legitimate frames too)")


@pytest.mark.points(2)
def test_stack_returns_to_its_shape(defence: Defence) -> None:
    """after every flood the stack has its first shape again, with no block left over"""
    run = _run(defence)
    for i, flood in enumerate(defence.graded):
        if "guard_seen" not in flood:
            continue  # no guard went in: the reaction check says so
        expect("restored_seen" in flood,
               f"after flood {i + 1} the stack stayed `{flood['shape_after']}`; once c0 "
               f"reports rate_normal it must be `{run.first_shape}` again (take the guard "
               "out: stack.unguard(name) cuts it out and removes it)." + _why_not(defence))
