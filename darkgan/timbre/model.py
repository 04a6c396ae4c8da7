"""The pitch-conditioned VAE over spectral frames and the perceptual regulariser.

VAE (Kingma & Welling 2014; Esling et al. 2018, Sec. 3): an MLP encoder ``q(z | x, p)`` and
decoder ``p(x | z, p)`` over one normalised log-magnitude frame ``x`` ``[B, F]``, both conditioned
on the note's pitch ``p`` (a scalar, MIDI pitch centred and scaled on the trained range).

Perceptual regulariser (Esling et al. 2018, Sec. 3.3: "a regularization that enforces given
distances" in the latent space, built like t-SNE's objective). For the ``K`` rated instruments
present in a batch, with latent centroids ``c_k = mean_i mu(x_i)`` over the batch's frames of
instrument ``k`` and rated dissimilarities ``D_kl``:

    P_kl = exp(-D_kl^2 / (2 sigma^2)) / sum_{m != n} exp(-D_mn^2 / (2 sigma^2))
    Q_kl = (1 + ||c_k - c_l||^2)^-1 / sum_{m != n} (1 + ||c_m - c_n||^2)^-1
    R_tsne = KL(P || Q) = sum_{k != l} P_kl log(P_kl / Q_kl)

(Gaussian kernel on the ratings, Student-t kernel on latent distances: van der Maaten & Hinton
2008, Eqs. 1-4, used here between instrument centroids). Alternative ``stress`` form (ours,
scale-free metric MDS stress on the same centroids, d_kl = ||c_k - c_l||):

    R_stress = mean_{k < l} (d_kl / mean(d) - D_kl / mean(D))^2
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from darkgan.errors import DarkGANError

REG_LOSSES = ("tsne", "stress")


@dataclass
class ModelConfig:
    """VAE shape.

    Attributes:
        front_end: ``stft``, ``mel``, ``cqt`` or ``nsgt`` (:mod:`darkgan.timbre.frontends`).
        n_bins: F, frequency bins of one frame (set from the front end).
        latent_dim: Z.
        hidden: widths of the encoder's hidden layers (the decoder mirrors them).
        pitch_lo, pitch_hi: MIDI range of the training notes (pitch conditioning is scaled on it).
    """

    front_end: str = "nsgt"
    n_bins: int = 175
    latent_dim: int = 8
    hidden: tuple[int, ...] = (512, 256)
    pitch_lo: int = 60
    pitch_hi: int = 71

    def validate(self) -> None:
        from darkgan.timbre.frontends import FRONT_ENDS

        if self.front_end not in FRONT_ENDS:
            raise DarkGANError(f"model.front_end {self.front_end!r}: choose one of {', '.join(FRONT_ENDS)}")
        if self.latent_dim < 2 or not self.hidden or min(self.hidden) < 1:
            raise DarkGANError("model.latent_dim must be >= 2 and model.hidden non-empty positive widths")
        if self.pitch_hi <= self.pitch_lo:
            raise DarkGANError("model.pitch_hi must exceed model.pitch_lo")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class TimbreVAE(nn.Module):
    """Pitch-conditioned frame VAE with a per-bin input normaliser (buffers ``mean``, ``std``).

    ``forward(x [B, F] log-magnitude, pitch [B] MIDI float) -> (recon [B, F] normalised,
    mu [B, Z], logvar [B, Z])``.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        f, z, h = cfg.n_bins, cfg.latent_dim, list(cfg.hidden)
        self.encoder = _mlp([f + 1, *h, 2 * z])
        self.decoder = _mlp([z + 1, *reversed(h), f])
        self.register_buffer("mean", torch.zeros(f))
        self.register_buffer("std", torch.ones(f))

    def pitch_feature(self, pitch: torch.Tensor) -> torch.Tensor:
        """``[B]`` MIDI pitch -> ``[B, 1]`` in [-1, 1] over the trained range."""
        mid = 0.5 * (self.cfg.pitch_lo + self.cfg.pitch_hi)
        half = 0.5 * (self.cfg.pitch_hi - self.cfg.pitch_lo)
        return ((pitch.float() - mid) / half).unsqueeze(-1)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def encode(self, x: torch.Tensor, pitch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, F]`` log-magnitude, ``[B]`` pitch -> ``(mu [B, Z], logvar [B, Z])``."""
        h = self.encoder(torch.cat([self.normalize(x), self.pitch_feature(pitch)], -1))
        mu, logvar = h.chunk(2, -1)
        return mu, logvar.clamp(-12, 6)

    def decode(self, z: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """``[B, Z]`` latent, ``[B]`` pitch -> ``[B, F]`` log-magnitude (denormalised)."""
        return self.decoder(torch.cat([z, self.pitch_feature(pitch)], -1)) * self.std + self.mean

    def forward(self, x, pitch):
        mu, logvar = self.encode(x, pitch)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        recon = self.decoder(torch.cat([z, self.pitch_feature(pitch)], -1))
        return recon, mu, logvar


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(q(z|x) || N(0, I))`` per frame, summed over Z, averaged over the batch (Kingma &
    Welling 2014, Appendix B)."""
    return (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)).mean()


def perceptual_regularizer(centroids: torch.Tensor, target: torch.Tensor, kind: str = "tsne",
                           sigma: float = 0.3) -> torch.Tensor:
    """Distance-structure regulariser between latent centroids and rated dissimilarities.

    Args:
        centroids: ``[K, Z]`` latent centroids of K instruments.
        target: ``[K, K]`` rated dissimilarities in [0, 1] (zero diagonal).
        kind: ``tsne`` (KL(P || Q), the paper's form) or ``stress`` (see the module docstring).
        sigma: width of the Gaussian kernel on the ratings (``tsne`` only).

    Returns:
        A scalar tensor.
    """
    k = centroids.shape[0]
    off = ~torch.eye(k, dtype=torch.bool, device=centroids.device)
    d2 = torch.cdist(centroids, centroids).pow(2)
    if kind == "tsne":
        p = torch.exp(-target.pow(2) / (2 * sigma ** 2))[off]
        p = p / p.sum()
        q = (1.0 / (1.0 + d2))[off]
        q = q / q.sum()
        return (p * (torch.log(p + 1e-12) - torch.log(q + 1e-12))).sum()
    if kind == "stress":
        iu = torch.triu_indices(k, k, 1)
        d = (d2[iu[0], iu[1]] + 1e-9).sqrt()
        t = target[iu[0], iu[1]]
        return ((d / d.mean() - t / t.mean()) ** 2).mean()
    raise DarkGANError(f"unknown regulariser {kind!r}; choose one of {', '.join(REG_LOSSES)}")
