"""lab.notebook.voice (notebook 05) without VMs: a call's table per direction, the change
script's output and the wire gap figure, from a CallResult built by hand; voice_call
refuses a lab that is not up."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lab.errors import LabError  # noqa: E402
from lab.notebook.session import Lab  # noqa: E402
from lab.notebook.voice import GAP_LIMIT_MS, VoiceCall, call_figure, plot_call, voice_call  # noqa: E402
from lab.voice.analysis import Fidelity, FrameLog  # noqa: E402
from lab.voice.scenario import CallResult, CallSide  # noqa: E402
from lab.voice.wire import WireStream  # noqa: E402

FRAMES = 10  # a 0.2 s call: 10 frames of 20 ms each way

CHANGE = {"change": "change.sh", "start_ms": 1100.0, "end_ms": 2350.0, "exit_code": 0,
          "stdout": "inserted\n", "stderr": "+ fbctl insert meter\n"}


def frame_log(seqs: list[int]) -> FrameLog:
    n = len(seqs)
    return FrameLog(seqs, [20.0 * s for s in seqs], [20.0 * s for s in seqs], [20.0] * n,
                    [0.0] * n, [], [])


def side(vm: str, seqs: list[int], duplicates: int, fid: Fidelity,
         wire: WireStream | None, changes: list[dict] | None = None) -> CallSide:
    return CallSide(vm, {"received": len(seqs) + duplicates, "duplicates": duplicates},
                    frame_log(seqs), fid, fid, changes or [], wire_sent=wire)


def make_call(changes: list[dict] | None = None, vm1_wire: WireStream | None = None,
              vm2_wire: WireStream | None = None) -> VoiceCall:
    # vm1 heard frames 0..9 but 3 and 7; vm2 heard all 10 and one of them twice
    vm1 = side("vm1", [0, 1, 2, 4, 5, 6, 8, 9], 0, Fidelity(40, 0.98765, 17.449), vm1_wire,
               changes)
    vm2 = side("vm2", list(range(FRAMES)), 1, Fidelity(38, 0.99951, 31.06), vm2_wire)
    return VoiceCall(CallResult({"vm1": vm1, "vm2": vm2}), {}, FRAMES)


# vm2's frames on the bridge: wire gaps 20.5 and 140 ms for send gaps of 20 -> path gaps
# 0, 0.5, 120
VM2_WIRE = WireStream([0, 1, 2], [5000.0, 5020.5, 5160.5], [50.0, 70.0, 90.0])
# vm1's frames: sent from 100 ms of vm1's clock, the third one 30.25 ms late on the wire
VM1_WIRE = WireStream([0, 1, 2], [7000.0, 7020.0, 7070.25], [100.0, 120.0, 140.0])


def test_summary_has_one_row_per_direction_with_losses_gaps_and_fidelity() -> None:
    table = make_call(vm2_wire=VM2_WIRE).summary()
    assert table["direction"].tolist() == ["vm2 -> vm1", "vm1 -> vm2"]
    assert table["received"].tolist() == [8, 11]
    assert table["sent"].tolist() == [FRAMES, FRAMES]
    assert table["lost"].tolist() == [2, 0]
    assert table["twice"].tolist() == [0, 1]
    assert table["correlation"].tolist() == [0.988, 1.0]
    assert table["SNR (dB)"].tolist() == [17.4, 31.1]
    # vm2 -> vm1 rides vm2's frames on the wire; vm1's were not captured
    gaps = table["max wire path gap (ms)"]
    assert gaps[0] == 120.0 and pd.isna(gaps[1])


def test_change_is_vm1s_first_change_or_none() -> None:
    assert make_call().change is None
    second = {**CHANGE, "change": "again"}
    assert make_call([CHANGE, second]).change == CHANGE


def test_script_output_without_a_change_script() -> None:
    assert make_call().script_output() == "(no change script ran)"


def test_script_output_has_exit_code_duration_stdout_and_trace() -> None:
    assert make_call([CHANGE]).script_output() == \
        "exit code 0, 1.25 s\ninserted\n+ fbctl insert meter\n"


def test_call_figure_plots_path_gaps_over_send_time_and_shades_the_change() -> None:
    fig = call_figure(make_call([CHANGE], VM1_WIRE, VM2_WIRE), title="with change")
    (ax,) = fig.axes
    assert ax.get_title() == "with change"
    vm1_line, vm2_line, limit = ax.lines
    assert vm1_line.get_label() == "frames vm1 sent (3)"
    assert np.asarray(vm1_line.get_xdata()).tolist() == pytest.approx([0.0, 0.02, 0.04])
    assert np.asarray(vm1_line.get_ydata()).tolist() == pytest.approx([0.0, 0.0, 30.25])
    assert np.asarray(vm2_line.get_ydata()).tolist() == pytest.approx([0.0, 0.5, 120.0])
    assert np.asarray(limit.get_ydata()).tolist() == [GAP_LIMIT_MS, GAP_LIMIT_MS]
    # the script ran 1100..2350 ms of vm1's clock, whose first frame left at 100 ms
    (span,) = ax.patches
    xs = ax.transData.inverted().transform(span.get_verts())[:, 0]
    assert (min(xs), max(xs)) == pytest.approx((1.0, 2.25))
    plt.close(fig)


def test_call_figure_without_capture_has_only_the_limit() -> None:
    fig = plot_call(make_call([CHANGE]))
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_title() == "voice frames on the lab's bridge"
    assert [line.get_label() for line in ax.lines] == ["exercise 5's limit (5 frame periods)"]
    assert not ax.patches  # no vm1 frames: no clock to place the change on
    plt.close(fig)


def test_voice_call_refuses_a_lab_that_is_not_up(tmp_path: Path) -> None:
    script = tmp_path / "change.sh"
    script.write_text("fbctl list\n")
    with pytest.raises(LabError, match=r"this lab is not up; run `lab.up\(\)` first"):
        voice_call(Lab("default"), script)
