"""The notebook API without VMs: block graphs, tables and figures from fixture procfs text
(the format of docs/kernel/procfs.md), counter rates, audio and the kernel spec."""

from __future__ import annotations

import json
import sys
import wave
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from lab.notebook.audio import read_wav, waveform_figure  # noqa: E402
from lab.notebook.draw import block_graph_figure, packet_path_figure  # noqa: E402
from lab.notebook.graph import bindings, block_graph, layers, layout  # noqa: E402
from lab.notebook.kernelspec import KERNEL_NAME, kernel_spec  # noqa: E402
from lab.notebook.snapshot import parse_snapshot  # noqa: E402
from lab.notebook.tables import blocks_table, counters_table, ppe_table  # noqa: E402
from lab.notebook.watch import counters_figure, pps_figure, with_rates  # noqa: E402

# Thesis appendix C.3 (exercise 2): eth0 <- fb2 (tee) <- fb3/fb5 (bpf) <- fb4/fb6 (counter),
# plus an explicit subscription of fb6 to fb4 and a lone counter.
C3_FBLOCKS = """\
eth0 eth 1 4 [in:2] [2] [2] 0
fb2 tee 2 10 [out:1,in:3,in:5] [1,3,5] [1,3,5] 0
fb3 bpf 3 7 [out:2,in:4] [2,4] [2,4] 0
fb4 counter 4 5 [out:3] [3] [3,6] 0
fb5 bpf 5 7 [out:2,in:6] [2,6] [2,6] 0
fb6 counter 6 5 [out:5] [5,4] [5] 1
lonely counter 7 1 [] [] [] 0
"""

SNAPSHOT = f"""\
## fblocks
{C3_FBLOCKS}## counters
fb4 12 1200
fb6 3 192
lonely 0 0
## ppe
CPU0: 40 3000 120 5 0
CPU1: 2 128 6 0 1
## end
"""


def test_graph_has_one_edge_per_binding_lower_to_upper() -> None:
    graph = block_graph(C3_FBLOCKS)
    assert set(graph.nodes) == {"eth0", "fb2", "fb3", "fb4", "fb5", "fb6", "lonely"}
    assert sorted(bindings(graph)) == sorted([("eth0", "fb2"), ("fb2", "fb3"), ("fb2", "fb5"),
                                              ("fb3", "fb4"), ("fb5", "fb6")])
    assert graph.nodes["fb2"]["type"] == "tee" and graph.nodes["fb2"]["idp"] == 2


def test_explicit_subscription_is_its_own_edge_kind() -> None:
    graph = block_graph(C3_FBLOCKS)
    assert graph.edges["fb4", "fb6"]["kind"] == "subscription"
    # bindings subscribe both ends to each other: they are not listed a second time
    assert not graph.has_edge("fb3", "fb2")


def test_layers_and_layout_draw_stacks_upwards() -> None:
    graph = block_graph(C3_FBLOCKS)
    assert layers(graph) == {"eth0": 0, "fb2": 1, "fb3": 2, "fb5": 2, "fb4": 3, "fb6": 3,
                             "lonely": 0}
    pos = layout(graph)
    assert pos["fb2"][0] == pytest.approx(pos["eth0"][0])
    # the tee's two branches straddle it, and each counter sits above its filter
    assert pos["fb3"][0] < pos["fb2"][0] < pos["fb5"][0]
    assert pos["fb4"][0] == pytest.approx(pos["fb3"][0])
    assert pos["fb6"][0] == pytest.approx(pos["fb5"][0])
    xs_level0 = sorted(x for n, (x, y) in pos.items() if y == 0)
    assert xs_level0[1] - xs_level0[0] >= 1.0


def test_a_cycle_of_bindings_does_not_hang_the_layout() -> None:
    graph = block_graph("a fwd 1 3 [out:2,in:2] [] [] 0\nb fwd 2 3 [out:1,in:1] [] [] 0\n")
    assert set(layout(graph)) == {"a", "b"}


def test_snapshot_sections_parse() -> None:
    snap = parse_snapshot(SNAPSHOT, taken=1.0)
    assert snap.loaded and list(snap.blocks)[:2] == ["eth0", "fb2"]
    assert (snap.counters["fb4"].packets, snap.counters["fb4"].bytes) == (12, 1200)
    assert [c.cpu for c in snap.ppe] == [0, 1]


