"""lab.notebook.measure (notebook 06) without VMs: measure.sh's output parsed into a table
through a fake guest, the medians, report.toml's figures and text, the chain figure."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from typing import cast

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lab.grading.exercise import find_exercise  # noqa: E402
from lab.notebook.measure import (  # noqa: E402
    GUEST_TOOL,
    chain_figure,
    measure_chain,
    medians,
    plot_chain,
    report_figures,
    report_toml,
)
from lab.notebook.nodes import CommandFailed, VmNode  # noqa: E402
from lab.vm.backends import LabVM  # noqa: E402
from lab.vm.qga import ExecResult  # noqa: E402

# What `bash measure.sh 2 0.5 "1 4"` prints on a chain of N = 4 (round 2 runs backwards).
MEASURE_OUT = """\
chain: vb -> fwd1 .. fwd4 -> sink; 2 rounds of 0.5 s per point
point 1 linux 100000
point 1 lana1 80000
point 1 lana4 64000
point 2 lana4 66000
point 2 lana1 82000
point 2 linux 104000
median linux 102000
median lana1 81000
median lana4 65000
"""


class FakeGuest:
    """The guest end of a VmNode: records files and commands, answers with canned output."""

    def __init__(self, stdout: str = "", stderr: str = "", exit_code: int = 0) -> None:
        self.result = (stdout, stderr, exit_code)
        self.files: dict[str, bytes | str] = {}
        self.commands: list[tuple[list[str], float]] = []

    def exec(self, argv: Sequence[str] | str, timeout: float = 60.0) -> ExecResult:
        self.commands.append((list(argv), timeout))
        return ExecResult(*self.result)

    def put_file(self, path: str, data: bytes | str) -> None:
        self.files[path] = data


def node(guest: FakeGuest) -> VmNode:
    return VmNode("vm1", cast(LabVM, guest))


def results(rows: list[tuple[int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"round": r, "point": p, "blocks": 0 if p == "linux" else int(p[4:]),
                          "pps": pps} for r, p, pps in rows])


def test_measure_chain_copies_measure_sh_and_runs_it_with_rounds_seconds_and_lengths() -> None:
    guest = FakeGuest(MEASURE_OUT)
    measure_chain(node(guest), [1, 4], rounds=2, seconds=0.5)
    tool = find_exercise("06-measure-lana").path / "tools" / "measure.sh"
    assert guest.files == {GUEST_TOOL: tool.read_bytes()}
    # one sh -c; timeout 120 s + 2 rounds * 3 points * (0.5 + 3) s
    assert guest.commands == [(["sh", "-c", "bash /tmp/measure-lana.sh 2 0.5 '1 4'"], 198.0)]


def test_measure_chain_parses_point_lines_only() -> None:
    table = measure_chain(node(FakeGuest(MEASURE_OUT)), [1, 4], rounds=2)
    assert list(table.columns) == ["round", "point", "blocks", "pps"]
    assert table.values.tolist() == [
        [1, "linux", 0, 100000.0], [1, "lana1", 1, 80000.0], [1, "lana4", 4, 64000.0],
        [2, "lana4", 4, 66000.0], [2, "lana1", 1, 82000.0], [2, "linux", 0, 104000.0]]


def test_measure_chain_without_point_lines_is_an_empty_table() -> None:
    table = measure_chain(node(FakeGuest("chain: vb -> fwd1 .. fwd4 -> sink\n")), [1, 4])
    assert table.empty and list(table.columns) == ["round", "point", "blocks", "pps"]


def test_measure_chain_raises_with_measure_sh_message_when_it_fails() -> None:
    guest = FakeGuest(stderr="measure.sh: no veth pair va/vb: run chain.sh first\n",
                      exit_code=1)
    with pytest.raises(CommandFailed, match=r"exit code 1: measure.sh: no veth pair va/vb"):
        measure_chain(node(guest), [1, 4])


def test_medians_per_point_keep_measure_sh_order() -> None:
    med = medians(results([(1, "linux", 100), (1, "lana1", 80), (1, "lana4", 60),
                           (2, "lana4", 70), (2, "lana1", 90), (2, "linux", 103),
                           (3, "linux", 101), (3, "lana1", 85), (3, "lana4", 30)]))
    assert med.to_dict() == {"linux": 101.0, "lana1": 85.0, "lana4": 60.0}
    assert list(med.index) == ["linux", "lana1", "lana4"]


def test_report_figures_from_medians() -> None:
    table = measure_chain(node(FakeGuest(MEASURE_OUT)), [1, 4], rounds=2)
    # medians: linux 102000, lana1 81000, lana4 65000;
    # ns per block: (1e9 / 65000 - 1e9 / 81000) / 3 = (15384.6 - 12345.7) / 3 = 1013.0
    assert report_figures(table, 4) == {
        "blocks": 4, "linux_pps": 102000, "lana1_pps": 81000, "lanaN_pps": 65000,
        "lana1_vs_linux": 0.79, "lanaN_vs_lana1": 0.8, "ns_per_block": 1013.0}


def test_report_figures_need_the_lanaN_point() -> None:
    table = results([(1, "linux", 100000), (1, "lana1", 80000), (1, "lana4", 64000)])
    with pytest.raises(KeyError, match="lana10"):
        report_figures(table, 10)


def test_report_toml_is_valid_toml_with_the_figures() -> None:
    figures = {"blocks": 10, "linux_pps": 112944, "lana1_pps": 84132, "lanaN_pps": 75687,
               "lana1_vs_linux": 0.74, "lanaN_vs_lana1": 0.9, "ns_per_block": 147.3}
    text = report_toml(figures)
    assert text.splitlines()[:2] == ["blocks = 10", "linux_pps = 112944"]
    assert tomllib.loads(text) == figures


def test_report_toml_writes_millions_of_pps_in_full() -> None:
    # a KVM guest passes 1 Mpps: the figure must stay as measure.sh printed it
    text = report_toml({"linux_pps": 2345678, "lana1_pps": 1000004})
    assert text == "linux_pps = 2345678\nlana1_pps = 1000004\n"


def test_chain_figure_fits_the_cost_of_one_block() -> None:
    # 1e9 / pps = 10000 + 500 * blocks ns exactly, Linux 8000 ns per packet
    table = results([(r, p, 1e9 / ns) for r in (1, 2) for p, ns in
                     (("linux", 8000), ("lana1", 10500), ("lana2", 11000), ("lana4", 12000))])
    fig = chain_figure(table, title="four points")
    rate, cost = fig.axes
    assert fig.get_suptitle() == "four points"
    legend = cost.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert "fit: 500 ns per block (r² 1.00)" in labels
    assert np.asarray(cost.lines[0].get_ydata()).tolist() == pytest.approx([10500, 11000, 12000])
    # Linux's median as a dashed line: 1e9 / 8000 ns
    assert np.asarray(rate.lines[0].get_ydata()).tolist() == pytest.approx([125000, 125000])
    plt.close(fig)


def test_plot_chain_returns_the_figure_outside_a_notebook() -> None:
    table = results([(1, "linux", 100000), (1, "lana1", 80000), (1, "lana4", 64000)])
    fig = plot_chain(table, title="t")
    assert isinstance(fig, Figure)
    plt.close(fig)
