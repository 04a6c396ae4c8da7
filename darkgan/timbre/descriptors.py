"""Spectral descriptors (Peeters et al. 2011, "The Timbre Toolbox"; Esling et al. 2018, Sec. 5):
spectral centroid, bandwidth, flatness, roll-off and loudness.

Two forms: :func:`frame_descriptors` on decoded magnitude frames of any front end (torch,
differentiable except roll-off; frequencies are the front end's bin centres, so values depend on
the representation's bin spacing) for descriptor topology and descriptor-based synthesis, and
:func:`audio_descriptors` on audio (librosa on a 1024-point STFT) to measure what a listener gets.
"""
from __future__ import annotations

import numpy as np

from darkgan.data.constants import SAMPLE_RATE
from darkgan.errors import DarkGANError

DESCRIPTORS = ("centroid", "bandwidth", "flatness", "rolloff", "loudness")
ROLLOFF = 0.85  #: share of the spectral energy below the roll-off frequency


def frame_descriptors(mag, freqs) -> dict:
    """Descriptors of magnitude frames.

    Args:
        mag: ``[B, F]`` torch tensor, linear magnitude (>= 0).
        freqs: ``[F]`` bin centre frequencies (Hz).

    Returns:
        ``{name: [B] tensor}``: centroid (Hz), bandwidth (Hz, the spread around the centroid),
        flatness (geometric / arithmetic mean of the power, in (0, 1]), rolloff (Hz, 85 %),
        loudness (dB, ``10 log10 sum |X|^2``).
    """
    import torch

    f = torch.as_tensor(np.asarray(freqs), dtype=mag.dtype)
    power = mag.pow(2) + 1e-12
    w = mag + 1e-12
    centroid = (w * f).sum(-1) / w.sum(-1)
    bandwidth = ((w * (f - centroid[:, None]) ** 2).sum(-1) / w.sum(-1)).sqrt()
    flatness = torch.exp(torch.log(power).mean(-1)) / power.mean(-1)
    cum = torch.cumsum(power, -1) / power.sum(-1, keepdim=True)
    rolloff = f[(cum < ROLLOFF).sum(-1).clamp(max=len(f) - 1)]
    loudness = 10 * torch.log10(power.sum(-1))
    return {"centroid": centroid, "bandwidth": bandwidth, "flatness": flatness, "rolloff": rolloff,
            "loudness": loudness}


def audio_descriptors(wave: np.ndarray) -> dict[str, float]:
    """Descriptors of a note ``[T]`` at 16 kHz: the median over frames within 40 dB of the loudest.

    Raises:
        DarkGANError: the wave is silent.
    """
    import librosa

    kw = {"n_fft": 1024, "hop_length": 256}
    w = np.asarray(wave, dtype=np.float32)
    rms = librosa.feature.rms(y=w, frame_length=1024, hop_length=256)[0]
    if rms.max() < 1e-5:
        raise DarkGANError("cannot compute descriptors of a silent wave")
    keep = rms > rms.max() * 10 ** (-40 / 20)
    values = {
        "centroid": librosa.feature.spectral_centroid(y=w, sr=SAMPLE_RATE, **kw)[0],
        "bandwidth": librosa.feature.spectral_bandwidth(y=w, sr=SAMPLE_RATE, **kw)[0],
        "flatness": librosa.feature.spectral_flatness(y=w, **kw)[0],
        "rolloff": librosa.feature.spectral_rolloff(y=w, sr=SAMPLE_RATE, roll_percent=ROLLOFF, **kw)[0],
        "loudness": 20 * np.log10(rms + 1e-9),
    }
    return {k: float(np.median(v[: len(keep)][keep])) for k, v in values.items()}
