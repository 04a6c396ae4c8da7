"""The ends of a note: the onset burst, and the high-frequency burst and fade-out at the end
(issue 15, item 7).

Generated notes of the step-15,754 default end abruptly: every training crop is faded out over
its last 64 ms (:data:`darkgan.data.magif.FADE_OUT_SAMPLES`, as the reference), but the generator
does not reproduce the fade: a fade inside the last two STFT frames needs phase-consistent
cancellation between overlapping frames, which generated MAG-IF does not have. Measured on 300
real crops and 216 generated notes, the RMS of the last 10 ms is -33 dB re the note's body for
real notes and +0.9 dB for generated ones: the note is cut, which sounds as a click and shows as
a broadband burst after 0.95 s in spectrograms. Two measures:

- :func:`tail_burst_db`: the energy above 5 kHz in the last 50 ms relative to that of 0.5-0.9 s
  (per sample, Hann-windowed), in dB (the issue's measure);
- :func:`tail_envelope_db`: the RMS of the last 10 ms relative to 0.5-0.9 s, in dB.

The onset has its own: :func:`onset_burst_db`, the power of the first 32 ms relative to 32-128 ms,
in dB, of the audible signal (:func:`audible`: high-passed at 20 Hz; every generator here adds an
infrasonic swell to its onsets that filled 32-128 ms and hid its click, stop 49). Real crops:
median -3.9 dB, 99th percentile +6.7 dB (1,100 training crops); the generators' notes began
with a thump, median +9.3 dB (step-15,754 default, 76 % above the real 99th percentile) and
+13.1 dB (step-24,200 control, 99 %), the main cause of their inception KID
(``train.loss_weights.g_envelope``).
"""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

from darkgan.data.magif import AUDIBLE_HZ
from darkgan.evaluation.metrics import register_metric

#: Band and windows of the measures (Hz, seconds).
BURST_CUTOFF_HZ = 5000.0
TAIL_SECONDS = 0.05
LAST_SECONDS = 0.01
BODY_SECONDS = (0.5, 0.9)
ONSET_SECONDS = (0.032, 0.128)  #: the onset window and the end of the window it is compared with


