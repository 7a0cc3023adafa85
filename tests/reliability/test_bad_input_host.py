"""Bad input on the host: malformed topology files and CLI argument lists.

Each case must be refused with a message (exit 1 via LabError, or argparse's exit 2), or
accepted as a valid topology; a Python traceback is a crash. Cases are generated from a
seed (LANALAB_RELIABILITY_SEED) and chosen so that none brings anything up.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from lab.reliability.guestvm import REPO_ROOT, report
from lab.reliability.host_fuzz import (
    Outcomes,
    check_cli,
    check_topologies,
    cli_cases,
)

pytestmark = pytest.mark.slow

TOPOLOGY_CASES = 300
CLI_CASES = 240


def _seed() -> int:
    return int(os.environ.get("LANALAB_RELIABILITY_SEED", random.randrange(1 << 30)))


def test_malformed_topology_files(tmp_path: Path) -> None:
    seed = _seed()
    print(f"\n[reliability] topology bad-input seed {seed}")
    outcomes = Outcomes()
    check_topologies(tmp_path, random.Random(seed), TOPOLOGY_CASES, outcomes)
    report("bad_input_topology", {"seed": seed, **outcomes.figures()})
    assert outcomes.crashes == [], "\n\n".join(outcomes.crashes[:5])
    assert outcomes.unclear == [], outcomes.unclear[:10]
    assert sum(outcomes.refused.values()) >= TOPOLOGY_CASES // 2


def test_bad_cli_arguments(tmp_path: Path) -> None:
    from lab.cli import build_parser

    seed = _seed()
    print(f"\n[reliability] CLI bad-input seed {seed}")
    rng = random.Random(seed)
    # some `up FILE` cases use topology files the loader refuses
    refused_files = check_topologies(tmp_path, rng, 40, Outcomes())
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    subcommands = sorted(subparsers.choices)  # type: ignore[union-attr]
    outcomes = Outcomes()
    check_cli(cli_cases(rng, CLI_CASES, refused_files, subcommands), outcomes)
    report("bad_input_cli", {"seed": seed, **outcomes.figures()})
    assert outcomes.crashes == [], "\n\n".join(outcomes.crashes[:5])
    assert outcomes.unclear == [], outcomes.unclear[:10]
    assert sum(outcomes.refused.values()) == CLI_CASES


@pytest.mark.parametrize("argv", [
    ["frobnicate"], ["up", "/nonexistent/x.toml"], ["up", "--param", "n"],
    ["exec", "--run", "labzzzz", "vm1", "--", "true"], ["image", "prune", "--keep", "x"],
])
def test_cli_refusals_end_without_traceback(argv: list[str]) -> None:
    """The same path as a user's shell: a real process, its exit code and stderr."""
    result = subprocess.run([sys.executable, "-m", "lab.cli", *argv], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (1, 2), result
    assert result.stderr.strip() and "Traceback" not in result.stderr, result.stderr
