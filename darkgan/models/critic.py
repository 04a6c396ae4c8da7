"""The DarkGAN critic: mirrors the generator; Wasserstein score + auxiliary attribute/pitch heads.

Paper Sec. 4.3.2 (AC-GAN style critic of DrumGAN / PGGAN). ``D(x, scale, alpha)``:

- a 1x1 "from-MAG-IF" convolution per scale (+ leaky ReLU);
- for each scale s > 0, from the highest in use down: ``convs_per_block`` 3x3 convolutions
  (the last one maps ``C_s -> C_{s-1}``) + leaky ReLU, then average pooling by the scale's
  (frequency, time) factor. While scale s fades in, the pooled features are
  ``lerp(from_magif[s-1](avg_pool(x)), block_s(from_magif[s](x)), alpha)``;
- at scale 0: mini-batch std-dev (one extra map), a 3x3 convolution, a fully connected layer
  ``C0 * H0 * W0 -> C0`` + leaky ReLU, and one linear output layer ``C0 -> 1 + K + P``:
  the Wasserstein score, K attribute logits (the student of the distillation, Eq. 1) and P
  pitch logits;
- optionally (``model.critic_projection``; ours, off in every preset) a *projection* term
  (Miyato & Koyama, "cGANs with projection discriminator", ICLR 2018, Eq. 3): the score becomes
  ``psi(phi(x)) + <V c, phi(x)>`` with ``phi(x)`` the penultimate features ``[B, C0]`` and ``c``
  the note's standardised attributes ``(logit(alpha) - mu) / sigma`` ``[B, K]``
  (:func:`darkgan.models.generator.standardize_attributes`). The critic then judges whether a
  note *matches its conditioning* on real and generated notes alike, where the auxiliary head
  learns the attributes of real notes only and is easily satisfied by fakes.

No pixel norm in the critic (as PGGAN). Equalized learning rate everywhere.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from darkgan.models.config import ModelConfig
from darkgan.models.generator import standardize_attributes
from darkgan.models.layers import EqualizedConv2d, EqualizedLinear, assert_shape, minibatch_stddev


class Critic(nn.Module):
    """DarkGAN critic.

    Args:
        cfg: the architecture (:class:`ModelConfig`; ``cfg.d_channels`` feature maps per scale).
        n_pitches: P, pitch classes predicted.
        n_attributes: K, teacher attributes predicted (0 for the baseline).

    Call: ``D(x [B, 2, H_s, W_s], scale=None, alpha=1.0, attributes=None) -> (score [B],
    attribute_logits [B, K], pitch_logits [B, P])``; ``scale=None`` is the final scale. Attribute
    logits are raw: the distillation loss divides them by the temperature (Eq. 1).
    ``attributes [B, K]`` (the notes' conditioning alpha, probabilities) is required by a critic
    with ``cfg.critic_projection``, and ignored otherwise.

    Raises:
        ValueError: wrong input shape, scale or alpha; a projection critic called without attributes.
    """

    def __init__(self, cfg: ModelConfig, n_pitches: int, n_attributes: int):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.n_pitches, self.n_attributes = int(n_pitches), int(n_attributes)
        ch = cfg.d_channels
        self.from_magif = nn.ModuleList(EqualizedConv2d(cfg.out_channels, ch[s], 1) for s in range(cfg.n_scales))
        self.blocks = nn.ModuleList()
        for s in range(cfg.n_scales):
            convs = nn.ModuleList()
            if s > 0:
                for i in range(cfg.convs_per_block):
                    c_out = ch[s - 1] if i == cfg.convs_per_block - 1 else ch[s]
                    convs.append(EqualizedConv2d(ch[s], c_out, 3, padding=1))
            self.blocks.append(convs)
        h0, w0 = cfg.scale_shape(0)
        extra = 1 if cfg.minibatch_std_group > 0 else 0
        self.conv0 = EqualizedConv2d(ch[0] + extra, ch[0], 3, padding=1)
        self.fc0 = EqualizedLinear(ch[0] * h0 * w0, ch[0])
        self.out = EqualizedLinear(ch[0], 1 + self.n_attributes + self.n_pitches)
        self.projection = None
        if cfg.critic_projection and self.n_attributes:
            self.projection = EqualizedLinear(self.n_attributes, ch[0], bias=False, gain=1.0)
            self.register_buffer("attr_mean", torch.zeros(self.n_attributes))
            self.register_buffer("attr_std", torch.ones(self.n_attributes))

    @torch.no_grad()
    def set_attribute_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """The training notes' mean and std of ``z / T`` (``[K]`` each) that standardise the
        projection's attributes (as :meth:`darkgan.models.generator.Generator.set_attribute_stats`)."""
        if self.projection is None:
            raise ValueError("set_attribute_stats: this critic has no projection (model.critic_projection)")
        self.attr_mean.copy_(torch.as_tensor(mean).float().reshape(-1))
        self.attr_std.copy_(torch.as_tensor(std).float().reshape(-1))

    @property
    def n_scales(self) -> int:
        return self.cfg.n_scales

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.cfg.leaky_slope)

    def _down(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        k = self.cfg.up_factor(scale)
        return F.avg_pool2d(x, kernel_size=k, stride=k)

    def features(self, x: torch.Tensor, scale: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """``[B, 2, H_s, W_s] -> [B, C0]``: the penultimate features (after fc0 + leaky ReLU)."""
        s = self.n_scales - 1 if scale is None else int(scale)
        if not 0 <= s < self.n_scales:
            raise ValueError(f"scale must be in [0, {self.n_scales}), got {scale}")
        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        assert_shape(x, (None, self.cfg.out_channels, *self.cfg.scale_shape(s)), "critic input")
        h = self._act(self.from_magif[s](x))
        for k in range(s, 0, -1):
            for conv in self.blocks[k]:
                h = self._act(conv(h))
            h = self._down(h, k)
            if k == s and alpha < 1.0:
                low = self._act(self.from_magif[s - 1](self._down(x, s)))
                h = torch.lerp(low.to(h.dtype), h, alpha)  # dtypes differ under autocast
        if self.cfg.minibatch_std_group > 0:
            h = minibatch_stddev(h, self.cfg.minibatch_std_group)
        h = self._act(self.conv0(h))
        return self._act(self.fc0(h.reshape(h.shape[0], -1)))

    def forward(self, x: torch.Tensor, scale: int | None = None, alpha: float = 1.0,
                attributes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.features(x, scale, alpha)
        y = self.out(h)
        k = self.n_attributes
        score = y[:, 0]
        if self.projection is not None:
            if attributes is None:
                raise ValueError(f"this critic projects the conditioning: attributes [B, {k}] required")
            assert_shape(attributes, (x.shape[0], k), "attributes")
            c = standardize_attributes(attributes, self.attr_mean, self.attr_std).to(h.dtype)
            score = score + (self.projection(c) * h).sum(1)
        return score, y[:, 1:1 + k], y[:, 1 + k:]