def test_snapshot_without_lana_loaded_is_empty() -> None:
    snap = parse_snapshot("## fblocks\n## counters\n## ppe\n## end\n")
    assert not snap.loaded and snap.blocks == {} and snap.counters == {}


def test_truncated_snapshot_is_an_error() -> None:
    with pytest.raises(ValueError, match="incomplete"):
        parse_snapshot("## fblocks\neth0 eth 1 1 [] [] [] 0\n")


def test_tables_name_the_bindings() -> None:
    snap = parse_snapshot(SNAPSHOT)
    table = blocks_table(snap.blocks).set_index("name")
    assert table.loc["fb2", "sits on"] == "eth0"
    assert table.loc["fb2", "carries"] == "fb3, fb5"
    assert table.loc["lonely", "sits on"] == ""
    counters = counters_table(snap.counters).set_index("name")
    assert counters.loc["fb6", "packets"] == 3
    ppe = ppe_table(snap.ppe).set_index("cpu")
    assert ppe.loc["total", "packets"] == 42 and ppe.loc["total", "drops"] == 5


# The API's figures from fixture data, kept for a reviewer next to the notebooks' figures.
API_FIGURES = Path(__file__).resolve().parents[2] / "build" / "notebook-figures" / "api"


def _png(fig: matplotlib.figure.Figure, path: Path) -> Path:
    fig.savefig(path)
    assert path.stat().st_size > 5000  # something was drawn
    API_FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(API_FIGURES / path.name)
    return path


def test_block_graph_figure_draws_every_block(tmp_path: Path) -> None:
    fig = block_graph_figure(block_graph(C3_FBLOCKS), "C.3", {"fb4": 12, "fb6": 3})
    texts = [t.get_text() for t in fig.axes[0].texts]
    for name in ("eth0", "fb2", "fb3", "fb4", "fb5", "fb6", "lonely"):
        assert any(t.startswith(name + "\n") for t in texts), name
    assert any("12 pkts" in t for t in texts)
    _png(fig, tmp_path / "c3.png")


def test_empty_graph_says_so(tmp_path: Path) -> None:
    fig = block_graph_figure(block_graph(""))
    assert "no LANA instances" in [t.get_text() for t in fig.axes[0].texts]


def test_packet_path_figure_renders(tmp_path: Path) -> None:
    _png(packet_path_figure(), tmp_path / "path.png")


def test_rates_per_block(tmp_path: Path) -> None:
    samples = pd.DataFrame({"time": [0.0, 0.0, 1.0, 1.0, 2.0, 2.0],
                            "block": ["c1", "c2"] * 3,
                            "packets": [0, 5, 10, 5, 30, 6], "bytes": [0] * 6})
    rates = with_rates(samples)
    c1 = rates[rates.block == "c1"]["pps"].tolist()
    assert c1 == [0.0, 10.0, 20.0]
    assert rates[rates.block == "c2"]["pps"].tolist() == [0.0, 0.0, 1.0]
    _png(counters_figure(rates), tmp_path / "counters.png")


def test_pps_figure_one_line_per_setup(tmp_path: Path) -> None:
    results = pd.DataFrame({"setup": ["Linux"] * 3 + ["LANA, 1 FB"] * 3,
                            "size": [64, 512, 1500] * 2,
                            "pps": [1.38e6, 0.23e6, 0.08e6, 1.37e6, 0.23e6, 0.08e6]})
    fig = pps_figure(results)
    assert [line.get_label() for line in fig.axes[0].lines] == ["Linux", "LANA, 1 FB"]
    _png(fig, tmp_path / "pps.png")


def test_wav_is_read_as_floats(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    rate = 8000
    tone = (np.sin(2 * np.pi * 440 * np.arange(rate // 10) / rate) * 16000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(tone.tobytes())
    samples, got_rate = read_wav(path)
    assert got_rate == rate and len(samples) == rate // 10
    assert 0.45 < samples.max() < 0.5
    _png(waveform_figure(path), tmp_path / "wave.png")


def test_kernel_spec_runs_this_python() -> None:
    spec = kernel_spec()
    assert spec["argv"][0] == sys.executable  # type: ignore[index]
    assert "{connection_file}" in spec["argv"]  # type: ignore[operator]
    assert KERNEL_NAME == "lanalab"
    json.dumps(spec)
