"""Spectral front ends compared by the paper (Esling et al. 2018, Sec. 4.1): STFT, mel,
constant-Q (librosa) and the non-stationary Gabor transform (NSGT, the ``nsgt`` package,
Holighaus/Doerfler/Velasco/Grill 2013), each with an inverse path to audio.

Every front end maps a 1 s note (``[16000]`` float at 16 kHz) to a log-magnitude
``log(|X| + 1e-5)`` of shape ``[F, N]`` (F frequency bins, N frames) and back. Only magnitudes
are modelled, so the inverse estimates a phase: Griffin-Lim (Griffin & Lim 1984; librosa's
``griffinlim`` / ``griffinlim_cqt``, mel through ``mel_to_stft``), and for the NSGT the same
alternating projection written over the package's exact forward/backward transform pair.
"""
from __future__ import annotations

import abc
import types
from functools import cache, lru_cache

import numpy as np

from darkgan.data.constants import N_SAMPLES, SAMPLE_RATE
from darkgan.errors import DarkGANError

LOG_EPS = 1e-5  #: floor inside the log magnitude
FMIN = 55.0  #: Hz, lowest constant-Q / NSGT bin (A1)
BINS_PER_OCTAVE = 24
N_FFT = 1024  #: STFT / mel window (64 ms at 16 kHz)
HOP = 256  #: STFT / mel / CQT hop (16 ms)
N_MELS = 128
CQT_BINS = 7 * BINS_PER_OCTAVE  #: 55 Hz .. 7040 Hz
NSGT_FMAX = 7800.0  #: Hz, highest NSGT scale frequency (below the 8 kHz Nyquist)
FRONT_ENDS = ("stft", "mel", "cqt", "nsgt")


class FrontEnd(abc.ABC):
    """Abstract base: ``analyze(wave [T]) -> log-magnitude [F, N]``, ``invert(logmag [F, N]) -> wave [T]``.

    Attributes:
        name: one of :data:`FRONT_ENDS`.
        freqs: ``[F]`` centre frequency of every bin (Hz), for spectral descriptors.
    """

    name = ""
    freqs: np.ndarray

    @property
    def n_bins(self) -> int:
        return len(self.freqs)

    @abc.abstractmethod
    def magnitude(self, wave: np.ndarray) -> np.ndarray:
        """``[16000]`` float64 wave -> ``[F, N]`` magnitude (linear)."""

    @abc.abstractmethod
    def invert_magnitude(self, mag: np.ndarray, n_iter: int) -> np.ndarray:
        """``[F, N]`` magnitude -> ``[T]`` wave (phase recovered in ``n_iter`` iterations)."""

    def analyze(self, wave: np.ndarray) -> np.ndarray:
        """``[T]`` float wave (16 kHz; cropped/zero-padded to 16000 samples) -> ``[F, N]`` float32
        ``log(|X| + 1e-5)``."""
        w = np.zeros(N_SAMPLES, dtype=np.float64)
        w[: min(N_SAMPLES, len(wave))] = np.asarray(wave, dtype=np.float64)[:N_SAMPLES]
        return np.log(self.magnitude(w) + LOG_EPS).astype(np.float32)

    def invert(self, logmag: np.ndarray, n_iter: int = 32) -> np.ndarray:
        """``[F, N]`` log-magnitude -> ``[16000]`` float32 wave (phase by Griffin-Lim, ``n_iter``
        iterations, seeded so the result is deterministic)."""
        mag = np.maximum(np.exp(np.asarray(logmag, dtype=np.float64)) - LOG_EPS, 0.0)
        wave = self.invert_magnitude(mag, n_iter)
        out = np.zeros(N_SAMPLES, dtype=np.float32)
        out[: min(N_SAMPLES, len(wave))] = wave[:N_SAMPLES]
        return out


class STFTFrontEnd(FrontEnd):
    """STFT magnitude, 1024-point Hann window, hop 256: ``[513, 63]`` per second."""

    name = "stft"

    def __init__(self):
        import librosa

        self.freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=N_FFT)

    def magnitude(self, wave):
        import librosa

        return np.abs(librosa.stft(wave, n_fft=N_FFT, hop_length=HOP))

    def invert_magnitude(self, mag, n_iter):
        import librosa

        return librosa.griffinlim(mag, n_iter=n_iter, hop_length=HOP, n_fft=N_FFT, length=N_SAMPLES,
                                  random_state=0)


