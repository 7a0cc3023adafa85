"""The voice call from a notebook (exercise 5): run a call between vm1 and vm2, with or
without a change script in vm1, and look at it: a table per direction, the wire gaps
around the change, the decoded audio as a player and a waveform."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from lab.errors import LabError
from lab.notebook.session import Lab, in_worker_thread
from lab.notebook.show import show
from lab.voice.scenario import VMS, CallResult, Change, ChangePlan, run_voice_call

SCRIPT_DIR = "/tmp/submission"
START_S = 1.0  # as exercise 5's grader: the script starts 1 s after the first frame
PERIOD_MS = 20.0
GAP_LIMIT_MS = 100.0  # exercise 5's grader: 5 periods, half the jitter buffer


@dataclass
class VoiceCall:
    """One call: the scenario's result plus the decoded audio, copied to the host."""

    result: CallResult
    audio: dict[str, Path]  # vm -> what it played (WAV), real time, late frames concealed
    frames: int

    @property
    def change(self) -> dict | None:
        changes = self.result.sides["vm1"].changes
        return changes[0] if changes else None

    def summary(self) -> pd.DataFrame:
        """One row per direction: frames received, lost, twice; gaps; audio fidelity."""
        rows = []
        for i, vm in enumerate(VMS):
            side, peer = self.result.sides[vm], VMS[1 - i]
            wire = self.result.sides[peer].wire_sent
            rows.append({
                "direction": f"{peer} -> {vm}",
                "received": side.summary["received"], "sent": self.frames,
                "lost": len(side.log.lost(self.frames)),
                "twice": side.summary["duplicates"],
                "max wire path gap (ms)": round(max(wire.path_gaps_ms(), default=0.0), 1)
                if wire else None,
                "correlation": round(side.fidelity_received.correlation, 3),
                "SNR (dB)": round(side.fidelity_received.snr_db, 1)})
        return pd.DataFrame(rows)

    def script_output(self) -> str:
        """What the change script printed (its `sh -x` trace included)."""
        change = self.change
        if change is None:
            return "(no change script ran)"
        return (f"exit code {change['exit_code']}, "
                f"{(change['end_ms'] - change['start_ms']) / 1e3:.2f} s\n"
                + change["stdout"] + change["stderr"])


def voice_call(lab: Lab, change_script: Path | None = None, seconds: float = 8.0) -> VoiceCall:
    """A call of `seconds` between vm1 and vm2 (LANA reset first in both), with
    `change_script` run in vm1 (with `sh -e -x`) 1 s after the first frame."""
    if lab.run is None:
        raise LabError("this lab is not up", "run `lab.up()` first")
    run = lab.run
    for vm in VMS:
        lab.vms[vm].reset_lana()
    plans = {}
    if change_script is not None:
        script = Path(change_script)
        lab.vms["vm1"].sh(f"rm -rf {SCRIPT_DIR} && mkdir -p {SCRIPT_DIR}")
        lab.vms["vm1"].put_file(f"{SCRIPT_DIR}/{script.name}", script.read_bytes())
        plans["vm1"] = ChangePlan((Change(START_S, script.name,
                                          f"cd {SCRIPT_DIR} && sh -e -x ./{script.name}"),))
    out = Path(tempfile.mkdtemp(prefix="lanalab-voice-"))
    assert run.fabric is not None
    bridge = run.fabric.bridges["s1"]
    result = in_worker_thread(lambda: run_voice_call(
        {vm: run.vms[vm] for vm in VMS}, seconds, plans, bridge, out / "call.pcap"))
    audio = {}
    for vm in VMS:
        audio[vm] = out / f"{vm}-heard.wav"
        audio[vm].write_bytes(run.vms[vm].get_file("/tmp/voice_out.wav"))
    return VoiceCall(result, audio, int(seconds * 1000 / PERIOD_MS))


def call_figure(call: VoiceCall, title: str | None = None) -> Figure:
    """Per direction, each frame's wire path gap (how much later than its sender spaced it
    the frame reached the bridge) over the time since the sender's first frame (each VM
    has its own clock; both start within ~50 ms); the change script's run shaded."""
    fig, ax = plt.subplots(figsize=(10, 3.4))
    sides = call.result.sides
    starts = {}
    for vm in VMS:
        wire = sides[vm].wire_sent
        if wire is None or not wire.seqs:
            continue
        starts[vm] = wire.sent_ms[0]
        seconds = [(t - starts[vm]) / 1e3 for t in wire.sent_ms]
        ax.plot(seconds, wire.path_gaps_ms(), marker=".", linewidth=0.7,
                label=f"frames {vm} sent ({len(wire.seqs)})")
    change = call.change
    if change is not None and "vm1" in starts:
        t0 = starts["vm1"]  # the script ran in vm1: its times are vm1's clock
        ax.axvspan((change["start_ms"] - t0) / 1e3, (change["end_ms"] - t0) / 1e3,
                   color="orange", alpha=0.2, label="change script running (vm1)")
    ax.axhline(GAP_LIMIT_MS, color="red", linestyle="--", linewidth=0.8,
               label="exercise 5's limit (5 frame periods)")
    ax.set(xlabel="send time (s)", ylabel="wire path gap (ms)",
           title=title or "voice frames on the lab's bridge")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_call(call: VoiceCall, title: str | None = None) -> Figure | None:
    return show(call_figure(call, title))
