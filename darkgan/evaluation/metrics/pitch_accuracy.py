"""Pitch accuracy: the share of notes whose f0 lies within 50 cents of the requested MIDI pitch.

f0 estimation: :func:`darkgan.generation.pitch.estimate_f0` when the generation stage provides
it (one implementation for the project), otherwise librosa's probabilistic YIN (Mauch & Dixon,
ICASSP 2014) here: frames of 2048 samples over the first 0.5 s of the 1 s note (the sustained
part; the note-off fade is excluded), search range MIDI 20..108, and the median f0 of the
voiced frames. An unvoiced note counts as wrong.
"""
from __future__ import annotations

import numpy as np

from darkgan.errors import DarkGANError
from darkgan.evaluation.metrics import register_metric
from darkgan.evaluation.metrics._checks import as_vector

SAMPLE_RATE = 16000
#: Tolerance of a correct pitch, in cents.
TOLERANCE_CENTS = 50.0


def midi_to_hz(m) -> np.ndarray:
    """MIDI note number(s) -> Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def cents_error(f0_hz, midi) -> np.ndarray:
    """Signed error in cents of ``f0_hz [n]`` against MIDI pitches ``[n]`` (NaN where f0 is NaN/<=0)."""
    f0 = np.asarray(f0_hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = 1200.0 * np.log2(f0 / midi_to_hz(midi))
    c[~(f0 > 0)] = np.nan
    return c


def _pyin_f0(wave: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    import librosa

    seg = np.asarray(wave, dtype=np.float32)[: sr // 2]
    if not np.any(np.abs(seg) > 1e-5):
        return float("nan")
    f0, voiced, _ = librosa.pyin(seg, fmin=float(midi_to_hz(20)), fmax=float(midi_to_hz(108)), sr=sr,
                                 frame_length=2048, hop_length=256, center=False)
    f0 = f0[voiced & np.isfinite(f0)]
    return float(np.median(f0)) if f0.size else float("nan")


def estimate_f0(waves, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Median f0 in Hz of each note ``waves [n, T]`` -> ``[n]`` (NaN = unvoiced)."""
    try:  # the generation stage's tracker, when present
        from darkgan.generation.pitch import estimate_f0 as shared
    except ImportError:
        shared = None
    waves = np.asarray(waves, dtype=np.float32)
    if waves.ndim == 1:
        waves = waves[None]
    if shared is not None:
        return np.asarray(shared(waves, sr=sr), dtype=np.float64).reshape(len(waves))
    return np.array([_pyin_f0(w, sr) for w in waves])


@register_metric("pitch_accuracy")
def pitch_accuracy(f0_hz, pitch, tolerance_cents: float = TOLERANCE_CENTS, **_) -> dict:
    """Share of ``f0_hz [n]`` within ``tolerance_cents`` of MIDI ``pitch [n]``.

    Returns ``{"pitch_accuracy", "median_abs_cents", "unvoiced", "n"}``.

    Raises:
        DarkGANError: length mismatch or no samples.
    """
    f0 = as_vector(f0_hz, "pitch_accuracy f0")
    p = as_vector(pitch, "pitch_accuracy pitch")
    if len(f0) != len(p) or len(f0) == 0:
        raise DarkGANError(f"pitch_accuracy: {len(f0)} f0 values for {len(p)} pitches")
    c = cents_error(f0, p)
    ok = np.abs(c) <= tolerance_cents
    return {"pitch_accuracy": float(np.mean(ok)), "median_abs_cents": float(np.nanmedian(np.abs(c)))
            if np.isfinite(c).any() else float("nan"), "unvoiced": int(np.isnan(c).sum()), "n": int(len(f0)),
            "tolerance_cents": tolerance_cents}
