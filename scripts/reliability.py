#!/usr/bin/env python3
"""Longer reliability campaigns by hand (the test suite runs ~40 s of each):

    .venv/bin/python scripts/reliability.py --minutes 10 [--seed S] [--only storm,fuzz,host]

storm: reconfiguration storm under trafgen load in a fresh guest (N minutes);
fuzz:  bad-input campaign in a fresh guest (N minutes); host: malformed topology files and
CLI arguments (scaled with N). Figures are printed and written to build/reliability/.
With LANALAB_IMAGE_DIR set (the debug image: python -m lab.image.debug_kernel image),
the guests boot that image. Exit status 1 if any campaign found a problem.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.reliability.guestvm import reliability_guest, report, run_guest_program  # noqa: E402


def guest_campaign(module: str, seed: int, seconds: float) -> tuple[dict, list[str]]:
    from lab.image.build import ensure_image

    image = ensure_image(progress=lambda msg: None)
    with reliability_guest(image) as vm:
        figures = run_guest_program(vm, module, ["--seed", str(seed), "--seconds",
                                                 str(seconds)], timeout=seconds * 4 + 600)
        trouble: list[str] = []
        try:
            vm.check_console()
        except Exception as exc:  # noqa: BLE001 - a kernel error is the finding itself
            trouble.append(str(exc))
    problems = trouble + figures.get("kernel_trouble", []) + figures.get("problems", []) \
        + figures.get("model_mismatches", []) + figures.get("kmemleak", [])
    if module == "storm" and (figures["instances_left"] or figures["leaked_module_refs"]):
        problems.append("leaked instances or module references")
    return figures, problems


def host_campaign(seed: int, scale: int) -> tuple[dict, list[str]]:
    from lab.cli import build_parser
    from lab.reliability.host_fuzz import Outcomes, check_cli, check_topologies, cli_cases

    rng, outcomes = random.Random(seed), Outcomes()
    with tempfile.TemporaryDirectory() as folder:
        refused = check_topologies(Path(folder), rng, 300 * scale, outcomes)
        action = next(a for a in build_parser()._actions if a.dest == "command")
        check_cli(cli_cases(rng, 240 * scale, refused, sorted(action.choices)), outcomes)
    return outcomes.figures(), outcomes.crashes + outcomes.unclear


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="per guest campaign")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--only", default="storm,fuzz,host")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed} (rerun with --seed {seed})", flush=True)
    failed = False
    for name in args.only.split(","):
        started = time.monotonic()
        if name == "storm":
            figures, problems = guest_campaign("storm", seed, args.minutes * 60)
        elif name == "fuzz":
            figures, problems = guest_campaign("fuzz_guest", seed, args.minutes * 60)
        elif name == "host":
            figures, problems = host_campaign(seed, max(1, int(args.minutes)))
        else:
            parser.error(f"unknown campaign {name!r} (storm, fuzz, host)")
        figures["wall_seconds"] = round(time.monotonic() - started, 1)
        report(f"campaign_{name}", {"seed": seed, **figures})
        for problem in problems[:20]:
            print(f"  PROBLEM ({name}): {problem}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
