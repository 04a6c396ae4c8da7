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

from darkgan.frami.config import TrainConfig
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
                step: Callable[[torch.Tensor], dict[str, torch.Tensor]], gen: torch.Generator,
                deadline: float | None = None, bar=None) -> dict[str, float] | None:
    """One shuffled pass over ``n`` items; ``step(index [b]) -> losses``. Returns mean losses, or
    ``None`` when ``deadline`` (``time.time()``) passed before the end (the epoch is then not counted)."""
    for m in modules:
        m.train()
    sums: dict[str, float] = {}
    for i, idx in enumerate(torch.randperm(n, generator=gen).split(batch_size)):
        if deadline is not None and time.time() > deadline:
            return None
        losses = step(idx)
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v.item()
        if bar is not None:
            bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
    return {k: v / (i + 1) for k, v in sums.items()}


@torch.no_grad()
def predict(model: SoundClassifier, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits ``[N, K]`` of log-mel ``x [N, 1, M, T]`` in eval mode."""
    model.eval()
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy (0..1) of logits ``[N, K]`` against labels ``[N]``."""
    return float((logits.argmax(1) == y).float().mean())
