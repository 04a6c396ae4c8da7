"""Band-limited resampling in torch (batched, differentiable) and a numpy loader for any WAV.

The taggers work at 32 kHz (EfficientAT, PANNs) while the project's audio is 16 kHz; the
16 -> 32 kHz step must run inside the teacher so that it batches, runs on the teacher's device
and lets gradients through (attribute-correlation evaluation can differentiate through the
teacher). :class:`Resampler` is a fixed polyphase FIR: a Kaiser-windowed sinc (beta 8.6, about
-86 dB stop band), 64 zero crossings each side, cut-off at 95.5 % of the lower Nyquist
frequency, one filter per output phase, applied as an FFT product (or ``conv1d`` for short
inputs; identical results to float rounding). Edges are zero-padded
like ``scipy.signal.resample_poly``. Against ``soxr`` (VHQ) it agrees to about -60 dB on real
notes (tests/test_teacher_resample.py).

Skipping this resampling (feeding 16 kHz audio to a 32 kHz model) lowers the EfficientAT
instrument hit rate from 0.53 to about 0.43 (see docs/teacher.md).
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: Kaiser window beta of the anti-imaging filter (~86 dB stop-band attenuation).
KAISER_BETA = 8.6
#: Zero crossings of the sinc on each side, counted at the lower of the two rates.
HALF_WIDTH = 64
#: Filter cut-off as a fraction of the lower Nyquist frequency.
ROLLOFF = 0.955
#: Inputs at least this long are filtered by FFT (faster than conv1d on CPU), shorter by conv1d.
FFT_MIN_LENGTH = 2048


@lru_cache(maxsize=16)
def _polyphase_bank(up: int, down: int) -> tuple[np.ndarray, int]:
    """Polyphase filter bank ``[up, 1, 2J+1]`` (float64) and its padding ``J`` for ``up/down``."""
    rate = max(up, down)  # filter designed at the up-sampled rate, in units of the low rate
    cutoff = ROLLOFF / rate  # cycles/sample at the up-sampled rate, * 2 (sinc convention)
    k_max = HALF_WIDTH * rate
    k = np.arange(-k_max, k_max + 1, dtype=np.float64)
    h = cutoff * np.sinc(cutoff * k) * np.kaiser(2 * k_max + 1, KAISER_BETA)
    h *= up  # zero stuffing divides the DC gain by `up`
    j_max = math.ceil(k_max / up) + 1
    bank = np.zeros((up, 1, 2 * j_max + 1), dtype=np.float64)
    for p in range(up):
        for i in range(2 * j_max + 1):
            j = j_max - i  # tap g_p[j] = h[j*up + p], written as a correlation weight
            idx = j * up + p + k_max
            if 0 <= idx < h.size:
                bank[p, 0, i] = h[idx]
    return bank, j_max


class Resampler(torch.nn.Module):
    """Resample ``[B, T]`` float waveforms from ``orig_sr`` to ``new_sr`` (rational ratio).

    Output length ``ceil(T * up / down)`` where ``up/down = new_sr/orig_sr`` in lowest terms,
    the same as ``scipy.signal.resample_poly``; sample 0 of the output is at time 0 of the
    input (zero-phase filter). Differentiable; device and dtype follow the filter buffer
    (move the module with ``.to(device)``). Used for 16 -> 32 kHz (``up=2, down=1``); other
    ratios work but compute the full up-sampled signal before decimating.

    Raises:
        ValueError: a non-positive rate.
    """

    def __init__(self, orig_sr: int, new_sr: int):
        super().__init__()
        if orig_sr <= 0 or new_sr <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
        g = math.gcd(int(orig_sr), int(new_sr))
        self.up, self.down = int(new_sr) // g, int(orig_sr) // g
        bank, self.pad = _polyphase_bank(self.up, self.down)
        self.register_buffer("bank", torch.from_numpy(bank).float(), persistent=False)
        self._spec_key = None
        self._spec = None

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave [B, T]`` -> ``[B, ceil(T * up / down)]``."""
        if self.up == 1 and self.down == 1:
            return wave
        b, t = wave.shape
        x = wave.to(self.bank.dtype)
        if t >= FFT_MIN_LENGTH:
            y = self._fft_filter(x)
        else:
            y = F.conv1d(F.pad(x.unsqueeze(1), (self.pad, self.pad)), self.bank)
        y = y.transpose(1, 2).reshape(b, t * self.up)  # phase p holds output samples q*up + p
        if self.down > 1:
            y = y[:, :: self.down]
        return y

    def _fft_filter(self, x: torch.Tensor) -> torch.Tensor:
        """The polyphase correlation ``conv1d(pad(x, J), bank)`` as one FFT product: ``[B, up, T]``.

        Linear convolution of ``x`` with the flipped phase filters ``k_p`` (length 2J+1), read at
        offset J; the FFT length is the next fast size >= T + 2J, so nothing wraps around.
        (oneDNN's conv1d with one input channel and a long kernel is ~10x slower on CPU.)
        """
        from scipy.fft import next_fast_len

        t, j = x.shape[-1], self.pad
        n = next_fast_len(t + 2 * j, real=True)
        key = (n, x.device, x.dtype)
        if self._spec_key != key:
            # a normal (non-inference) constant, so a cache filled under inference_mode still
            # works in a later differentiable call
            with torch.inference_mode(False), torch.no_grad():
                self._spec = torch.fft.rfft(self.bank.flip(-1)[:, 0, :].to(x.device), n=n)  # [up, n//2+1]
            self._spec_key = key
        c = torch.fft.irfft(torch.fft.rfft(x, n=n).unsqueeze(1) * self._spec, n=n)  # [B, up, n]
        return c[..., j:j + t]


def resample_np(wave: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Resample a numpy signal ``[T]`` or ``[T, channels]`` with soxr (high quality) -> float32."""
    if orig_sr == new_sr:
        return np.asarray(wave, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(wave, dtype=np.float32), orig_sr, new_sr, quality="HQ").astype(np.float32)


def load_audio(path: str | Path, sr: int = 16000) -> np.ndarray:
    """Read any WAV/FLAC/OGG file, down-mix to mono (mean of channels) and resample to ``sr``.

    Returns float32 ``[T]`` in [-1, 1] at ``sr`` Hz.

    Raises:
        darkgan.errors.DataError: the file is missing, not a readable audio file, or holds NaN
            or infinite samples (possible in float WAVs).
    """
    import soundfile as sf

    from darkgan.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError
        raise DataError(f"{path}: not a readable audio file ({e})") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: empty audio file")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).any(axis=1).sum())
        raise DataError(f"{path}: {bad} of {data.shape[0]} samples are NaN or infinite (a corrupt float WAV)")
    mono = data.mean(axis=1)
    return resample_np(mono, int(file_sr), sr)
