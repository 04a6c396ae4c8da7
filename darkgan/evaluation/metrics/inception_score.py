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


def _bootstrap(probs, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of IS over ``n_boot`` resamplings (with replacement) of the rows."""
    p = np.asarray(probs, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(p), size=(int(n_boot), len(p)))
    vals = [inception_score_value(p[i])[0] for i in idx]
    lo, hi = np.percentile(vals, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def _score(key: str, probs, splits: int, n_boot: int, seed: int) -> dict:
    mean, std = inception_score_value(probs, splits)
    out = {key: mean, f"{key}_std": std, "n": int(np.shape(probs)[0]), "classes": int(np.shape(probs)[1]),
           "splits": splits}
    if n_boot:
        out[f"{key}_low"], out[f"{key}_high"] = _bootstrap(probs, n_boot, seed)
        out["n_boot"] = int(n_boot)
    return out


@register_metric("is")
def inception_score(probs, splits: int = 1, n_boot: int = 0, seed: int = 0) -> dict:
    """Inception score of ``probs [n, C]`` (softmax posteriors). Returns ``{"is", "is_std", "n",
    "classes", "splits"}`` and, with ``n_boot`` > 0, the bootstrap 95 % interval ``is_low`` /
    ``is_high`` (rows resampled with replacement, ``seed``). Raises DarkGANError as
    :func:`inception_score_value`."""
    return _score("is", probs, splits, n_boot, seed)


@register_metric("pis")
def pitch_inception_score(pitch_probs, splits: int = 1, n_boot: int = 0, seed: int = 0) -> dict:
    """PIS: IS over pitch posteriors ``[n, P]``; keys ``pis``, ``pis_std`` (, ``pis_low``, ``pis_high``)
    as :func:`inception_score`."""
    return _score("pis", pitch_probs, splits, n_boot, seed)


@register_metric("iis")
def instrument_inception_score(family_probs, splits: int = 1, n_boot: int = 0, seed: int = 0) -> dict:
    """IIS: IS over instrument-family posteriors ``[n, F]``; keys ``iis``, ``iis_std`` (, ``iis_low``,
    ``iis_high``) as :func:`inception_score`."""
    return _score("iis", family_probs, splits, n_boot, seed)