class MelFrontEnd(STFTFrontEnd):
    """Mel magnitude (128 Slaney mel bands of the STFT magnitude, 0-8 kHz): ``[128, 63]``;
    inverse: non-negative least squares to an STFT magnitude (``mel_to_stft``), then Griffin-Lim."""

    name = "mel"

    def __init__(self):
        import librosa

        self.basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
        self.freqs = librosa.mel_frequencies(n_mels=N_MELS + 2, fmax=SAMPLE_RATE / 2)[1:-1]

    def magnitude(self, wave):
        return self.basis @ super().magnitude(wave)

    def invert_magnitude(self, mag, n_iter):
        import librosa

        stft = librosa.feature.inverse.mel_to_stft(mag, sr=SAMPLE_RATE, n_fft=N_FFT, power=1.0)
        return super().invert_magnitude(stft, n_iter)


class CQTFrontEnd(FrontEnd):
    """Constant-Q magnitude, 24 bins/octave from 55 Hz over 7 octaves, hop 256: ``[168, 63]``;
    inverse: ``librosa.griffinlim_cqt``."""

    name = "cqt"

    def __init__(self):
        import librosa

        self.freqs = librosa.cqt_frequencies(n_bins=CQT_BINS, fmin=FMIN, bins_per_octave=BINS_PER_OCTAVE)

    def magnitude(self, wave):
        import librosa

        return np.abs(librosa.cqt(wave, sr=SAMPLE_RATE, hop_length=HOP, fmin=FMIN, n_bins=CQT_BINS,
                                  bins_per_octave=BINS_PER_OCTAVE))

    def invert_magnitude(self, mag, n_iter):
        import librosa

        return librosa.griffinlim_cqt(mag, n_iter=n_iter, sr=SAMPLE_RATE, hop_length=HOP, fmin=FMIN,
                                      bins_per_octave=BINS_PER_OCTAVE, length=N_SAMPLES, random_state=0)


class NSGTFrontEnd(FrontEnd):
    """Non-stationary Gabor transform with a constant-Q (octave) frequency scale, 24 bins/octave
    from 55 Hz to 7.8 kHz plus the DC and Nyquist bands, in matrix form (``[175, 437]`` per second;
    the package's exact, invertible frame). Inverse: Griffin-Lim alternating projections through
    the NSGT's own forward/backward pair."""

    name = "nsgt"

    def __init__(self):
        self.transform = _nsgt()
        frqs = np.asarray(self.transform.frqs, dtype=np.float64)
        n = int(np.asarray(self.transform.forward(np.zeros(N_SAMPLES))).shape[0])
        extra = n - len(frqs)
        self.freqs = np.concatenate([[0.0], frqs, [SAMPLE_RATE / 2]][: 3 if extra == 2 else 2]) \
            if extra in (1, 2) else frqs
        if len(self.freqs) != n:
            raise DarkGANError(f"nsgt: unexpected coefficient layout ({n} bands, {len(frqs)} frequencies)")

    def magnitude(self, wave):
        return np.abs(np.asarray(self.transform.forward(wave)))

    def invert_magnitude(self, mag, n_iter):
        rng = np.random.default_rng(0)
        coef = mag * np.exp(2j * np.pi * rng.random(mag.shape))
        for _ in range(n_iter):
            wave = np.real(self.transform.backward(coef))
            est = np.asarray(self.transform.forward(wave))
            coef = mag * np.exp(1j * np.angle(est))
        return np.real(self.transform.backward(coef))


def _numpy2_compat(module) -> None:
    """nsgt 0.19 calls ``np.clip(M, lo, np.inf, out=M)`` on an integer array, which numpy >= 2
    refuses; give its window module a numpy whose ``clip`` uses the integer maximum instead."""
    if getattr(module.np, "_darkgan_compat", False):
        return
    shim = types.ModuleType("numpy_compat")
    shim.__getattr__ = lambda name: getattr(np, name)

    def clip(a, lo, hi, out=None, **kw):
        if out is not None and out.dtype.kind in "iu" and hi == np.inf:
            hi = np.iinfo(out.dtype).max
        return np.clip(a, lo, hi, out=out, **kw)

    shim.clip, shim._darkgan_compat = clip, True
    module.np = shim


@lru_cache(maxsize=1)
def _nsgt():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "falling back to numpy.fft", "Q-factor too high"
        import nsgt
        import nsgt.nsgfwin_sl

        _numpy2_compat(nsgt.nsgfwin_sl)
        scale = nsgt.OctScale(FMIN, NSGT_FMAX, BINS_PER_OCTAVE)
        return nsgt.NSGT(scale, SAMPLE_RATE, N_SAMPLES, real=True, matrixform=True, reducedform=0)


_CLASSES = {"stft": STFTFrontEnd, "mel": MelFrontEnd, "cqt": CQTFrontEnd, "nsgt": NSGTFrontEnd}


@cache
def get_front_end(name: str) -> FrontEnd:
    """The front end called ``name`` (one of :data:`FRONT_ENDS`), built once per process.

    Raises:
        DarkGANError: unknown name.
    """
    from darkgan.timbre import pick

    return pick(_CLASSES, name, "front end")
