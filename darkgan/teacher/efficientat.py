"""EfficientAT ``mn04_as``: a MobileNetV3-style AudioSet tagger (527 classes), our own code.

Source: Schmid, Koutini, Widmer, "Efficient Large-Scale Audio Tagging via Transformer-to-CNN
Knowledge Distillation", ICASSP 2023; weights: release v0.0.1 of fschmid56/EfficientAT (MIT),
file ``mn04_as_mAP_432.pt`` (AudioSet mAP 0.432). The module names below reproduce the
upstream state-dict keys (``features.<i>.block.<j>...``, ``conc_se_layers``, ``classifier.2/5``)
so that the released file loads with ``load_state_dict(strict=True)``; the layer arithmetic
was written from the upstream description, not copied.

Pipeline (:class:`MelFrontend`, then :class:`MN`):
    wave [B, T] at 32 kHz
    -> pre-emphasis y[n] = x[n+1] - 0.97 x[n]            [B, T-1]  (a valid 2-tap correlation)
    -> STFT n_fft 1024, Hann window 800 (symmetric, centred in the 1024 frame), hop 320,
       centred with reflect padding, power |X|^2        [B, 513, 1 + (T-1)//320]
    -> 128 Kaldi-style triangular mel bands (mel = 1127 ln(1 + f/700)), 0 - 15000 Hz,
       triangles in the mel domain over FFT bins 0..511 (bin 512 weighted 0)
    -> log(x + 1e-5), then (x + 4.5) / 5                [B, 1, 128, frames]
    -> MN (width 0.4): 3x3/2 conv 1->8, 15 inverted-residual blocks, 1x1 conv 64->384,
       global average pool (the 384-d embedding), Linear 384->512, Hardswish, Dropout,
       Linear 512->527 (logits; sigmoid gives the multi-label probabilities).
A 1 s note at 16 kHz (resampled to 32000 samples) gives 100 frames.

Squeeze-excitation: EfficientAT's "concurrent" SE (``conc_se_layers``) can pool over channel,
frequency and time and fuse the branches by max; ``mn04_as`` uses the channel branch only
(mean over frequency and time, Linear C -> C/4 (multiple of 8), ReLU, Linear, sigmoid).

BatchNorm (eps 0.001) always runs with its stored statistics: :meth:`MN.train` is overridden
to keep every sub-module in eval mode, so an outer ``model.train()`` cannot rewrite them.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from darkgan.teacher.base import Teacher
from darkgan.teacher.weights import WeightsSpec

#: Upstream release asset and its checksum (fschmid56/EfficientAT v0.0.1).
WEIGHTS_URL = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn04_as_mAP_432.pt"
WEIGHTS_FILE = "mn04_as_mAP_432.pt"
WEIGHTS_SHA256 = "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
MODEL_DIR = "efficientat-mn04-as"

SAMPLE_RATE = 32000
N_FFT = 1024
WIN_LENGTH = 800
HOP = 320
N_MELS = 128
FMIN = 0.0
FMAX = 15000.0  # upstream: sr/2 - fmax_aug_range/2 = 16000 - 1000
BN_EPS = 1e-3
PREEMPHASIS = 0.97


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` (>= divisor, never below 90 % of v)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def kaldi_mel_banks(n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE,
                    fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """Kaldi-style triangular mel filters ``[n_mels, n_fft // 2 + 1]`` (float64).

    Kaldi's convention (as in ``torchaudio.compliance.kaldi.get_mel_banks`` without VTLN):
    mel(f) = 1127 ln(1 + f / 700); ``n_mels + 2`` equally spaced mel edges between fmin and
    fmax; weights are triangles in the *mel* domain evaluated at FFT bin frequencies
    ``k * sr / n_fft`` for k < n_fft / 2; not area-normalised (peak 1). The Nyquist bin gets
    weight 0 (EfficientAT pads the Kaldi matrix with one zero column).
    """
    def mel(f):
        return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)

    n_bins = n_fft // 2
    lo, hi = mel(fmin), mel(fmax)
    delta = (hi - lo) / (n_mels + 1)
    b = np.arange(n_mels, dtype=np.float64)[:, None]
    left, center, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
    m = mel(np.arange(n_bins) * sr / n_fft)[None, :]
    up = (m - left) / (center - left)
    down = (right - m) / (right - center)
    w = np.maximum(0.0, np.minimum(up, down))
    return np.concatenate([w, np.zeros((n_mels, 1))], axis=1)


class MelFrontend(nn.Module):
    """EfficientAT's eval-mode log-mel: ``wave [B, T]`` at 32 kHz -> ``[B, 1, 128, 1 + (T-1)//320]``.

    Differentiable. ``power=False`` (magnitude) and ``preemphasis=False`` exist only so tests can
    show that a wrong front end is caught; the teacher always uses the defaults.
    """

    def __init__(self, power: bool = True, preemphasis: bool = True):
        super().__init__()
        self.power, self.preemphasis = power, preemphasis
        self.register_buffer("window", torch.hann_window(WIN_LENGTH, periodic=False), persistent=False)
        self.register_buffer("mel", torch.from_numpy(kaldi_mel_banks()).float(), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave
        if self.preemphasis:
            x = x[:, 1:] - PREEMPHASIS * x[:, :-1]
        spec = torch.stft(x, N_FFT, hop_length=HOP, win_length=WIN_LENGTH, window=self.window,
                          center=True, pad_mode="reflect", normalized=False, return_complex=True)
        spec = spec.real.square() + spec.imag.square()  # [B, 513, frames]
        if not self.power:
            spec = spec.sqrt()
        mel = torch.matmul(self.mel, spec)
        return ((mel + 1e-5).log() + 4.5).div(5.0).unsqueeze(1)


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias, 'same' padding) -> BatchNorm2d(eps 1e-3) [-> activation]; keys 0/1(/2)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.Hardswish):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=BN_EPS, momentum=0.01),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class ChannelSE(nn.Module):
    """Squeeze-excitation over channels: mean over (freq, time), fc1, ReLU, fc2, sigmoid, scale."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s[:, :, None, None]


class ConcurrentSE(nn.Module):
    """EfficientAT's concurrent SE container; with only the channel branch the max-fusion over
    branches is the identity, so the single branch's output is returned."""

    def __init__(self, channels: int, se_r: int = 4):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSE(channels, make_divisible(channels // se_r, 8))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [layer(x) for layer in self.conc_se_layers]
        return outs[0] if len(outs) == 1 else torch.stack(outs).amax(dim=0)


class InvertedResidual(nn.Module):
    """[1x1 expand] -> depthwise kxk (stride) -> [SE] -> 1x1 project (no activation) [+ input]."""

    def __init__(self, cin: int, k: int, cexp: int, cout: int, se: bool, hs: bool, stride: int):
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        layers: list[nn.Module] = []
        if cexp != cin:
            layers.append(ConvBNAct(cin, cexp, 1, act=act))
        layers.append(ConvBNAct(cexp, cexp, k, stride=stride, groups=cexp, act=act))
        if se:
            layers.append(ConcurrentSE(cexp))
        layers.append(ConvBNAct(cexp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.residual else y


#: MobileNetV3-Large bottlenecks before width scaling:
#: (in, kernel, expanded, out, squeeze-excitation, hardswish, stride).
MOBILENETV3_LARGE = (
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
)


class MN(nn.Module):
    """EfficientAT MobileNetV3 (mlp head). ``mel [B, 1, 128, F] -> (logits [B, C], emb [B, 6*last])``.

    For ``width=0.4``: 993,485 parameters, embedding 384-d, hidden 512, 527 classes.
    Always in eval mode (BatchNorm statistics and dropout frozen), see :meth:`train`.
    """

    def __init__(self, width: float = 0.4, num_classes: int = 527, dropout: float = 0.2):
        super().__init__()
        ch = lambda c: make_divisible(c * width, 8)  # noqa: E731
        layers: list[nn.Module] = [ConvBNAct(1, ch(16), 3, stride=2)]
        for cin, k, cexp, cout, se, hs, s in MOBILENETV3_LARGE:
            layers.append(InvertedResidual(ch(cin), k, ch(cexp), ch(cout), se, hs, s))
        last_in = ch(160)
        self.embedding_dim = 6 * last_in
        layers.append(ConvBNAct(last_in, self.embedding_dim, 1))
        self.features = nn.Sequential(*layers)
        hidden = ch(1280)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(self.embedding_dim, hidden),
            nn.Hardswish(), nn.Dropout(dropout), nn.Linear(hidden, num_classes),
        )
        self.fused = False
        self.train(False)

    def train(self, mode: bool = True) -> "MN":
        """Ignored: the tagger is frozen; sub-modules stay in eval mode whatever ``mode`` is."""
        return super().train(False)

    @torch.no_grad()
    def fuse_(self) -> "MN":
        """Fold every BatchNorm into the convolution before it (in place), for inference speed.

        Eval-mode BatchNorm is affine per channel, so ``conv -> BN`` equals one conv with
        weights ``w * g / sqrt(v + eps)`` and bias ``b - m * g / sqrt(v + eps)``: outputs agree
        to float rounding (tests check 1e-4). The state dict then no longer matches upstream:
        load weights first, fuse after. Gradients with respect to the input are unchanged.
        """
        for seq in self.modules():
            if isinstance(seq, ConvBNAct) and isinstance(seq[1], nn.BatchNorm2d):
                conv, bn = seq[0], seq[1]
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                  conv.padding, groups=conv.groups, bias=True)
                fused.weight.copy_(conv.weight * scale[:, None, None, None])
                fused.bias.copy_(bn.bias - bn.running_mean * scale)
                fused.to(conv.weight.device)
                seq[0], seq[1] = fused, nn.Identity()
        self.fused = True
        return self

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.features(mel)
        emb = x.mean(dim=(2, 3))
        return self.classifier(x), emb


def build_mn04(num_classes: int = 527) -> MN:
    """An untrained ``mn04_as`` network (width 0.4)."""
    return MN(width=0.4, num_classes=num_classes)


class EfficientATNet(nn.Module):
    """Resampler (16 -> 32 kHz) + :class:`MelFrontend` + :class:`MN`, one differentiable module.

    ``forward(wave [B, T] float32 at 16 kHz) -> (logits [B, 527], embedding [B, 384])``.
    """

    def __init__(self, input_sr: int = 16000, resample: bool = True, **frontend_kw):
        super().__init__()
        from darkgan.teacher.resample import Resampler

        self.resampler = Resampler(input_sr, SAMPLE_RATE) if resample else nn.Identity()
        self.frontend = MelFrontend(**frontend_kw)
        self.net = build_mn04()

    def train(self, mode: bool = True) -> "EfficientATNet":
        return super().train(False)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(self.frontend(self.resampler(wave)))


def load_mn04_state_dict(path) -> dict:
    """``torch.load(path, weights_only=True)`` of an ``mn04_as`` state dict (CPU tensors).

    Raises:
        darkgan.errors.WeightsError: the file is not a loadable state dict.
    """
    from darkgan.errors import WeightsError

    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path}: not a loadable PyTorch state dict ({type(e).__name__}: {e})".splitlines()[0]) from None
    if not isinstance(sd, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(sd).__name__}")
    return sd


class EfficientATTeacher(Teacher):
    """``efficientat-mn04``: the default teacher (EfficientAT mn04_as, 527 AudioSet classes).

    ``logits(wave [B, T] at 16 kHz) -> [B, 527]``; ``embedding -> [B, 384]``: the global
    average of the last 1x1 conv (384 channels), the clip feature upstream returns next to the
    logits (the classifier's own input). Differentiable end to end (resampler, front end and
    network are torch), frozen weights, always eval mode.

    Options: ``normalize`` (peak -1 dBFS, default on), ``batch_size`` (no-grad chunking),
    ``fuse`` (fold BatchNorm into the convolutions after loading; default on, same outputs),
    ``random_init`` (no weights; tests), front-end switches (``resample``, ``power``,
    ``preemphasis``) that exist only to demonstrate what a broken pipeline scores.

    Raises:
        darkgan.errors.WeightsError: weights missing/corrupt (see :mod:`darkgan.teacher.weights`).
    """

    id = "efficientat-mn04"

    def __init__(self, weights=None, device="cpu", normalize: bool = True, batch_size: int = 64,
                 random_init: bool = False, fuse: bool = True, **frontend_kw):
        from darkgan.teacher.classes import audioset_classes

        names, mids = audioset_classes()
        net = EfficientATNet(**frontend_kw)
        sha = ""
        if not random_init:
            from darkgan.teacher.weights import resolve_weights
            path, sha = resolve_weights(WEIGHTS_SPEC, weights)
            sd = load_mn04_state_dict(path)
            try:
                net.net.load_state_dict(sd, strict=True)
            except RuntimeError as e:
                from darkgan.errors import WeightsError

                raise WeightsError(f"{path}: not an mn04_as state dict ({str(e).splitlines()[0]})") from None
        if fuse:
            net.net.fuse_()
        for p in net.parameters():
            p.requires_grad_(False)
        self.model = net.to(device)
        super().__init__(names, mids, sha, net.net.embedding_dim, device=device, normalize=normalize,
                         batch_size=batch_size)

    def _forward(self, wave):
        return self.model(wave)


#: Where :func:`darkgan.teacher.weights.resolve_weights` looks for / downloads the file.
WEIGHTS_SPEC = WeightsSpec(name="efficientat-mn04", model_dir=MODEL_DIR, filename=WEIGHTS_FILE,
                           sha256=WEIGHTS_SHA256, url=WEIGHTS_URL)

__all__ = ["EfficientATTeacher", "WEIGHTS_SPEC", "MN", "MelFrontend", "EfficientATNet", "build_mn04",
           "kaldi_mel_banks", "make_divisible", "load_mn04_state_dict", "WEIGHTS_URL", "WEIGHTS_SHA256", "WEIGHTS_FILE", "MODEL_DIR"]
