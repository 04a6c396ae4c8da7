"""The user scale of attribute values: 0 = the dataset's typical note, 1 = its most extreme notes.

The generator is conditioned on raw teacher probabilities ``alpha = sigmoid(z / T)`` (paper
Eq. 1). Over the validation notes of the default dataset the median attribute has mean 0.035
and the 99th percentile of "Tuning fork" is 0.078, so a raw scale in [0, 1] is useless to a
person: "Tuning fork = 0.8" asks for ten times more than any training note has.

:class:`AttributeScale` maps a *user value* ``v`` to a raw value per attribute ``i``, linearly
in the teacher's logit space (where the teacher's evidence adds up)::

    u_i(v) = m_i + v * (h_i - m_i)          m_i: median of z_i / T over the reference notes
    alpha_i(v) = sigmoid(u_i(v))            h_i: its ``high`` quantile (default 99th percentile)

so ``v = 0`` is the typical note, ``v = 1`` as much of attribute ``i`` as the 1 % most extreme
notes, ``v > 1`` beyond anything in the data (the paper's out-of-distribution regime, Sec. 4.4.2,
Fig. 2) and ``v < 0`` less than typical. The reference notes are a checkpoint's attribute bank
(validation notes, :mod:`darkgan.generation.bank`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Smallest logit span ``h_i - m_i`` used (an attribute constant over the data would divide by 0).
MIN_SPAN = 1e-3


@dataclass(frozen=True)
class AttributeScale:
    """Per-attribute user scale (see the module docstring).

    Attributes:
        median: ``[K]`` median of ``z / T`` (logits at temperature T) over the reference notes.
        high: ``[K]`` the ``quantile`` of ``z / T``; ``high - median >= MIN_SPAN``.
        quantile: the quantile that defines ``v = 1`` (default 0.99).
    """

    median: np.ndarray
    high: np.ndarray
    quantile: float = 0.99

    @classmethod
    def from_logits(cls, logits: np.ndarray, temperature: float, quantile: float = 0.99) -> "AttributeScale":
        """Fit on reference teacher logits.

        Args:
            logits: ``[M, K]`` raw teacher logits z of M reference notes (M >= 1).
            temperature: T of Eq. 1 (> 0).
            quantile: in (0.5, 1].

        Raises:
            ValueError: empty or non-finite logits, T <= 0, or a quantile outside (0.5, 1].
        """
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] < 1:
            raise ValueError(f"expected reference logits [M, K] with M >= 1, got shape {list(z.shape)}")
        if not np.isfinite(z).all():
            raise ValueError("reference logits contain NaN or inf")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.5 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0.5, 1], got {quantile}")
        u = z / float(temperature)
        median = np.median(u, axis=0)
        high = np.maximum(np.quantile(u, quantile, axis=0), median + MIN_SPAN)
        return cls(median=median.astype(np.float32), high=high.astype(np.float32), quantile=float(quantile))

    def _index(self, index):
        return slice(None) if index is None else index

    def to_raw(self, value, index=None) -> np.ndarray:
        """User values -> raw conditioning probabilities ``alpha``.

        Args:
            value: user values, broadcastable to ``[..., K]`` (or to ``index``'s shape).
            index: attribute columns the values belong to (``None``: all K, in order).

        Returns:
            float32 array of ``alpha`` in (0, 1), the broadcast shape.
        """
        i = self._index(index)
        m, h = self.median[i], self.high[i]
        u = m + np.asarray(value, dtype=np.float64) * (h - m)
        return (1.0 / (1.0 + np.exp(-u))).astype(np.float32)

    def to_user(self, alpha, index=None) -> np.ndarray:
        """Raw probabilities ``alpha`` in (0, 1) -> user values (inverse of :meth:`to_raw`).

        Raises:
            ValueError: a value outside the open interval (0, 1).
        """
        a = np.asarray(alpha, dtype=np.float64)
        if not ((a > 0) & (a < 1)).all():
            raise ValueError("raw attribute values must lie in the open interval (0, 1)")
        i = self._index(index)
        m, h = self.median[i], self.high[i]
        return ((np.log(a) - np.log1p(-a) - m) / (h - m)).astype(np.float32)
