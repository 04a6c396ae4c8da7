"""Sustain past the generated second: loop points, a baked crossfade, velocity layers.

A generated note is 1 s long and fades out over its last 64 ms (:func:`darkgan.data.magif.
magif_to_note`). A sampler sustains a held key by looping a region ``[start, end)`` of the sample
until note-off, then applies the release envelope (SF2 ``sampleModes = 1``, SFZ
``loop_mode=loop_continuous``). :func:`find_loop` chooses the region, :func:`crossfade_loop`
bakes a crossfade into the samples before ``end`` so the jump ``end -> start`` is seamless (the
standard sample-editor technique: the last ``X`` samples of the loop are faded into the ``X``
samples before ``start``, so sample ``end - 1`` continues into sample ``start``).

Velocity layers (:func:`velocity_layers`): the models have no velocity input, so softer layers are
the same note low-passed (less bright, as acoustic instruments are when played softly); the
loudness change is left to the player's velocity curve (:func:`velocity_gain`).
"""
from __future__ import annotations

import numpy as np

from darkgan.data.magif import SAMPLE_RATE


def find_loop(wave: np.ndarray, f0_hz: float, min_s: float = 0.15, max_s: float = 0.4, end_s: float = 0.9,
              crossfade_s: float = 0.05, search_s: float = 0.15, sr: int = SAMPLE_RATE) -> tuple[int, int]:
    """The loop ``(start, end)`` (samples, half-open) of a note that joins best.

    Candidates: ends on a 2 ms grid over ``[end_s - search_s, end_s]``, lengths whole numbers of
    periods ``round(k * sr / f0)`` within ``[min_s, max_s]``. Score of a pair: the normalised
    cross-correlation of the crossfade windows before ``start`` and before ``end`` (they are
    blended, so they must be in phase) minus ``|ln(RMS ratio)|`` (a stable level). Window sums
    come from cumulative sums (of ``x^2`` and, per length L, of ``x[t] x[t + L]``): O(N) a length.

    Args:
        wave: ``[N]`` float, one note (N >= end_s * sr).
        f0_hz: its fundamental (Hz; the key's nominal pitch when unknown).
        min_s, max_s, end_s, crossfade_s, search_s: seconds (see above).

    Returns:
        ``(start, end)`` with ``0 < start < end <= N`` and ``start >= crossfade`` samples.
    """
    x = np.asarray(wave, dtype=np.float64)
    period = sr / float(f0_hz)
    xf = max(int(round(crossfade_s * sr)), 64)
    ks = np.arange(max(1, int(np.ceil(min_s * sr / period))), int(max_s * sr / period) + 1)
    lengths = np.unique(np.round(ks * period).astype(np.int64)) if len(ks) else np.array([int(min_s * sr)])
    last = min(int(end_s * sr), len(x))
    ends = np.arange(last, max(last - int(search_s * sr), xf + int(lengths.max()) + 1), -int(0.002 * sr))
    energy = np.r_[0.0, np.cumsum(x * x)]
    e_rms = np.sqrt((energy[ends] - energy[ends - xf]) / xf) + 1e-9
    best, best_score = (int(ends[0] - lengths[0]), int(ends[0])), -np.inf
    for n in lengths:
        starts = ends - n
        ok = starts >= xf
        if not ok.any():
            continue
        s, e, rb = starts[ok], ends[ok], e_rms[ok]
        lag = np.r_[0.0, np.cumsum(x[:-n] * x[n:])]  # lag[i] = sum_{t < i} x[t] x[t + n]
        ra = np.sqrt((energy[s] - energy[s - xf]) / xf) + 1e-9
        ncc = (lag[s] - lag[s - xf]) / xf / (ra * rb)
        score = ncc - np.abs(np.log(ra / rb))
        i = int(np.argmax(score))
        if score[i] > best_score:
            best, best_score = (int(s[i]), int(e[i])), float(score[i])
    return best


def crossfade_loop(wave: np.ndarray, start: int, end: int, crossfade: int) -> np.ndarray:
    """``wave [..., N]`` with its ``crossfade`` samples before ``end`` faded into those before
    ``start`` (equal-gain sine-squared fade), so looping ``[start, end)`` has no jump.

    Raises:
        ValueError: ``crossfade > start`` or ``start >= end``.
    """
    if not 0 <= crossfade <= start < end:
        raise ValueError(f"crossfade {crossfade} must fit before loop start {start} < end {end}")
    y = np.array(wave, dtype=np.float32, copy=True)
    if crossfade == 0:
        return y
    w = np.sin(0.5 * np.pi * (np.arange(crossfade) + 1) / crossfade) ** 2
    tail, head = y[..., end - crossfade:end].copy(), y[..., start - crossfade:start]
    y[..., end - crossfade:end] = (1 - w) * tail + w * head
    return y


