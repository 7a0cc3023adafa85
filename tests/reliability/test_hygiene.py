"""Host hygiene: `lanalab up --foreground` (and grading, where it exists) killed with
SIGKILL at seeded random moments; `lanalab clean --run ID` must then leave no interface,
namespace, bridge, qemu process or socket file of that run, and must not touch a decoy
(a veth pair in a private namespace and a sleep process) the lab did not make."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from lab.reliability.guestvm import REPO_ROOT, report
from lab.reliability.hygiene import Decoy, kill_and_clean

pytestmark = [pytest.mark.vm, pytest.mark.slow]

UP_KILLS = int(os.environ.get("LANALAB_RELIABILITY_KILLS", "4"))


@pytest.fixture
def decoy():
    made = Decoy.create()
    yield made
    made.remove()


def _kills(rng: random.Random, argv: list[str], count: int, latest: float, decoy: Decoy
           ) -> list[dict]:
    results = []
    for _ in range(count):
        delay = round(rng.uniform(0.3, latest), 2)
        result = kill_and_clean(argv, delay, decoy)
        results.append(result.__dict__)
        assert result.leftovers == [], f"after SIGKILL at {delay} s: {result.leftovers}"
        assert result.decoy == [], f"clean touched the decoy: {result.decoy}"
        assert all(code == 0 for code in result.clean_exit), result
    return results


def test_sigkill_during_up_then_clean(image, decoy: Decoy) -> None:
    seed = int(os.environ.get("LANALAB_RELIABILITY_SEED", random.randrange(1 << 30)))
    print(f"\n[reliability] hygiene seed {seed}")
    rng = random.Random(seed)
    results = _kills(rng, ["up", "--foreground"], UP_KILLS, 25.0, decoy)
    report("hygiene_up", {"seed": seed, "kills": len(results),
                          "runs_cleaned": sum(len(r["run_ids"]) for r in results),
                          "resources_recorded": sum(r["recorded"] for r in results),
                          "leftovers": 0, "decoy_touched": 0, "details": results})
    assert any(r["recorded"] for r in results), "no kill came after the lab made anything"


SOLUTION = REPO_ROOT / "exercises" / "01-first-stack" / "solution"


@pytest.mark.skipif(not (REPO_ROOT / "lab" / "commands" / "grade.py").exists()
                    or not SOLUTION.is_dir(), reason="grading is not in this checkout")
def test_sigkill_during_grading_then_clean(image, decoy: Decoy, tmp_path: Path) -> None:
    seed = int(os.environ.get("LANALAB_RELIABILITY_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed + 1)
    argv = ["grade", "1", "--submission", str(SOLUTION), "--out", str(tmp_path / "out")]
    results = _kills(rng, argv, 2, 30.0, decoy)
    report("hygiene_grade", {"seed": seed, "kills": len(results),
                             "runs_cleaned": sum(len(r["run_ids"]) for r in results),
                             "resources_recorded": sum(r["recorded"] for r in results),
                             "leftovers": 0, "decoy_touched": 0, "details": results})
