"""A Gaussian prior over the teacher's attribute logits: which soft labels rise together.

A note's soft labels are strongly correlated ("Guitar", "Acoustic guitar", "Plucked string
instrument" and "Strum" rise together). :class:`AttributePrior` is a Gaussian over the attribute
logits ``u = z / T`` (``alpha = sigmoid(u)``, paper Eq. 1); given asked values ``t_S`` for the
attributes ``S``, every other attribute moves by its regression on them,

    u' = u + (t_S - u_S) Sigma_SS^-1 Sigma_S.,   u'_S = t_S

(the conditional mean of a Gaussian, shifted by the base note's own deviation from it). Users of
the generator steer with it (:mod:`darkgan.generation.steer`); training distils the steered
response into single-attribute edits with it (``g_steer``, :mod:`darkgan.training.terms`). It
lives with the teacher's labels because it is a statistic of them.
"""
from __future__ import annotations

import numpy as np

from darkgan.errors import DarkGANError

#: Probabilities are clipped to [EPS, 1 - EPS] before the logit (|u| <= 9.2).
EPS = 1e-4


def logit(alpha) -> np.ndarray:
    """``log(a / (1 - a))`` of probabilities clipped to [EPS, 1 - EPS], float64."""
    a = np.clip(np.asarray(alpha, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(a) - np.log1p(-a)


class AttributePrior:
    """A Gaussian over attribute logits ``u = z / T`` ([K] mean, [K, K] covariance).

    Args:
        mean: ``[K]`` mean logit. cov: ``[K, K]`` covariance of the logits.
        ridge: added to the diagonal of ``Sigma_SS`` before solving, relative to its mean
            diagonal (asked attributes that the data ties together stay solvable).

    Raises:
        DarkGANError: shapes that do not match, or non-finite values.
    """

    def __init__(self, mean, cov, ridge: float = 1e-3):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.cov = np.asarray(cov, dtype=np.float64)
        k = len(self.mean)
        if self.mean.ndim != 1 or self.cov.shape != (k, k):
            raise DarkGANError(f"AttributePrior: mean {self.mean.shape} and covariance {self.cov.shape} do not match")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.cov).all()):
            raise DarkGANError("AttributePrior: non-finite mean or covariance")
        self.ridge = float(ridge)

    @classmethod
    def from_logits(cls, logits, temperature: float) -> "AttributePrior":
        """Fitted on teacher logits ``z [M, K]`` (the bank's) at temperature ``T`` (M >= 2)."""
        u = np.asarray(logits, dtype=np.float64) / float(temperature)
        if u.ndim != 2 or len(u) < 2:
            raise DarkGANError(f"AttributePrior: need logits [M >= 2, K], got {list(u.shape)}")
        return cls(u.mean(0), np.cov(u, rowvar=False))

    def steer(self, alpha, idx, target) -> np.ndarray:
        """Set attributes ``idx`` to ``target`` and move the others with them.

        Args:
            alpha: ``[n, K]`` base conditioning vectors (probabilities).
            idx: ``[m]`` indices of the asked attributes (distinct).
            target: ``[m]`` their asked probabilities (raw scale).

        Returns:
            ``[n, K]`` float32: column ``idx`` equal to ``target`` (to float32), the others
            shifted by their regression on the asked logits (module docstring).
        """
        a = np.asarray(alpha, dtype=np.float64)
        idx = np.asarray(idx, dtype=np.int64)
        out = a.copy()
        if len(idx) == 0:
            return out.astype(np.float32)
        t = logit(target)
        u = logit(a)
        s_ss = self.cov[np.ix_(idx, idx)]
        s_ss = s_ss + self.ridge * max(float(np.mean(np.diag(s_ss))), 1e-12) * np.eye(len(idx))
        coef = np.linalg.solve(s_ss, self.cov[idx])  # [m, K]: regression of every logit on the asked
        u = u + (t[None, :] - u[:, idx]) @ coef
        out = 1.0 / (1.0 + np.exp(-u))
        out[:, idx] = np.asarray(target, dtype=np.float64)[None, :]
        return out.astype(np.float32)

    def single_coefficients(self) -> np.ndarray:
        """``[K, K]`` float64: row ``i`` is how every logit moves per unit of attribute ``i``'s
        logit when ``i`` alone is asked (``Sigma_i. / (Sigma_ii (1 + ridge))``; entry ``[i, i]``
        just under 1), so ``steer(alpha, [i], [t])`` is ``u + (logit(t) - u_i) C[i]`` with column
        ``i`` set to ``t``. The training term ``g_steer`` uses these rows.

        Source: the regression coefficients of a Gaussian's conditional mean (module docstring),
        ours as a training input (issue 15)."""
        d = np.diag(self.cov)
        return self.cov / (np.maximum(d, 1e-12) * (1.0 + self.ridge))[:, None]
