"""Pitch tracking of 1 s notes with probabilistic YIN, and the pitch-accuracy metric.

Source: Mauch & Dixon, "pYIN: a fundamental frequency estimator using probabilistic threshold
distributions", ICASSP 2014, as implemented by ``librosa.pyin`` (a well-kept implementation).
The metric follows the project issue ("Quality, measured"): the fraction of notes whose
estimated f0 lies within 50 cents of the requested MIDI pitch.

Per note: pYIN runs over the whole 1 s crop (frame 2048 samples = 128 ms, hop 256 = 16 ms,
63 frames at 16 kHz, pitch grid 10 cents) on a search band of MIDI 38..76 by default (the
data's 44..70 widened by 6 semitones, so that octave errors above the low notes and below the
high notes are visible rather than clamped). The note's f0 is the median over the voiced frames.
A note is a *miss* when it is silent (RMS below -60 dBFS), non-finite, has fewer than 3 voiced
frames, or its f0 is off by more than ``cents`` from ``midi_to_hz(midi)``. Octave errors are misses.

Shapes: ``waves [n, T]`` float at ``sr`` Hz (T = 16000 for a DarkGAN note), ``midi [n]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from librosa import midi_to_hz  # MIDI -> Hz, A4 = 69 = 440 Hz (one home: librosa)

#: Default pYIN search band (MIDI): the NSynth range 44..70 widened by 6 semitones each side.
FMIN_MIDI = 38
FMAX_MIDI = 76
FRAME_LENGTH = 2048  #: samples (128 ms at 16 kHz); two periods of MIDI 38 (73 Hz) fit in it
HOP_LENGTH = 256  #: samples (16 ms at 16 kHz)
SILENCE_DB = -60.0  #: RMS (dBFS) below which a note counts as silent
MIN_VOICED_FRAMES = 3  #: fewer voiced pYIN frames than this -> no pitch (a miss)




def hz_to_midi(hz) -> np.ndarray:
    """Frequency in Hz -> fractional MIDI note number (nan for non-positive input)."""
    hz = np.asarray(hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hz > 0, 69.0 + 12.0 * np.log2(hz / 440.0), np.nan)


@dataclass
class PitchReport:
    """Per-note result of :func:`pitch_accuracy`.

    Attributes:
        accuracy: fraction of notes within ``cents`` of their target, in [0, 1] (misses included).
        cents: the tolerance used (cents).
        f0_hz: ``[n]`` median voiced f0 in Hz (nan where no pitch was found).
        error_cents: ``[n]`` signed error ``1200 log2(f0 / target)`` (nan where no pitch).
        hit: ``[n]`` bool, ``|error_cents| <= cents``.
        silent: ``[n]`` bool, RMS below ``SILENCE_DB`` (never a hit).
        nonfinite: ``[n]`` bool, the waveform holds NaN or inf (never a hit).
        voiced_fraction: ``[n]`` fraction of pYIN frames marked voiced.
        octave_error: ``[n]`` bool, off by 12 +- 0.5 semitones (or 24) — a subset of the misses.
    """

    accuracy: float
    cents: float
    f0_hz: np.ndarray
    error_cents: np.ndarray
    hit: np.ndarray
    silent: np.ndarray
    nonfinite: np.ndarray
    voiced_fraction: np.ndarray
    octave_error: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def summary(self) -> dict:
        """Counts for reports: n, hits, accuracy, silent, nonfinite, unvoiced, octave errors,
        median |error| in cents over the notes with a pitch."""
        has_f0 = np.isfinite(self.error_cents)
        return {
            "n": int(len(self.hit)),
            "hits": int(self.hit.sum()),
            "accuracy": float(self.accuracy),
            "cents": float(self.cents),
            "silent": int(self.silent.sum()),
            "nonfinite": int(self.nonfinite.sum()),
            "no_pitch": int((~has_f0).sum()),
            "octave_errors": int(self.octave_error.sum()),
            "median_abs_error_cents": float(np.median(np.abs(self.error_cents[has_f0]))) if has_f0.any() else None,
        }


def estimate_f0(waves, sr: int = 16000, fmin_midi: float = FMIN_MIDI, fmax_midi: float = FMAX_MIDI) -> np.ndarray:
    """Median voiced f0 of each note, ``waves [n, T] -> f0_hz [n]`` (nan: silent, non-finite
    or unvoiced). The project's one pitch tracker (also used by ``darkgan.evaluation``);
    see :func:`track_f0` for the per-note detail and the arguments."""
    return track_f0(waves, sr, fmin_midi, fmax_midi)[0]


def track_f0(waves, sr: int = 16000, fmin_midi: float = FMIN_MIDI, fmax_midi: float = FMAX_MIDI,
             chunk: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median voiced f0 of each note with ``librosa.pyin``, with per-note detail.

    Args:
        waves: ``[n, T]`` (or ``[T]``) float waveform at ``sr`` Hz; numpy or torch.
        sr: sample rate in Hz.
        fmin_midi, fmax_midi: the pYIN search band in MIDI note numbers.
        chunk: notes per pYIN call (pYIN is batched over the leading axis; memory ~ chunk).

    Returns:
        ``(f0_hz [n], voiced_fraction [n], silent [n] bool, nonfinite [n] bool)``; ``f0_hz`` is
        nan for silent, non-finite and unvoiced notes.

    Raises:
        ValueError: ``waves`` is not 1-D or 2-D, or the band is empty.
    """
    import librosa

    w = _as_numpy(waves)
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2:
        raise ValueError(f"expected waves [n, T], got shape {list(w.shape)}")
    if not fmin_midi < fmax_midi:
        raise ValueError(f"empty pitch band: MIDI {fmin_midi}..{fmax_midi}")
    n = w.shape[0]
    nonfinite = ~np.isfinite(w).all(axis=1)
    safe = np.where(np.isfinite(w), w, 0.0).astype(np.float32)
    rms = np.sqrt(np.mean(safe.astype(np.float64) ** 2, axis=1))
    with np.errstate(divide="ignore"):
        silent = (20 * np.log10(np.maximum(rms, 1e-20)) < SILENCE_DB) & ~nonfinite
    f0 = np.full(n, np.nan)
    voiced_fraction = np.zeros(n)
    todo = np.flatnonzero(~silent & ~nonfinite)
    fmin, fmax = float(midi_to_hz(fmin_midi)), float(midi_to_hz(fmax_midi))
    for start in range(0, len(todo), chunk):
        idx = todo[start:start + chunk]
        x = safe[idx]
        # pYIN is amplitude-invariant in principle, but normalising keeps quiet notes away from
        # its absolute-threshold corner cases.
        x = x / np.maximum(np.abs(x).max(axis=1, keepdims=True), 1e-9)
        track, voiced, _ = librosa.pyin(x, fmin=fmin, fmax=fmax, sr=sr, frame_length=FRAME_LENGTH,
                                        hop_length=HOP_LENGTH)
        track = np.atleast_2d(track)
        voiced = np.atleast_2d(voiced)
        for j, i in enumerate(idx):
            v = track[j][voiced[j] & np.isfinite(track[j])]
            voiced_fraction[i] = voiced[j].mean()
            if len(v) >= MIN_VOICED_FRAMES:
                f0[i] = float(np.median(v))
    return f0, voiced_fraction, silent, nonfinite


