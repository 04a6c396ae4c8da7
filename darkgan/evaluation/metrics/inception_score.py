"""Inception score over class posteriors (Salimans et al., NeurIPS 2016; DarkGAN Sec. 4.4.1).

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x)

DarkGAN reports it for pitch (PIS) and instrument family (IIS) posteriors of its in-house
classifier (here :mod:`darkgan.evaluation.inception`). Bounds: 1 (every sample gets the same
posterior) to C (confident predictions spread uniformly over C classes).
"""
from __future__ import annotations

import numpy as np

from darkgan.errors import DarkGANError
from darkgan.evaluation.metrics import register_metric
from darkgan.evaluation.metrics._checks import as_matrix

_EPS = 1e-12


def inception_score_value(probs, splits: int = 1) -> tuple[float, float]:
    """``(mean, std)`` of IS over ``splits`` equal chunks of ``probs [n, C]`` (std 0 for 1 split).

    Raises:
        DarkGANError: rows not probability distributions (negative, or sum off 1 by > 1e-3),
            fewer samples than splits.
    """
    p = as_matrix(probs, "inception score probabilities", 1)
    if (p < -1e-9).any() or np.abs(p.sum(axis=1) - 1.0).max() > 1e-3:
        raise DarkGANError("inception score: each row must be a probability distribution "
                           "(non-negative, summing to 1); pass softmax outputs, not logits")
    if splits < 1 or len(p) < splits:
        raise DarkGANError(f"inception score: {len(p)} samples for {splits} splits")
    p = np.clip(p, 0.0, None)
    scores = []
    for chunk in np.array_split(p, splits):
        py = chunk.mean(axis=0, keepdims=True)
        kl = (chunk * (np.log(chunk + _EPS) - np.log(py + _EPS))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores)) if splits > 1 else 0.0


@register_metric("is")
def inception_score(probs, splits: int = 1, **_) -> dict:
    """Inception score of ``probs [n, C]`` (softmax posteriors). Returns ``{"is", "is_std", "n",
    "classes", "splits"}``."""
    mean, std = inception_score_value(probs, splits)
    p = np.asarray(probs)
    return {"is": mean, "is_std": std, "n": int(p.shape[0]), "classes": int(p.shape[1]), "splits": splits}


@register_metric("pis")
def pitch_inception_score(pitch_probs, splits: int = 1, **_) -> dict:
    """PIS: IS over pitch posteriors ``[n, P]``. Returns ``{"pis", "pis_std", "n", "classes"}``."""
    mean, std = inception_score_value(pitch_probs, splits)
    return {"pis": mean, "pis_std": std, "n": int(np.shape(pitch_probs)[0]), "classes": int(np.shape(pitch_probs)[1])}


@register_metric("iis")
def instrument_inception_score(family_probs, splits: int = 1, **_) -> dict:
    """IIS: IS over instrument-family posteriors ``[n, F]``. Returns ``{"iis", "iis_std", "n", "classes"}``."""
    mean, std = inception_score_value(family_probs, splits)
    return {"iis": mean, "iis_std": std, "n": int(np.shape(family_probs)[0]),
            "classes": int(np.shape(family_probs)[1])}
