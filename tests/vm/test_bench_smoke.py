"""`lanalab bench --quick` end to end on a real guest: the numbers must be sane and
non-zero. No speed target is asserted: targets are reported in summary.md, not tested."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def test_quick_bench_end_to_end(image, tmp_path: Path) -> None:
    from lab.bench.plan import QUICK
    from lab.bench.session import run_session

    lines: list[str] = []
    run_session(QUICK, tmp_path, lines.append)

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["schema"] == "lanalab-bench/1"
    assert results["environment"]["accel"] in ("tcg", "kvm")
    assert results["environment"]["guest"]["kernel"].startswith("6.1")
    points = {p["label"]: p for p in results["points"]}
    expected = {"sender@64", "linux@64", "lana1@64", "lana10@64", "lana50@64",
                "linux@1518", "lana1@1518", "pf_packet@64"}
    assert expected <= set(points), sorted(points)
    for label in expected:
        p = points[label]
        assert p["rounds"] == QUICK.rounds, label
        assert p["min_pps"] > 500, f"{label}: {p}"  # even a loaded TCG guest does more
    # LANA's counter sink saw what entered vb's receive path (nothing lost on the way)
    for s in results["samples"]:
        if s["mode"] == "lana":
            assert s["packets"] == pytest.approx(s["received"], rel=0.02, abs=200), s
    # Rates are only compared as ratios in the report: on a busy host even "sender alone
    # beats sender + receiver" failed once (148.9k vs 154.3k pps), so no order is asserted.
    assert 0 < points["lana1@64"]["ratio_to_linux"] < 2
    assert 0 < points["lana10@64"]["ratio_to_lana1"] < 2
    slope = results["chain_slope"]
    assert slope is not None and slope["ns_per_block"] > 0 and slope["chain_lengths"] == 3
    assert "pf_lana@64" in results["skipped"] or "pf_lana@64" in points
    assert len(results["targets"]) == 3 and len(results["thesis_comparison"]) >= 8
    summary = (tmp_path / "summary.md").read_text()
    assert "Targets" in summary and "Against the thesis" in summary
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "chain-slope-64B.png").stat().st_size > 10_000
    assert (tmp_path / "fig6.2-linux-vs-lana-1-10.png").is_file()
