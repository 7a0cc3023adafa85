"""For the bench CLI's unit tests: which plan `lanalab bench ARGS` hands to the session,
without running one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest


def chosen_plan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *argv: str) -> Any:
    import lab.bench.session as session

    seen = {}

    def fake_session(plan, out, progress, cold_build=False):  # type: ignore[no-untyped-def]
        seen["plan"] = plan
        (out / "summary.md").parent.mkdir(parents=True, exist_ok=True)
        (out / "summary.md").write_text("summary\n")
        return {}

    monkeypatch.setattr(session, "run_session", fake_session)
    args = parser().parse_args(["bench", *argv, "--out", str(tmp_path)])
    assert args.func(args) == 0
    return seen["plan"]


def parser() -> argparse.ArgumentParser:
    from lab.commands import bench

    top = argparse.ArgumentParser()
    bench.register(top.add_subparsers())
    return top
