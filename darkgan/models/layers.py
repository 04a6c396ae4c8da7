"""Building blocks of the progressive GAN: equalized learning rate, pixel norm, mini-batch std-dev.

Sources: Karras et al., "Progressive Growing of GANs" (ICLR 2018), Sec. 4.1 (equalized learning
rate, pixel-wise feature normalisation) and Sec. 3 (mini-batch standard deviation); the DarkGAN
reference configuration (``perChannelNormalization``, ``miniBatchStdDev``, ``equalizedlR``).

Equalized learning rate: weights are stored as ``N(0, 1)`` samples and multiplied at run time by
the He constant ``gain / sqrt(fan_in)`` (``gain = sqrt(2)`` as in the reference), so Adam's
per-parameter step size means the same thing for every layer. For inference the constant can be
folded into the stored weights once (:func:`fold_equalized_lr`), which removes one element-wise
pass per layer; a folded module must not be trained or saved as a training checkpoint.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

#: He constant gain used by every equalized layer (reference: ``sqrt(2 / fan_in)``).
HE_GAIN = math.sqrt(2.0)


def assert_shape(tensor: torch.Tensor, shape: Sequence[int | None], name: str = "tensor") -> None:
    """Check ``tensor.shape`` against ``shape`` where ``None`` matches any size.

    Raises:
        ValueError: naming ``name``, the expected and the actual shape.
    """
    if tensor.dim() != len(shape) or any(
        want is not None and int(got) != int(want) for got, want in zip(tensor.shape, shape)
    ):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name}: expected shape {want}, got {list(tensor.shape)}")


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class EqualizedConv2d(nn.Module):
    """2-D convolution with equalized learning rate.

    ``y = conv2d(x, weight * scale) + bias`` with ``weight ~ N(0, 1)`` of shape
    ``[out, in, kh, kw]``, ``scale = gain / sqrt(in * kh * kw)`` and zero-initialised bias.

    Shapes: ``x [B, in, H, W] -> [B, out, H', W']`` (``H' = H`` for 3x3 with padding 1).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 padding: int | Sequence[int] = 0, bias: bool = True, gain: float = HE_GAIN):
        super().__init__()
        kh, kw = _pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.padding = _pair(padding)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels * kh * kw)
        self.folded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight if self.folded else self.weight * self.scale
        if self.kernel_size == (1, 1):
            # 1x1: a matmul over channels; conv2d handles channels-last layouts well either way.
            return F.conv2d(x, w, self.bias)
        return F.conv2d(x, w, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"padding={self.padding}, scale={self.scale:.4g}, folded={self.folded}")


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate.

    ``y = x @ (weight * scale).T + bias``, ``weight ~ N(0, 1)`` ``[out, in]``,
    ``scale = gain / sqrt(fan_in)`` (``fan_in = in`` unless given).

    Shapes: ``x [B, in] -> [B, out]``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 gain: float = HE_GAIN, fan_in: int | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = gain / math.sqrt(fan_in if fan_in is not None else in_features)
        self.folded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight if self.folded else self.weight * self.scale
        return F.linear(x, w, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, scale={self.scale:.4g}, folded={self.folded}"


def _is_equalized(m: nn.Module) -> bool:
    """Equalized layers (these two and the generator's format layer) have ``scale``/``folded``."""
    return isinstance(getattr(m, "folded", None), bool) and isinstance(getattr(m, "scale", None), float)


@torch.no_grad()
def fold_equalized_lr(module: nn.Module) -> nn.Module:
    """Multiply every equalized layer's weight by its run-time scale, in place (for inference).

    The folded model computes the same function (up to float rounding) one multiplication
    cheaper per layer. Idempotent. Returns ``module``.
    """
    for m in module.modules():
        if _is_equalized(m) and not m.folded:
            m.weight.mul_(m.scale)
            m.folded = True
    return module


def is_folded(module: nn.Module) -> bool:
    """True if any equalized layer of ``module`` has its scale folded into its weight."""
    return any(_is_equalized(m) and m.folded for m in module.modules())


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixel-wise feature normalisation (PGGAN Sec. 4.2): ``x / sqrt(mean_c(x^2) + eps)``.

    Shapes: ``[B, C, ...] -> same``; the mean is over the channel dimension (dim 1).
    """
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class PixelNorm(nn.Module):
    """Module form of :func:`pixel_norm`."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x, self.eps)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """Append the mini-batch standard deviation as one extra feature map (PGGAN Sec. 3).

    The batch is split into groups of ``g = min(group_size, B)`` samples (``g = B`` when ``B`` is
    not a multiple of ``g``, as the reference does); within a group the std of every feature over
    the group's members is averaged over channels and pixels, giving one scalar per group that is
    broadcast as a constant map to each member. Sample ``i`` belongs to group ``i % (B // g)``.

    Shapes: ``x [B, C, H, W] -> [B, C + 1, H, W]``.
    """
    b, c, h, w = x.shape
    g = min(group_size, b)
    if b % g:
        g = b
    y = x.float().reshape(g, b // g, c, h, w)
    y = (y.var(dim=0, unbiased=False) + eps).sqrt()  # [B/g, C, H, W]
    y = y.mean(dim=(1, 2, 3)).to(x.dtype)  # [B/g]
    y = y.repeat(g).view(b, 1, 1, 1).expand(b, 1, h, w)
    return torch.cat([x, y], dim=1)


class MinibatchStdDev(nn.Module):
    """Module form of :func:`minibatch_stddev`."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x, self.group_size)
