"""SING's losses (paper Sec. 3): the spectral loss and the waveform MSE.

The spectral loss is also a general tool (distillation, fine-tuning, evaluation): it compares
log power spectrograms, so it ignores phase shifts that the waveform MSE punishes.
"""
from __future__ import annotations

import torch


def log_power_spectrogram(x: torch.Tensor, n_fft: int = 1024, hop: int = 256, eps: float = 1.0) -> torch.Tensor:
    """``l(x) = log(eps + |STFT[x]|^2)`` (paper Eq. 3.2).

    Args:
        x: waveforms ``[B, T]`` in [-1, 1] (16 kHz).
        n_fft: frame length in samples (paper 1024, 513 bins); hop: stride (256, 75 % overlap);
            Hann window, centred frames (``torch.stft(center=True)``, reflect padding).
        eps: the epsilon (paper: 1 gave the best reconstructions).

    Returns:
        ``[B, n_fft // 2 + 1, T // hop + 1]`` float32.
    """
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)
    return torch.log(eps + spec.real ** 2 + spec.imag ** 2)


def spectral_loss(x_hat: torch.Tensor, x: torch.Tensor, n_fft: int = 1024, hop: int = 256, eps: float = 1.0,
                  reduce: bool = True) -> torch.Tensor:
    """``L_stft,1(x, x_hat) = || l(x) - l(x_hat) ||_1`` (paper Eq. 3.3), averaged over
    spectrogram entries (the scale of the paper's Table 1: 0.051 for SING on its test set).

    Args:
        x_hat, x: ``[B, T]`` generated and target waveforms.
        reduce: mean over the batch too (scalar); False: one value per note ``[B]``.
    """
    d = (log_power_spectrogram(x_hat, n_fft, hop, eps) - log_power_spectrogram(x, n_fft, hop, eps)).abs()
    per_note = d.flatten(1).mean(1)
    return per_note.mean() if reduce else per_note


def wav_mse(x_hat: torch.Tensor, x: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    """``L_wav = || x - x_hat ||^2`` (paper Eq. 3.1), averaged over samples (Table 1's scale).

    Args:
        x_hat, x: ``[B, T]``; reduce: scalar (True) or ``[B]``.
    """
    per_note = ((x_hat - x) ** 2).flatten(1).mean(1)
    return per_note.mean() if reduce else per_note


def note_loss(name: str, x_hat: torch.Tensor, x: torch.Tensor, tc) -> torch.Tensor:
    """The training loss ``name`` (``"spectral"`` or ``"wav"``) with the STFT settings of the
    :class:`~darkgan.sing.config.SingTrainConfig` ``tc``; a scalar."""
    if name == "wav":
        return wav_mse(x_hat, x)
    return spectral_loss(x_hat, x, tc.stft_n_fft, tc.stft_hop, tc.stft_eps)
