"""Listen to and look at audio (the voice exercise records calls through LANA): a WAV
file as an inline player and as a waveform plot."""

from __future__ import annotations

import wave
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from lab.notebook.show import show


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """-> (samples as float in [-1, 1], first channel; sample rate). 8/16/32-bit PCM."""
    with wave.open(str(path), "rb") as w:
        width, rate, channels = w.getsampwidth(), w.getframerate(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128) / 128
    elif width in (2, 4):
        kind = np.int16 if width == 2 else np.int32
        data = np.frombuffer(raw, dtype=kind).astype(np.float64) / float(np.iinfo(kind).max)
    else:
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported (8, 16, 32)")
    return data[::channels], rate


def play_audio(path: str | Path):  # -> IPython.display.Audio
    """An inline audio player for a WAV file (in a notebook cell)."""
    from IPython.display import Audio

    samples, rate = read_wav(path)
    return Audio(samples, rate=rate)


def waveform_figure(path: str | Path, title: str | None = None) -> Figure:
    samples, rate = read_wav(path)
    seconds = np.arange(len(samples)) / rate
    fig, ax = plt.subplots(figsize=(10, 2.6))
    ax.plot(seconds, samples, linewidth=0.6)
    ax.set(xlabel="time (s)", ylabel="amplitude", ylim=(-1.05, 1.05),
           title=title or Path(path).name)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_waveform(path: str | Path, title: str | None = None) -> Figure | None:
    """The waveform of a WAV file: gaps show lost packets, clipping shows bad gain."""
    return show(waveform_figure(path, title))
