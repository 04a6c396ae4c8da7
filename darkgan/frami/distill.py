"""Training of sound classifiers, Hinton KD, and FRAMI's reuse of the teacher's hidden states.

Losses (returned as dicts of scalars, summed by the caller with their weights):

- :func:`kd_loss`: ``T^2 * KL(softmax(t / T) || softmax(s / T))`` (Hinton et al. 2015, Eq. 2).
- :func:`binary_kd_loss`: its multi-label form for AudioSet taggers (527 independent sigmoids):
  ``T^2 * mean_c BCE(sigmoid(s_c / T), sigmoid(t_c / T))`` (the soft-target BCE with which
  EfficientAT itself was distilled, Schmid et al. 2023, Sec. 2).
- :class:`HiddenReuse`: FRAMI's "Reused Teacher Backend KD" (paper Fig. 2): the student's frame-level
  states before statistics pooling (``[B, C_s, T']``, mapped by a 1x1 conv to the teacher's C_t)
  match the teacher's in their mean and std over time; the utterance-level states after pooling
  (``[B, E_s]``, mapped by a linear layer to E_t) match the teacher's in their mean and variance
  over the batch and elementwise (MSE).
"""
from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from darkgan.frami.config import AUGMENTATIONS, TrainConfig
from darkgan.frami.models import SoundClassifier


