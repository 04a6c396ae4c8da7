"""What the conditioning predicts of the real notes: a linear regression over the training notes.

Two terms of the generator learn from the same fit: ``g_partial`` (each attribute's own effect on
the MAG-IF, :func:`darkgan.training.terms.partial_effect_maps`) and ``g_profile`` (the temporal
energy envelope expected of a real note with given labels and pitch,
:func:`darkgan.training.terms.envelope_profile_model`). Both regress a per-note feature on the K
attribute logits ``u = z / T`` (paper Eq. 1) and one indicator per pitch, in one chunked pass
over the cache.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from darkgan.errors import DataError


@dataclass
class ConditioningFit:
    """A fitted ``y = u @ beta + c[pitch] + e`` over the training notes.

    Attributes:
        beta: ``[K, D]`` float64, the attributes' coefficients (per unit of ``u``).
        pitch_coef: ``[P, D]`` float64, one intercept per pitch of ``levels``.
        levels: ``[P]`` the MIDI pitches of the training notes, ascending.
        u: ``[n, K]`` the training notes' ``u`` (for percentiles).
        residual_sd: ``[D]`` the residuals' standard deviation over the training notes.
    """

    beta: np.ndarray
    pitch_coef: np.ndarray
    levels: np.ndarray
    u: np.ndarray
    residual_sd: np.ndarray


def conditioning_regression(data, temperature: float, features: Callable[[np.ndarray], torch.Tensor],
                            ridge: float = 0.0, chunk: int = 1024, key: str = "g_partial",
                            ridge_key: str = "train.partial_ridge") -> ConditioningFit:
    """Regress a per-note feature of the real training notes on their conditioning and pitch.

    Over the n training notes, ``y = features(rows) [n, D]`` is fitted as
    ``y = sum_i u_i beta_i + c_pitch + e``. A ridge penalty ``ridge * n * sd(u_i)^2`` on each
    attribute's coefficient (the standardised coefficients' L2) shrinks the effects of
    attributes the others nearly determine; the pitch intercepts are not penalised.

    Args:
        data: a :class:`~darkgan.training.data.TrainingData` with attributes; temperature: T > 0.
        features: ``rows [m] -> [m, D]`` a feature of those cache rows (read ``chunk`` at a time).
        ridge: >= 0; chunk: notes read at a time; key, ridge_key: the loss weight and the ridge
            setting named in errors.

    Returns:
        the :class:`ConditioningFit`.

    Raises:
        DataError: no attributes, or ``ridge = 0`` with no more training notes than the K + P
            coefficients (P pitches).

    Source: ours (issue 15): ordinary least squares (ridge: Hoerl & Kennard 1970) over one pass of
    the cache, ``beta = (X'X + Lambda)^-1 X'Y`` with ``X'Y`` and ``diag(Y'Y)`` summed chunk by
    chunk (the residual sum of squares from them, no second pass).
    """
    if not data.n_attributes:
        raise DataError(f"train.loss_weights.{key} > 0 needs attributes (the baseline has none)")
    rows = np.asarray(data.train_rows)
    u = np.asarray(data.logits[rows], dtype=np.float64) / float(temperature)
    pitch = np.asarray(data.cache.pitch[rows])
    levels = np.unique(pitch)
    k, n = u.shape[1], len(rows)
    if ridge == 0 and n <= k + len(levels):
        raise DataError(f"train.loss_weights.{key}: {n} training notes cannot fit {k} attribute and "
                        f"{len(levels)} pitch coefficients by least squares; set {ridge_key} > 0")
    x = np.concatenate([u, (pitch[:, None] == levels[None]).astype(np.float64)], 1)
    pen = np.zeros(x.shape[1])
    pen[:k] = ridge * n * u.var(0)
    xty, yy = None, None
    for s in range(0, n, chunk):
        y = features(rows[s:s + chunk]).double()
        part = torch.from_numpy(x[s:s + chunk]).T @ y
        xty = part if xty is None else xty + part
        yy = y.square().sum(0) if yy is None else yy + y.square().sum(0)
    xtx = x.T @ x
    coef = np.linalg.lstsq(xtx + np.diag(pen), xty.numpy(), rcond=None)[0]
    rss = yy.numpy() - 2 * np.einsum("pd,pd->d", coef, xty.numpy()) + np.einsum("pd,pq,qd->d", coef, xtx, coef, optimize=True)
    return ConditioningFit(coef[:k], coef[k:], levels, u, np.sqrt(np.maximum(rss, 0) / n))
