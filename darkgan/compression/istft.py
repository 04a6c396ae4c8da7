"""The MAG-IF -> waveform inverse written with plain matrix operations (for exported graphs).

ONNX has an STFT operator but no inverse STFT, and its ``DFT`` operator is not supported by
every runtime and quantizer. :class:`MatmulISTFT` computes exactly what
:func:`darkgan.data.magif.magif_to_wave` computes, with operators every ONNX runtime has
(``Exp``, ``CumSum``, ``Cos``, ``Sin``, ``MatMul``, ``Pad``, ``Add``, ``Reshape``, ``Slice``,
``Mul``):

1. ``mag = max(exp(logmag) - 1e-6, 0)``, ``phase = pi * cumsum_t(IF)`` (as ``magif_to_wave``);
2. ``re = mag cos(phase)``, ``im = mag sin(phase)``; the Nyquist bin is zero, so the real inverse
   DFT of each frame is one real matrix product ``[re | im] @ B`` with the precomputed basis
   ``B [2048 (1024 cos rows + 1024 sin rows), 2048 samples]``,
   ``B[k, n] = c_k cos(2 pi k n / N) / N * w[n]`` and ``B[1024 + k, n] = -c_k sin(2 pi k n / N) / N * w[n]``
   (``c_0 = 1``, ``c_k = 2`` otherwise; ``w`` the periodic Hann synthesis window), i.e. irfft
   times the window in one product;
3. overlap-add with hop 512 = N / 4: each windowed frame is cut into 4 blocks of 512 samples and
   block ``i`` of frame ``t`` lands on output block ``t + i``; this is four shifted ``Pad`` +
   ``Add`` (the same result as a ``ConvTranspose1d`` with an identity kernel and stride 512, or
   ``fold``, without the 2048 x 2048 identity multiply that would cost as much as the inverse DFT);
4. divide by the window-sum envelope ``sum_t w^2[n - t H]`` (a constant) and trim the centre
   padding ``N / 2 = 1024`` samples: ``[B, 16000]``.

Cost per note: ``2 * 1024 * 2048 * 32 = 134 M`` multiply-adds for the inverse DFT (the FFT in
``torch.istft`` needs ~2 M), so the eager fast path keeps ``torch.istft`` and this module is for
export. Parity with ``magif_to_wave``: max abs error ~1e-6 on real notes (float32, the basis is
computed in float64 then rounded); see ``tests/test_compression_export.py``.

Shapes: ``magif [B, 2, 1024, 32]`` (un-normalised) -> ``wave [B, 16000]`` float32.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from darkgan.data.magif import HOP, LOG_EPS, N_BINS, N_FFT, N_FRAMES, N_SAMPLES

#: Overlap factor: frames overlap N_FFT / HOP = 4 times.
OVERLAP = N_FFT // HOP
#: Length of the overlap-added signal before the centre padding is trimmed (17920).
OLA_LENGTH = N_FFT + HOP * (N_FRAMES - 1)


def inverse_dft_basis(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The windowed real inverse-DFT basis ``[2 * 1024, 2048]`` (cos rows, then -sin rows).

    ``frame[n] = sum_k re[k] B[k, n] + im[k] B[1024 + k, n]`` equals
    ``irfft(spec_with_zero_nyquist, 2048)[n] * hann[n]`` for ``spec = re + i im`` over bins
    0..1023. Computed in float64 and cast to ``dtype``.
    """
    k = torch.arange(N_BINS, dtype=torch.float64)[:, None]
    n = torch.arange(N_FFT, dtype=torch.float64)[None, :]
    ang = 2 * math.pi * torch.remainder(k * n, N_FFT) / N_FFT  # exact argument reduction
    c = torch.full((N_BINS, 1), 2.0, dtype=torch.float64)
    c[0] = 1.0
    w = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)[None, :]
    cos_rows = c * torch.cos(ang) / N_FFT * w
    sin_rows = -c * torch.sin(ang) / N_FFT * w
    return torch.cat([cos_rows, sin_rows], dim=0).to(dtype)


def window_envelope(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[16000]`` window-sum envelope ``sum_t hann^2[n - t * 512]`` over the kept samples
    (after trimming ``N_FFT // 2`` samples of centre padding); all entries are >= 0.5."""
    w2 = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64) ** 2
    env = torch.zeros(OLA_LENGTH, dtype=torch.float64)
    for t in range(N_FRAMES):
        env[t * HOP: t * HOP + N_FFT] += w2
    start = N_FFT // 2
    return env[start: start + N_SAMPLES].to(dtype)


def overlap_add(frames: torch.Tensor) -> torch.Tensor:
    """Overlap-add windowed frames with hop ``N / 4``.

    Shapes: ``frames [B, T, 2048] -> [B, 2048 + 512 (T - 1)]``.
    """
    b, t, n = frames.shape
    blocks = frames.reshape(b, t, OVERLAP, HOP)
    out = None
    for i in range(OVERLAP):
        part = nn.functional.pad(blocks[:, :, i, :], (0, 0, i, OVERLAP - 1 - i))  # [B, T + 3, 512]
        out = part if out is None else out + part
    return out.reshape(b, (t + OVERLAP - 1) * HOP)


class MatmulISTFT(nn.Module):
    """MAG-IF -> waveform with matmul + overlap-add (see the module docstring).

    Shapes: ``magif [B, 2, 1024, 32]`` (un-normalised log magnitude, IF in [-1, 1]) ->
    ``[B, 16000]`` float32 at 16 kHz. Equal to :func:`darkgan.data.magif.magif_to_wave` to float
    rounding (~1e-6 absolute on real notes).
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("basis", inverse_dft_basis(), persistent=False)
        self.register_buffer("inv_envelope", 1.0 / window_envelope(), persistent=False)

    def forward(self, magif: torch.Tensor) -> torch.Tensor:
        mag = torch.clamp(torch.exp(magif[:, 0]) - LOG_EPS, min=0.0)  # [B, 1024, 32]
        phase = torch.cumsum(magif[:, 1] * math.pi, dim=-1)
        re = (mag * torch.cos(phase)).transpose(1, 2)  # [B, 32, 1024]
        im = (mag * torch.sin(phase)).transpose(1, 2)
        frames = torch.matmul(torch.cat([re, im], dim=-1), self.basis)  # [B, 32, 2048]
        wave = overlap_add(frames)  # [B, 17920]
        start = N_FFT // 2
        return wave[:, start: start + N_SAMPLES] * self.inv_envelope
