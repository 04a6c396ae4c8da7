"""Sound classifiers with statistics pooling (the teacher and student of FRAMI's Table 2).

A ResNet-like 2-D CNN over log-mel ``[B, 1, n_mels, T]`` (stages of residual blocks, each two
3x3 convolutions with batch norm; stride 2 in frequency at every stage after the first and in
time at the second stage only, so a 1 s note of 32 frames leaves 16 frames and a chunk of
8 frames leaves 4). The frequency axis is averaged into frame-level hidden states
``h_frame [B, C, T']``; :class:`StatsPooling` (mean and std over time, x-vector style) gives
``[B, 2C]``; a linear layer gives the utterance-level hidden state ``h_utt [B, E]`` (before its ReLU); a
linear classifier on ``relu(h_utt)`` the logits. FRAMI reuses ``h_frame`` and ``h_utt`` (paper, "Reused Teacher Backend
Knowledge Distillation", Fig. 2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from darkgan.errors import DarkGANError
from darkgan.frami.config import NetConfig


class StatsPooling(nn.Module):
    """Statistics pooling: ``[B, C, T] -> [B, 2C]`` (mean and standard deviation over time).

    The std is ``sqrt(var + 1e-5)`` (biased variance), defined for ``T >= 1``.
    """

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        mean = h.mean(dim=-1)
        std = torch.sqrt(h.var(dim=-1, unbiased=False) + 1e-5)
        return torch.cat([mean, std], dim=1)


class ResBlock(nn.Module):
    """Two 3x3 conv + BN layers with a (1x1 conv + BN when shapes change) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.short = nn.Identity()
        if c_in != c_out or stride != (1, 1):
            self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.short(x))


def _stride(stage: int) -> tuple[int, int]:
    return (1, 1) if stage == 0 else (2, 2 if stage == 1 else 1)


class SoundClassifier(nn.Module):
    """ResNet-like classifier with statistics pooling.

    ``forward(x [B, 1, n_mels, T]) -> logits [B, n_classes]``;
    ``hidden(x) -> (logits, h_frame [B, C_last, T'], h_utt [B, embedding])`` with ``T' = ceil(T / 2)``
    when there are >= 2 stages (counted after ``cfg.input_pool``: the input is first average-pooled
    ``input_pool`` x ``input_pool``, so a ``[B, 1, 128, 100]`` EfficientAT log-mel becomes ``[B, 1, 64, 50]``).
    """

    def __init__(self, cfg: NetConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        c0 = cfg.channels[0]
        self.stem = nn.Sequential(nn.Conv2d(1, c0, 3, padding=1, bias=False), nn.BatchNorm2d(c0), nn.ReLU())
        layers, c_in = [], c0
        for s, (c, n) in enumerate(zip(cfg.channels, cfg.blocks)):
            for b in range(n):
                layers.append(ResBlock(c_in, c, _stride(s) if b == 0 else (1, 1)))
                c_in = c
        self.trunk = nn.Sequential(*layers)
        self.pool = StatsPooling()
        self.embed = nn.Linear(2 * c_in, cfg.embedding)
        self.head = nn.Linear(cfg.embedding, cfg.n_classes)
        self.frame_dim, self.utt_dim, self.n_classes = c_in, cfg.embedding, cfg.n_classes

    def hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits [B, K], h_frame [B, C, T'], h_utt [B, E])`` of log-mel ``x [B, 1, M, T]``."""
        if self.cfg.input_pool > 1:
            x = F.avg_pool2d(x, self.cfg.input_pool, ceil_mode=True)
        h_frame = self.trunk(self.stem(x)).mean(dim=2)
        h_utt = self.embed(self.pool(h_frame))
        return self.head(torch.relu(h_utt)), h_frame, h_utt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x)[0]


def n_params(model: nn.Module) -> int:
    """Number of parameters (weights and biases; BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def check_invertible(model: nn.Module, need_pooling: bool = True) -> list[nn.BatchNorm2d]:
    """The model's BatchNorm layers, checked for model inversion.

    Raises:
        DarkGANError: the model has no ``BatchNorm`` layer (ADI's statistics term needs their
            running statistics), or (``need_pooling``) no pooling layer (:class:`StatsPooling`, or the
            global average pooling of :class:`darkgan.frami.audioset.AudioSetTeacher`) with a
            ``hidden`` method giving the states before and after it, which FRAMI reuses.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    name = type(model).__name__
    if not bns:
        raise DarkGANError(f"teacher {name} has no BatchNorm layers: ADI/FRAMI inversion matches their running statistics")
    pools = (StatsPooling, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
    if need_pooling and not (any(isinstance(m, pools) for m in model.modules()) and hasattr(model, "hidden")):
        raise DarkGANError(f"teacher {name} has no statistics-pooling (or global average pooling) layer with a "
                           "hidden() method giving the hidden states FRAMI reuses")
    return bns