def pitch_accuracy(waves, midi, cents: float = 50.0, sr: int = 16000, fmin_midi: float = FMIN_MIDI,
                   fmax_midi: float = FMAX_MIDI, return_report: bool = False):
    """Fraction of notes whose pYIN f0 is within ``cents`` of the requested MIDI pitch.

    Args:
        waves: ``[n, T]`` float waveform at ``sr`` Hz (numpy or torch); n >= 1.
        midi: ``[n]`` requested MIDI pitch per note (or one int for all).
        cents: tolerance in cents (50 = a quarter tone either side, the issue's criterion).
        sr, fmin_midi, fmax_midi: see :func:`track_f0`.
        return_report: also return the per-note :class:`PitchReport`.

    Returns:
        ``accuracy`` in [0, 1], or ``(accuracy, PitchReport)`` with ``return_report=True``.
        Silent, non-finite and unvoiced notes count as misses.

    Raises:
        ValueError: empty input, or ``midi`` does not match ``n``.
    """
    w = _as_numpy(waves)
    if w.ndim == 1:
        w = w[None]
    n = w.shape[0]
    if n == 0:
        raise ValueError("pitch_accuracy needs at least one note")
    target = np.broadcast_to(np.asarray(midi, dtype=np.float64), (n,)) if np.ndim(midi) == 0 \
        else np.asarray(midi, dtype=np.float64)
    if target.shape != (n,):
        raise ValueError(f"midi has shape {list(target.shape)}, expected [{n}]")
    f0, voiced_fraction, silent, nonfinite = track_f0(w, sr, fmin_midi, fmax_midi)
    err = 100.0 * (hz_to_midi(f0) - target)
    hit = np.isfinite(err) & (np.abs(err) <= cents)
    semis = np.abs(err) / 100.0
    octave = np.isfinite(err) & ((np.abs(semis - 12) <= 0.5) | (np.abs(semis - 24) <= 0.5))
    report = PitchReport(float(hit.mean()), float(cents), f0, err, hit, silent, nonfinite,
                         voiced_fraction, octave)
    return (report.accuracy, report) if return_report else report.accuracy


def _as_numpy(waves) -> np.ndarray:
    if hasattr(waves, "detach"):  # torch tensor, without importing torch here
        waves = waves.detach().float().cpu().numpy()
    return np.asarray(waves, dtype=np.float32)