def velocity_ranges(n: int) -> list[tuple[int, int]]:
    """``n`` MIDI velocity ranges splitting 0..127 evenly (inclusive bounds, the first from 0)."""
    his = [int(round(127 * (i + 1) / n)) for i in range(n)]
    return [(0 if i == 0 else his[i - 1] + 1, hi) for i, hi in enumerate(his)]


def velocity_gain(velocity) -> np.ndarray:
    """Amplitude of a MIDI velocity 1..127: ``(v / 127) ** 2`` (= -40 log10(127 / v) dB, the
    SoundFont 2.01 default velocity-to-attenuation curve, Sec. 8.4.2; SFZ ``amp_veltrack=100``)."""
    return (np.clip(np.asarray(velocity, dtype=np.float64), 0, 127) / 127.0) ** 2


def velocity_layers(waves: np.ndarray, f0_hz: np.ndarray, n_layers: int, soft_harmonics: float = 4.0,
                    sr: int = SAMPLE_RATE) -> np.ndarray:
    """``[V, P, N]`` velocity layers of notes ``waves [P, N]`` with fundamentals ``f0_hz [P]``.

    Layer ``V - 1`` (the loudest) is the note itself; layer ``i`` is low-passed (2nd-order
    Butterworth, zero phase so onsets and loop points do not move) at ``f0 * h_i`` with ``h_i``
    rising geometrically from ``soft_harmonics`` (layer 0) to the Nyquist frequency. A brightness
    change only: no level change is baked in (see :func:`velocity_gain`).
    """
    from scipy.signal import butter, sosfiltfilt

    waves = np.asarray(waves, dtype=np.float32)
    out = np.repeat(waves[None], n_layers, axis=0)
    for p, f0 in enumerate(np.asarray(f0_hz, dtype=np.float64)):
        top = 0.45 * sr / f0
        for i in range(n_layers - 1):
            h = soft_harmonics * (top / soft_harmonics) ** (i / max(n_layers - 1, 1))
            cutoff = min(f0 * h, 0.45 * sr)
            sos = butter(2, cutoff, btype="low", fs=sr, output="sos")
            out[i, p] = sosfiltfilt(sos, waves[p]).astype(np.float32)
    return out


def retune(wave: np.ndarray, cents: float, fade_s: float = 0.064, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``wave [N]`` re-pitched by ``-cents`` (a sampler's pitch correction, baked in): resampled
    (soxr, VHQ) so that played at ``sr`` its pitch drops by ``cents``; cut or zero-padded back to
    N samples, a cut end faded out again over ``fade_s`` (the data's 64 ms fade)."""
    import soxr

    x = np.asarray(wave, dtype=np.float32)
    if not np.isfinite(cents) or abs(cents) < 1:
        return x.copy()
    y = soxr.resample(x.astype(np.float64), sr, sr * 2 ** (cents / 1200.0), quality="VHQ").astype(np.float32)
    if len(y) >= len(x):
        y = y[:len(x)].copy()
        nf = int(fade_s * sr)
        y[-nf:] *= np.cos(0.5 * np.pi * np.arange(1, nf + 1) / nf) ** 2
        return y
    return np.pad(y, (0, len(x) - len(y)))


def normalise_levels(layers: np.ndarray, peak_db: float = -1.0, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Even loudness over the keyboard: layers ``[V, P, N]`` with every key scaled (all its layers
    by one gain) to the same RMS of its loudest layer over 0.05-0.9 s, then the whole instrument
    by one gain so its highest peak is ``peak_db`` dBFS. Returns ``(layers, per-key gain [P])``.

    The models' notes are quiet (the shipped checkpoints peak near -10 dBFS) and their level
    varies from key to key; a sampler instrument should not.
    """
    body = layers[-1, :, int(0.05 * sr):int(0.9 * sr)].astype(np.float64)
    rms = np.sqrt((body ** 2).mean(1)) + 1e-9
    gain = np.median(rms) / rms
    out = layers * gain[None, :, None]
    top = float(np.abs(out).max()) + 1e-12
    scale = 10 ** (peak_db / 20) / top
    return (out * scale).astype(np.float32), gain * scale
