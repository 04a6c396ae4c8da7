"""End-of-note burst: the high-frequency share of a note's last 50 ms relative to its body.

Generated notes of the step-15,754 default often end in a broadband burst after 0.95 s (issue 15,
item 7). The measure: the share of the energy above 5 kHz in the last 50 ms, in dB relative to
that share between 0.5 and 0.9 s. Shares, not absolute energies, so that a note that decays or
is faded out (the training crops fade over their last 64 ms) scores about 0 dB like a sustained
one, and only a change of *spectrum* at the end (a broadband click or burst) scores high.
"""
from __future__ import annotations

import numpy as np

#: Band and windows of :func:`tail_burst_db` (Hz, seconds).
BURST_CUTOFF_HZ = 5000.0
TAIL_SECONDS = 0.05
BODY_SECONDS = (0.5, 0.9)


def _band_share(wave: np.ndarray, lo: int, hi: int, sample_rate: int, cutoff: float, floor: float) -> np.ndarray:
    seg = wave[:, lo:hi] * np.hanning(hi - lo)[None, :]
    power = np.abs(np.fft.rfft(seg, axis=-1)) ** 2
    f = np.fft.rfftfreq(hi - lo, 1.0 / sample_rate)
    return (power[:, f >= cutoff].sum(-1) + floor) / (power.sum(-1) + floor)


def tail_burst_db(wave: np.ndarray, sample_rate: int = 16000, floor: float = 1e-12) -> np.ndarray:
    """High-frequency share of the last 50 ms relative to 0.5-0.9 s, in dB, per note.

    Args:
        wave: ``[B, N]`` float waveforms at ``sample_rate`` Hz, ``N >= 0.9 s`` (1 s notes: 16000).
        floor: added to every power (silent notes give 0 dB).

    Returns:
        ``[B]`` float64 dB: ``10 log10(S_tail / S_body)`` with ``S`` the fraction of the
        (Hann-windowed) power above 5 kHz in the window.

    Raises:
        ValueError: not ``[B, N]``, or the notes are shorter than 0.9 s.
    """
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < int(BODY_SECONDS[1] * sample_rate):
        raise ValueError(f"tail_burst_db: expected [B, N >= {int(BODY_SECONDS[1] * sample_rate)}] notes, "
                         f"got {list(x.shape)}")
    n = x.shape[1]
    tail = _band_share(x, n - int(TAIL_SECONDS * sample_rate), n, sample_rate, BURST_CUTOFF_HZ, floor)
    body = _band_share(x, int(BODY_SECONDS[0] * sample_rate), int(BODY_SECONDS[1] * sample_rate),
                       sample_rate, BURST_CUTOFF_HZ, floor)
    return 10.0 * np.log10(tail / body)


def burst_summary(db: np.ndarray, threshold_db: float = 10.0) -> dict:
    """``{"n", "median_db", "share_above"}`` of :func:`tail_burst_db` values (share above
    ``threshold_db``)."""
    db = np.asarray(db, dtype=np.float64)
    return {"n": int(db.size), "median_db": float(np.median(db)), "share_above": float((db > threshold_db).mean())}
