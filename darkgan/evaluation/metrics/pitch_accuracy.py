"""Pitch accuracy: the share of notes whose f0 lies within 50 cents of the requested MIDI pitch.

f0 estimation: :func:`darkgan.generation.pitch.estimate_f0` (librosa pYIN, the generation
stage's tracker, so that ``darkgan generate`` and ``darkgan evaluate`` agree). The metric here is
the arithmetic on f0 values: cents error against the requested MIDI pitch; a silent or unvoiced
note (NaN f0) counts as wrong.
"""
from __future__ import annotations

import numpy as np
from librosa import midi_to_hz  # MIDI -> Hz, A4 = 69 = 440 Hz (one home: librosa)

from darkgan.errors import DarkGANError
from darkgan.evaluation.metrics import register_metric
from darkgan.evaluation.metrics._checks import as_vector

from darkgan.data.constants import SAMPLE_RATE  # noqa: E402 (16 kHz)
#: Tolerance of a correct pitch, in cents.
TOLERANCE_CENTS = 50.0




def cents_error(f0_hz, midi) -> np.ndarray:
    """Signed error in cents of ``f0_hz [n]`` against MIDI pitches ``[n]`` (NaN where f0 is NaN/<=0)."""
    f0 = np.asarray(f0_hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = 1200.0 * np.log2(f0 / midi_to_hz(midi))
    c[~(f0 > 0)] = np.nan
    return c


def estimate_f0(waves, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Median voiced f0 in Hz of each note ``waves [n, T]`` -> ``[n]`` (NaN = silent/unvoiced),
    by the project's one tracker, :func:`darkgan.generation.pitch.estimate_f0` (librosa pYIN)."""
    from darkgan.generation.pitch import estimate_f0 as shared

    waves = np.asarray(waves, dtype=np.float32)
    if waves.ndim == 1:
        waves = waves[None]
    return np.asarray(shared(waves, sr=sr), dtype=np.float64).reshape(len(waves))


@register_metric("pitch_accuracy")
def pitch_accuracy(f0_hz, pitch, tolerance_cents: float = TOLERANCE_CENTS) -> dict:
    """Share of ``f0_hz [n]`` within ``tolerance_cents`` of MIDI ``pitch [n]``.

    Returns ``{"pitch_accuracy", "median_abs_cents", "unvoiced", "n", "tolerance_cents", "low",
    "high"}``; ``low``/``high``: Wilson score 95 % interval of the share (Wilson 1927).

    Raises:
        DarkGANError: length mismatch or no samples.
    """
    f0 = as_vector(f0_hz, "pitch_accuracy f0")
    p = as_vector(pitch, "pitch_accuracy pitch")
    if len(f0) != len(p) or len(f0) == 0:
        raise DarkGANError(f"pitch_accuracy: {len(f0)} f0 values for {len(p)} pitches")
    c = cents_error(f0, p)
    ok = np.abs(c) <= tolerance_cents
    from scipy.stats import binomtest

    low, high = binomtest(int(ok.sum()), len(ok)).proportion_ci(0.95, method="wilson")
    return {"low": float(low), "high": float(high), "pitch_accuracy": float(np.mean(ok)), "median_abs_cents": float(np.nanmedian(np.abs(c)))
            if np.isfinite(c).any() else float("nan"), "unvoiced": int(np.isnan(c).sum()), "n": int(len(f0)),
            "tolerance_cents": tolerance_cents}