def kd_loss(s_logits: torch.Tensor, t_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton KD on logits ``[B, K]`` at ``temperature``, scaled by ``T^2`` (scalar)."""
    t = temperature
    return F.kl_div(F.log_softmax(s_logits / t, 1), F.softmax(t_logits / t, 1), reduction="batchmean") * t * t


def binary_kd_loss(s_logits: torch.Tensor, t_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Multi-label KD on logits ``[B, C]``: soft-target BCE per class at ``temperature``, mean over
    batch and classes, scaled by ``T^2`` (scalar); its minimum is at ``s_logits == t_logits``."""
    t = temperature
    return F.binary_cross_entropy_with_logits(s_logits / t, torch.sigmoid(t_logits / t)) * t * t


class HiddenReuse(nn.Module):
    """Adapters and loss reusing the teacher's hidden states before/after pooling (FRAMI Fig. 2).

    ``forward(s_frame [B, C_s, T'], s_utt [B, E_s], t_frame [B, C_t, T'], t_utt [B, E_t]) -> scalar``.
    """

    def __init__(self, student: SoundClassifier, teacher: SoundClassifier):
        super().__init__()
        self.frame = nn.Conv1d(student.frame_dim, teacher.frame_dim, 1)
        self.utt = nn.Linear(student.utt_dim, teacher.utt_dim)

    def forward(self, s_frame, s_utt, t_frame, t_utt) -> torch.Tensor:
        f = self.frame(s_frame)
        frame = F.mse_loss(f.mean(-1), t_frame.mean(-1)) + F.mse_loss(f.std(-1), t_frame.std(-1))
        u = self.utt(s_utt)
        utt = F.mse_loss(u, t_utt) + F.mse_loss(u.mean(0), t_utt.mean(0)) + F.mse_loss(u.var(0), t_utt.var(0))
        return frame + utt


def supervised_step(student: SoundClassifier, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Cross-entropy of ``student`` on labelled log-mel ``x [B, 1, M, T]``, ``y [B]``."""
    return {"ce": F.cross_entropy(student(x), y)}


def kd_step(student: SoundClassifier, teacher: nn.Module | None, x: torch.Tensor, cfg: TrainConfig,
            reuse: HiddenReuse | None = None, t_logits: torch.Tensor | None = None,
            multilabel: bool = False) -> dict[str, torch.Tensor]:
    """KD terms on (real or synthesized) inputs ``x [B, 1, M, T]``: ``kd`` and, with ``reuse``, ``hidden``.

    ``t_logits [B, C]``: the teacher's logits when already known (cached labels of real notes,
    :mod:`darkgan.teacher.labels`; the teacher is then not run and ``reuse`` must be ``None``).
    ``multilabel``: :func:`binary_kd_loss` (AudioSet teachers) instead of :func:`kd_loss`.
    """
    t_frame = t_utt = None
    if t_logits is None:
        with torch.no_grad():
            t_logits, t_frame, t_utt = teacher.hidden(x)
    s_logits, s_frame, s_utt = student.hidden(x)
    loss = binary_kd_loss if multilabel else kd_loss
    out = {"kd": cfg.w_kd * loss(s_logits, t_logits, cfg.temperature)}
    if reuse is not None and cfg.w_hidden > 0:
        out["hidden"] = cfg.w_hidden * reuse(s_frame, s_utt, t_frame, t_utt)
    return out


def train_epoch(modules: list[nn.Module], opt: torch.optim.Optimizer, n: int, batch_size: int,
                step: Callable[[torch.Tensor, torch.Generator], dict[str, torch.Tensor]], gen: torch.Generator,
                deadline: float | None = None, bar=None) -> dict[str, float] | None:
    """One shuffled pass over ``n`` items; ``step(index [b], gen) -> losses`` (``gen``: the run's
    generator, for the step's own draws, e.g. :func:`augment_synthesized`; saved with every
    checkpoint, so a resumed run draws the same). Returns mean losses, or ``None`` when
    ``deadline`` (``time.time()``) passed before the end (the epoch is then not counted)."""
    for m in modules:
        m.train()
    sums: dict[str, float] = {}
    for i, idx in enumerate(torch.randperm(n, generator=gen).split(batch_size)):
        if deadline is not None and time.time() > deadline:
            return None
        losses = step(idx, gen)
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v.item()
        if bar is not None:
            bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
    return {k: v / (i + 1) for k, v in sums.items()}


@torch.no_grad()
def augment_synthesized(x: torch.Tensor, kinds: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """New inputs from a batch of synthesized log-mels, for the teacher to label anew.

    A data-free student sees only the few hundred samples of the memory; in contrastive model
    inversion (Fang et al., IJCAI 2021, the FRAMI paper's ref. [1]) the student's KD stage
    augments them, as DeepInversion's does. Here, in this order, each a fresh draw per sample:

    - ``"mixup"``: ``lam * x + (1 - lam) * x[perm]``, ``lam ~ U(0, 1)``, ``perm`` a random
      permutation of the batch (Zhang et al., ICLR 2018; on log-mels, as audio taggers use it);
    - ``"shift"``: a circular roll along time by an integer in ``[-T/4, T/4]`` frames;
    - ``"mask"``: SpecAugment (Park et al., Interspeech 2019): one band of ``[0, M/8]`` mel bins and
      one span of ``[0, T/8]`` frames set to 0 (the standardised inputs' mean).

    Args:
        x: ``[B, 1, M, T]`` standardised log-mel; kinds: a subset of :data:`AUGMENTATIONS` (empty:
            ``x`` itself); gen: the generator of the draws.

    Returns:
        ``[B, 1, M, T]`` (a new tensor unless ``kinds`` is empty).

    Raises:
        ValueError: an unknown kind.
    """
    bad = [k for k in kinds if k not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"augment_synthesized: unknown {bad} (known: {', '.join(AUGMENTATIONS)})")
    b, _, m, t = x.shape
    if "mixup" in kinds and b > 1:
        lam = torch.rand(b, 1, 1, 1, generator=gen)
        x = lam * x + (1 - lam) * x[torch.randperm(b, generator=gen)]
    if "shift" in kinds:
        k = torch.randint(-(t // 4), t // 4 + 1, (b,), generator=gen)
        frames = (torch.arange(t)[None, :] - k[:, None]) % t  # [B, T]
        x = torch.gather(x, 3, frames[:, None, None, :].expand(b, 1, m, t))
    if "mask" in kinds:
        x = x.clone()
        for (lo, w), dim in ((_span(m, m // 8, gen, b), 2), (_span(t, t // 8, gen, b), 3)):
            pos = torch.arange(x.shape[dim])[None, :]
            hit = (pos >= lo[:, None]) & (pos < (lo + w)[:, None])  # [B, size]
            shape = (b, 1, -1, 1) if dim == 2 else (b, 1, 1, -1)
            x = x.masked_fill(hit.view(shape), 0.0)
    return x


def _span(size: int, most: int, gen: torch.Generator, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and width ``[b]`` of a random span of at most ``most`` of ``size`` positions."""
    w = torch.randint(0, max(most, 0) + 1, (b,), generator=gen)
    lo = (torch.rand(b, generator=gen) * (size - w + 1)).long()
    return lo, w


@torch.no_grad()
def predict(model: SoundClassifier, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits ``[N, K]`` of log-mel ``x [N, 1, M, T]`` in eval mode."""
    model.eval()
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy (0..1) of logits ``[N, K]`` against labels ``[N]``."""
    return float((logits.argmax(1) == y).float().mean())
