"""Signal checks used to keep only real pitched notes: silence, harmonicity, duplicate presets.

All functions take mono float waves at 16 kHz (``[T]``) and are numpy-only (no librosa), so
rendering workers stay light.
"""
from __future__ import annotations

import numpy as np
from librosa import midi_to_hz  # MIDI -> Hz, A4 = 69 = 440 Hz (one home: librosa)

from darkgan.data.constants import SAMPLE_RATE  # noqa: E402 (16 kHz)

#: notes whose RMS over the first second is below this (-80 dBFS) are "silent".
SILENCE_RMS = 1e-4




def rms(wave: np.ndarray, start: int = 0, stop: int = SAMPLE_RATE) -> float:
    """Root mean square of ``wave[start:stop]`` (full scale = 1.0)."""
    seg = np.asarray(wave[start:stop], dtype=np.float64)
    return float(np.sqrt(np.mean(seg ** 2))) if seg.size else 0.0


def is_silent(wave: np.ndarray, threshold: float = SILENCE_RMS) -> bool:
    """True when the first second of ``wave`` has RMS below ``threshold`` (default -80 dBFS)."""
    return rms(wave) < threshold


def harmonicity(wave: np.ndarray, pitch: float, sr: int = SAMPLE_RATE, start_s: float = 0.05,
                stop_s: float = 1.0, tolerance: float = 0.1, max_cents: float = 50.0,
                fmax: float = 7000.0) -> tuple[float, float]:
    """How much of a note's spectral energy sits on the harmonics of its expected pitch.

    A Hann-windowed power spectrum of ``wave[start_s:stop_s]`` (seconds; skips the attack
    transient) is split into energy within ``+-tolerance * f0`` Hz of ``k * f0`` (k = 1, 2, ...,
    up to ``fmax`` Hz) over all energy in ``[0.5 f0, fmax]``. ``f0`` is searched within
    ``+-max_cents`` of ``midi_to_hz(pitch)`` (5-cent steps) so detuned samples still count.
    White noise scores about ``2 * tolerance`` (0.2); a clean harmonic tone close to 1; a sound at
    a fixed or wrong pitch (drums, effects, octave-shifted presets) low.

    Args:
        wave: ``[T]`` mono float samples at ``sr`` Hz.
        pitch: expected MIDI pitch.

    Returns:
        ``(score in [0, 1], best f0 in Hz)``; ``(0.0, nan)`` for a silent segment.
    """
    seg = np.asarray(wave[int(start_s * sr):int(stop_s * sr)], dtype=np.float64)
    if seg.size < 256 or not np.any(seg):
        return 0.0, float("nan")
    seg = seg - seg.mean()
    n_fft = 1 << int(np.ceil(np.log2(2 * seg.size)))
    power = np.abs(np.fft.rfft(seg * np.hanning(seg.size), n_fft)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    cum = np.concatenate([[0.0], np.cumsum(power)])

    def band(lo, hi):  # energy in [lo, hi) Hz, vectorised over arrays lo/hi
        i0 = np.searchsorted(freqs, lo)
        i1 = np.searchsorted(freqs, hi)
        return cum[i1] - cum[i0]

    f_exp = midi_to_hz(pitch)
    best = (0.0, float("nan"))
    for cents in np.arange(-max_cents, max_cents + 1e-9, 5.0):
        f0 = f_exp * 2.0 ** (cents / 1200.0)
        top = min(fmax, sr / 2.0)
        total = band(0.5 * f0, top)
        if total <= 0:
            continue
        k = np.arange(1, int(top // f0) + 1)
        on = band(k * f0 - tolerance * f0, np.minimum(k * f0 + tolerance * f0, top)).sum()
        score = float(on / total)
        if score > best[0]:
            best = (score, float(f0))
    return best


def mel_filterbank(n_fft: int = 1024, n_mels: int = 64, sr: int = SAMPLE_RATE,
                   fmin: float = 30.0, fmax: float = 8000.0) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), ``[n_mels, n_fft // 2 + 1]``."""
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel2hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[i] = np.clip(np.minimum(up, down), 0.0, None)
    return fb


_FB = None


def log_mel(wave: np.ndarray, n_samples: int = SAMPLE_RATE, n_fft: int = 1024, hop: int = 256,
            floor_db: float = -100.0) -> np.ndarray:
    """Log-mel spectrogram in dB of the first ``n_samples`` samples: ``[64, frames]`` float32.

    Used as a fingerprint for duplicate detection (Pearson correlation ignores a level offset).
    """
    global _FB
    if _FB is None:
        _FB = mel_filterbank(n_fft)
    x = np.zeros(n_samples, dtype=np.float64)
    w = np.asarray(wave[:n_samples], dtype=np.float64)
    x[:w.size] = w
    n_frames = 1 + (n_samples - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)) ** 2
    mel = _FB @ spec.T
    return (10.0 * np.log10(np.maximum(mel, 10.0 ** (floor_db / 10.0)))).astype(np.float32)


def fingerprint(waves: list[np.ndarray]) -> np.ndarray:
    """Concatenated, flattened log-mel of several probe notes of one preset: ``[D]`` float32."""
    return np.concatenate([log_mel(w).ravel() for w in waves])


def correlation_matrix(fps: np.ndarray) -> np.ndarray:
    """Pearson correlation between the rows of ``fps`` ``[N, D]`` -> ``[N, N]``."""
    x = np.asarray(fps, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x @ x.T
