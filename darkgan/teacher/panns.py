"""PANNs CNN14: a VGG-like AudioSet tagger (527 classes, 80.8 M parameters), our own code.

Source: Kong et al., "PANNs: Large-Scale Pretrained Audio Neural Networks for Audio Pattern
Recognition", IEEE/ACM TASLP 2020; checkpoint ``Cnn14_mAP=0.431.pth`` (Zenodo record 3987831,
MIT). The module and parameter names reproduce the upstream state dict (``spectrogram_extractor.
stft.conv_real.weight``, ``logmel_extractor.melW``, ``bn0``, ``conv_block1..6.conv1/2, bn1/2``,
``fc1``, ``fc_audioset``), so the real checkpoint loads with ``strict=True``; the arithmetic was
written from the paper and the upstream description.

Pipeline (eval mode): wave [B, T] at 16 kHz -> 32 kHz (:class:`darkgan.teacher.resample.Resampler`)
-> reflect-padded STFT as two strided conv1d (n_fft 1024, periodic Hann 1024, hop 320)
-> power -> 64 Slaney mel bands 50-14000 Hz (librosa's ``filters.mel`` convention, area
normalised) -> 10 log10(max(x, 1e-10)) -> BatchNorm over mel bands -> 6 conv blocks (two 3x3
conv + BN + ReLU, 2x2 average pool except the last; 64..2048 channels) -> mean over frequency
-> max + mean over time -> fc1 2048 + ReLU (the 2048-d embedding) -> fc_audioset (527 logits;
upstream applies the sigmoid inside the model, we return the logits before it).

The checkpoint is not downloaded automatically (no checksum we can pin offline); put it in
``$DARKGAN_MODELS_DIR/panns-cnn14/Cnn14_mAP=0.431.pth`` or pass ``--weights``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from darkgan.teacher.base import Teacher
from darkgan.teacher.weights import WeightsSpec

SAMPLE_RATE = 32000
N_FFT = 1024
HOP = 320
N_MELS = 64
FMIN, FMAX = 50.0, 14000.0

WEIGHTS_SPEC = WeightsSpec(
    name="panns-cnn14", model_dir="panns-cnn14", filename="Cnn14_mAP=0.431.pth", sha256=None, url=None,
    hint="https://zenodo.org/record/3987831 (file Cnn14_mAP=0.431.pth)")


def slaney_mel_banks(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                     fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """Slaney-style mel filters ``[n_mels, n_fft // 2 + 1]`` (float64), as ``librosa.filters.mel``
    with its defaults (Slaney mel scale: linear below 1 kHz, log above; area normalisation)."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0, np.minimum(lower, upper))
    return w * (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]


class _STFT(nn.Module):
    """Two frozen conv1d holding the windowed DFT (real, imaginary parts): keys conv_real/conv_imag."""

    def __init__(self):
        super().__init__()
        n = np.arange(N_FFT)
        k = np.arange(N_FFT // 2 + 1)[:, None]
        win = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)  # periodic Hann
        ang = 2 * np.pi * k * n[None, :] / N_FFT
        self.conv_real = nn.Conv1d(1, N_FFT // 2 + 1, N_FFT, stride=HOP, bias=False)
        self.conv_imag = nn.Conv1d(1, N_FFT // 2 + 1, N_FFT, stride=HOP, bias=False)
        self.conv_real.weight.data = torch.tensor((np.cos(ang) * win)[:, None, :], dtype=torch.float32)
        self.conv_imag.weight.data = torch.tensor((-np.sin(ang) * win)[:, None, :], dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T]`` -> power spectrogram ``[B, 1, frames, 513]`` (centred, reflect padded)."""
        x = F.pad(x[:, None, :], (N_FFT // 2, N_FFT // 2), mode="reflect")
        return (self.conv_real(x).square() + self.conv_imag(x).square()).transpose(1, 2)[:, None]


class _Spectrogram(nn.Module):
    def __init__(self):
        super().__init__()
        self.stft = _STFT()

    def forward(self, x):
        return self.stft(x)


class _LogMel(nn.Module):
    def __init__(self):
        super().__init__()
        self.melW = nn.Parameter(torch.tensor(slaney_mel_banks().T, dtype=torch.float32))

    def forward(self, power):
        """``[B, 1, frames, 513]`` -> ``[B, 1, frames, 64]`` in dB (ref 1, amin 1e-10, no top_db)."""
        return 10.0 * torch.log10(torch.matmul(power, self.melW).clamp_min(1e-10))


class ConvBlock(nn.Module):
    """Two (3x3 conv, BatchNorm, ReLU) then 2-D average pooling."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x, pool=(2, 2)):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool) if pool != (1, 1) else x


class Cnn14(nn.Module):
    """CNN14 at 32 kHz: ``wave [B, T] (32 kHz) -> (logits [B, 527], embedding [B, 2048])``.

    Always in eval mode (:meth:`train` is a no-op), so BatchNorm statistics never change.
    """

    def __init__(self, num_classes: int = 527):
        super().__init__()
        self.spectrogram_extractor = _Spectrogram()
        self.logmel_extractor = _LogMel()
        self.bn0 = nn.BatchNorm2d(N_MELS)
        chans = (1, 64, 128, 256, 512, 1024, 2048)
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(chans[i], chans[i + 1]))
        self.fc1 = nn.Linear(2048, 2048)
        self.fc_audioset = nn.Linear(2048, num_classes)
        self.train(False)

    def train(self, mode: bool = True) -> "Cnn14":
        """Ignored: the tagger stays in eval mode."""
        return super().train(False)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.logmel_extractor(self.spectrogram_extractor(wave))  # [B, 1, frames, 64]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(1, 7):
            x = getattr(self, f"conv_block{i}")(x, pool=(2, 2) if i < 6 else (1, 1))
        x = x.mean(dim=3)  # over mel
        x = x.amax(dim=2) + x.mean(dim=2)  # over time
        emb = F.relu(self.fc1(x))
        return self.fc_audioset(emb), emb


def load_cnn14_state_dict(path) -> dict:
    """State dict of a PANNs checkpoint (``{"model": sd, ...}`` or a bare state dict).

    Raises:
        darkgan.errors.WeightsError: not loadable with ``weights_only=True``.
    """
    from darkgan.errors import WeightsError

    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path}: not a loadable PyTorch checkpoint ({type(e).__name__})") from None
    sd = ck.get("model", ck) if isinstance(ck, dict) else None
    if not isinstance(sd, dict):
        raise WeightsError(f"{path}: no state dict inside")
    return sd


class PANNsTeacher(Teacher):
    """``panns-cnn14``: PANNs CNN14, 527 classes; ``embedding`` is the 2048-d ``fc1`` output
    (upstream's "embedding"). Differentiable. ``random_init=True`` builds it without weights
    (tests).

    Raises:
        darkgan.errors.WeightsError: checkpoint missing (message says where to get it) or not CNN14.
    """

    id = "panns-cnn14"

    def __init__(self, weights=None, device="cpu", normalize: bool = True, batch_size: int = 32,
                 random_init: bool = False):
        from darkgan.teacher.classes import audioset_classes
        from darkgan.teacher.resample import Resampler

        names, mids = audioset_classes()
        net = Cnn14()
        sha = ""
        if not random_init:
            from darkgan.errors import WeightsError
            from darkgan.teacher.weights import resolve_weights

            path, sha = resolve_weights(WEIGHTS_SPEC, weights)
            try:
                net.load_state_dict(load_cnn14_state_dict(path), strict=True)
            except RuntimeError as e:
                raise WeightsError(f"{path}: not a CNN14 checkpoint ({str(e).splitlines()[0]})") from None
        self.model = nn.Sequential(Resampler(16000, SAMPLE_RATE), net).to(device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.net = net
        super().__init__(names, mids, sha, 2048, device=device, normalize=normalize, batch_size=batch_size)

    def _forward(self, wave):
        return self.model(wave)
