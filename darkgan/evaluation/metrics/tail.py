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

The onset has its own: :func:`onset_burst_db`, the energy of the first STFT frame (centred on
sample 0) relative to the second, in dB. Real crops: median -2.5 dB, never above +3 dB (512 training
crops); the generators' notes began with a thump, +14 dB (step-15,754 default) and +20 dB (step-24,200
control), the main cause of their inception KID (``train.loss_weights.g_envelope``).
"""
from __future__ import annotations

import numpy as np

from darkgan.evaluation.metrics import register_metric

#: Band and windows of the measures (Hz, seconds).
BURST_CUTOFF_HZ = 5000.0
TAIL_SECONDS = 0.05
LAST_SECONDS = 0.01
BODY_SECONDS = (0.5, 0.9)


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


def tail_envelope_db(wave: np.ndarray, sample_rate: int = 16000, floor: float = 1e-12) -> np.ndarray:
    """RMS of the last 10 ms relative to the RMS of 0.5-0.9 s, in dB, per note (``[B, N]`` ->
    ``[B]``): about -33 dB for the faded training crops, about 0 for a note that is cut.

    Raises:
        ValueError: not ``[B, N]``, or the notes are too short.
    """
    x = _check(wave, sample_rate)
    last = np.mean(x[:, -int(LAST_SECONDS * sample_rate):] ** 2, axis=-1)
    body = np.mean(x[:, int(BODY_SECONDS[0] * sample_rate):int(BODY_SECONDS[1] * sample_rate)] ** 2, axis=-1)
    return 10.0 * np.log10((last + floor) / (body + floor))


def onset_burst_db(wave: np.ndarray) -> np.ndarray:
    """Energy of the first STFT frame relative to the second, in dB, per note.

    Args:
        wave: ``[B, 16000]`` float waveforms at 16 kHz (the MAG-IF framing of
            :func:`darkgan.data.magif.stft`: 2048-sample Hann frames every 512 samples, frame 0
            centred on sample 0).

    Returns:
        ``[B]`` float64 dB, ``E[0] - E[1]`` of :func:`darkgan.data.magif.frame_energy_db`:
        about -2.5 for real notes (the attack builds up), > +3 dB for an onset burst.

    Raises:
        ValueError: not ``[B, 16000]``.
    """
    import torch

    from darkgan.data.magif import frame_energy_db, wave_to_magif

    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected [B, 16000] notes, got {list(x.shape)}")
    with torch.inference_mode():
        e = frame_energy_db(wave_to_magif(torch.from_numpy(x))[:, 0]).double().numpy()
    return e[:, 0] - e[:, 1]


@register_metric("tail")
def tail_metric(*, wave: np.ndarray, sample_rate: int = 16000) -> dict:
    """Registered metric ``tail``: ``{"burst_median_db", "burst_share_above_10db",
    "envelope_median_db", "onset_median_db", "onset_share_above_3db", "n"}`` of ``wave [B, N]``
    (:func:`tail_burst_db`, :func:`tail_envelope_db`; the onset measures, :func:`onset_burst_db`,
    need 16 kHz notes of 16000 samples and are NaN otherwise)."""
    burst, env = tail_burst_db(wave, sample_rate), tail_envelope_db(wave, sample_rate)
    out = {"n": int(len(burst)), "burst_median_db": float(np.median(burst)),
           "burst_share_above_10db": float((burst > 10.0).mean()), "envelope_median_db": float(np.median(env)),
           "onset_median_db": float("nan"), "onset_share_above_3db": float("nan")}
    if sample_rate == 16000 and np.shape(wave)[1] == 16000:
        onset = onset_burst_db(wave)
        out.update(onset_median_db=float(np.median(onset)), onset_share_above_3db=float((onset > 3.0).mean()))
    return out


def burst_summary(db: np.ndarray, threshold_db: float = 10.0) -> dict:
    """``{"n", "median_db", "share_above"}`` of per-note dB values (share above ``threshold_db``)."""
    db = np.asarray(db, dtype=np.float64)
    return {"n": int(db.size), "median_db": float(np.median(db)), "share_above": float((db > threshold_db).mean())}
