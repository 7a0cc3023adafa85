"""Test audio for the voice call: 16 kHz mono 16-bit PCM (wideband voice), as WAV.

No speech synthesizer is needed: the signal has the parts that matter for a voice codec
and for spotting a lost frame by ear or by numbers: steady tones, a sweep and a voiced,
speech-like segment (a glottal pulse train through moving formant resonances, with
syllable-rate amplitude modulation).
"""

from __future__ import annotations

import io
import wave

import numpy as np

RATE = 16000
FRAME = 320  # 20 ms


def _formant_voice(seconds: float, f0: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))
    phase = np.cumsum(pitch / RATE)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    out = np.zeros(n)
    # two formants that glide, as between vowels
    for f_lo, f_hi, bw in ((400, 800, 80), (1000, 2200, 120)):
        fc = f_lo + (f_hi - f_lo) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.9 * t + rng.random()))
        r = np.exp(-np.pi * bw / RATE)
        y1 = y2 = 0.0
        y = np.empty(n)
        for i in range(n):  # two-pole resonator with a time-varying centre
            c = 2 * r * np.cos(2 * np.pi * fc[i] / RATE)
            y0 = pulses[i] + c * y1 - r * r * y2
            y[i] = y0
            y2, y1 = y1, y0
        out += y / np.max(np.abs(y))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t) ** 2
    return out * syllables


def test_signal(seconds: float = 4.0, variant: int = 0) -> np.ndarray:
    """Float samples in [-1, 1]; `variant` changes pitch and tones so that the two
    directions of a call carry different audio."""
    rng = np.random.default_rng(variant)
    base = 1.0 + 0.25 * variant
    parts = []
    quarter = seconds / 4
    t = np.arange(int(quarter * RATE)) / RATE
    parts.append(0.5 * np.sin(2 * np.pi * 440 * base * t)
                 + 0.2 * np.sin(2 * np.pi * 1300 * base * t))
    f = 200 * base * (20 ** (t / t[-1]))  # sweep 200 Hz .. 4 kHz (x base)
    parts.append(0.5 * np.sin(2 * np.pi * np.cumsum(f) / RATE))
    parts.append(0.6 * _formant_voice(seconds - 2 * quarter, 120 * base, rng))
    x = np.concatenate(parts)
    fade = np.minimum(1, np.minimum(np.arange(len(x)), np.arange(len(x))[::-1]) / 480)
    return np.clip(x * fade, -1, 1)


def to_wav(samples: np.ndarray) -> bytes:
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def from_wav(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != RATE:
            raise ValueError("expected 16-bit mono 16 kHz WAV")
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(float) / 32767