def audible(wave: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """``[B, N]`` -> ``[B, N]`` float64: the waveforms high-passed at :data:`AUDIBLE_HZ` (20 Hz;
    4th-order Butterworth, forward and backward: zero phase, 8th-order slope).

    What a listener hears of a note: the shipped generators' onsets carry an infrasonic swell
    (13 % of the default's energy, 0.4 % of real crops', 200 validation notes), inaudible but
    counted by a power ratio. Real crops' onset measure is unchanged by it (-3.3 dB either way)."""
    sos = butter(4, AUDIBLE_HZ, btype="highpass", fs=sample_rate, output="sos")
    return sosfiltfilt(sos, np.asarray(wave, dtype=np.float64), axis=-1)


def _check(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < int(BODY_SECONDS[1] * sample_rate) + int(TAIL_SECONDS * sample_rate):
        raise ValueError(f"expected [B, N >= {int((BODY_SECONDS[1] + TAIL_SECONDS) * sample_rate)}] notes, "
                         f"got {list(x.shape)}")
    return x


def _hf_power(x: np.ndarray, lo: int, hi: int, sample_rate: int) -> np.ndarray:
    seg = x[:, lo:hi] * np.hanning(hi - lo)[None, :]
    power = np.abs(np.fft.rfft(seg, axis=-1)) ** 2
    f = np.fft.rfftfreq(hi - lo, 1.0 / sample_rate)
    return power[:, f >= BURST_CUTOFF_HZ].sum(-1) / (hi - lo)


def tail_burst_db(wave: np.ndarray, sample_rate: int = 16000, floor: float = 1e-12) -> np.ndarray:
    """Energy above 5 kHz in the last 50 ms relative to 0.5-0.9 s, in dB, per note.

    Args:
        wave: ``[B, N]`` float waveforms at ``sample_rate`` Hz, ``N >= 0.95 s`` (1 s notes: 16000).
        floor: added to both powers (silent notes give 0 dB).

    Returns:
        ``[B]`` float64 dB, ``10 log10(P_tail / P_body)`` (power per sample, Hann-windowed):
        negative for a note that fades out, > +10 dB for a burst.

    Raises:
        ValueError: not ``[B, N]``, or the notes are too short.
    """
    x = _check(wave, sample_rate)
    n = x.shape[1]
    tail = _hf_power(x, n - int(TAIL_SECONDS * sample_rate), n, sample_rate)
    body = _hf_power(x, int(BODY_SECONDS[0] * sample_rate), int(BODY_SECONDS[1] * sample_rate), sample_rate)
    return 10.0 * np.log10((tail + floor) / (body + floor))


def tail_profile_db(wave: np.ndarray, sample_rate: int = 16000, span_s: float = 0.3, window_s: float = TAIL_SECONDS,
                    hop_s: float = 0.01, floor: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """The energy above 5 kHz of the note's last ``span_s`` seconds, window by window, in dB re 0.5-0.9 s:
    how the high band dies away (:func:`tail_burst_db` is its last window).

    Args:
        wave: ``[B, N]`` float waveforms at ``sample_rate`` Hz, ``N >= 0.95 s``.
        span_s: seconds before the end covered (windows end from ``N - span_s + window_s`` to ``N``),
            > ``window_s`` and at most the note after 0.5 s (0.5 s for 1 s notes).
        window_s, hop_s: Hann window and hop (s), > 0; floor: as :func:`tail_burst_db`.

    Returns:
        ``(t [W], db [B, W])``: the seconds from each window's end to the note's end (<= 0, the last
        0) and ``10 log10(P_window / P_body)`` per note and window (power per sample).

    Raises:
        ValueError: not ``[B, N]``, notes too short, or a span / window / hop out of range.

    Source: ours (issue 15, item 7: its measure, window by window).
    """
    x = _check(wave, sample_rate)
    n, w, hop = x.shape[1], int(round(window_s * sample_rate)), int(round(hop_s * sample_rate))
    span = int(round(span_s * sample_rate))
    if not (0 < w < span <= n - int(BODY_SECONDS[0] * sample_rate)) or hop < 1:
        raise ValueError(f"tail profile: need 0 < window ({window_s} s) < span ({span_s} s) <= the note after "
                         f"{BODY_SECONDS[0]} s, and hop ({hop_s} s) >= 1 sample")
    ends = np.arange(n, n - span + w - 1, -hop)[::-1]
    body = _hf_power(x, int(BODY_SECONDS[0] * sample_rate), int(BODY_SECONDS[1] * sample_rate), sample_rate)
    db = np.stack([10.0 * np.log10((_hf_power(x, e - w, e, sample_rate) + floor) / (body + floor)) for e in ends], 1)
    return (ends - n) / sample_rate, db


def tail_envelope_db(wave: np.ndarray, sample_rate: int = 16000, floor: float = 1e-12) -> np.ndarray:
    """RMS of the last 10 ms relative to the RMS of 0.5-0.9 s of the :func:`audible` signal, in dB,
    per note (``[B, N]`` -> ``[B]``): about -33 dB for the faded training crops, about 0 for a note
    that is cut.

    Raises:
        ValueError: not ``[B, N]``, or the notes are too short.
    """
    x = audible(_check(wave, sample_rate), sample_rate)
    last = np.mean(x[:, -int(LAST_SECONDS * sample_rate):] ** 2, axis=-1)
    body = np.mean(x[:, int(BODY_SECONDS[0] * sample_rate):int(BODY_SECONDS[1] * sample_rate)] ** 2, axis=-1)
    return 10.0 * np.log10((last + floor) / (body + floor))


def onset_burst_db(wave: np.ndarray, sample_rate: int = 16000, floor: float = 1e-12) -> np.ndarray:
    """Mean power of the first 32 ms relative to 32-128 ms of the :func:`audible` signal, in dB, per note.

    Args:
        wave: ``[B, N]`` float waveforms at ``sample_rate`` Hz, ``N >= 128 ms``.
        floor: added to both powers (silent notes give 0 dB).

    Returns:
        ``[B]`` float64 dB: real training crops median -3.9 dB (the attack builds up), 99th
        percentile +6.7 dB (1,100 crops); > +6 dB is an onset burst.

    Raises:
        ValueError: not ``[B, N]``, or the notes are too short.
    """
    a, b = int(ONSET_SECONDS[0] * sample_rate), int(ONSET_SECONDS[1] * sample_rate)
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < b:
        raise ValueError(f"expected [B, N >= {b}] notes, got {list(x.shape)}")
    x = audible(x, sample_rate)
    head, after = np.mean(x[:, :a] ** 2, axis=-1), np.mean(x[:, a:b] ** 2, axis=-1)
    return 10.0 * np.log10((head + floor) / (after + floor))


@register_metric("tail")
def tail_metric(*, wave: np.ndarray, sample_rate: int = 16000) -> dict:
    """Registered metric ``tail``: ``{"burst_median_db", "burst_share_above_10db",
    "envelope_median_db", "onset_median_db", "onset_share_above_6db", "n"}`` of ``wave [B, N]``
    (:func:`tail_burst_db`, :func:`tail_envelope_db`, :func:`onset_burst_db`)."""
    burst, env = tail_burst_db(wave, sample_rate), tail_envelope_db(wave, sample_rate)
    onset = onset_burst_db(wave, sample_rate)
    return {"n": int(len(burst)), "burst_median_db": float(np.median(burst)),
            "burst_share_above_10db": float((burst > 10.0).mean()), "envelope_median_db": float(np.median(env)),
            "onset_median_db": float(np.median(onset)), "onset_share_above_6db": float((onset > 6.0).mean())}


def burst_summary(db: np.ndarray, threshold_db: float = 10.0) -> dict:
    """``{"n", "median_db", "share_above"}`` of per-note dB values (share above ``threshold_db``)."""
    db = np.asarray(db, dtype=np.float64)
    return {"n": int(db.size), "median_db": float(np.median(db)), "share_above": float((db > threshold_db).mean())}
