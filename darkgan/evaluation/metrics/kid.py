"""Kernel Inception Distance (Binkowski et al., "Demystifying MMD GANs", ICLR 2018, Sec. 3.2).

KID is the squared maximum mean discrepancy between the embedding distributions of real and
generated samples with the cubic polynomial kernel ``k(x, y) = (x . y / d + 1)^3`` (``d`` the
embedding dimension), estimated without bias:

    MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
              - 2/(mn) sum_{i, j} k(x_i, y_j)

averaged over ``num_subsets`` random subsets of ``subset_size`` samples drawn from each set
(without replacement within a subset). The estimate can be negative; its expectation is 0 when
both sets come from one distribution. The DarkGAN paper (Table 1) reports KID x 1e-4 on the
embedding of its in-house inception classifier; we report ``kid``, ``kid_std`` (over subsets)
and ``kid_x1e4``.

The kernel assumes features of order one (Inception-v3's pool features, for which it was
designed, have a mean square of ~0.1-0.3). The embedding of a freshly trained classifier has an
arbitrary scale; at a mean square of ~50 the cubic kernel's values reach 1e5 and the estimate's
variance swamps its mean. :func:`reference_scale` gives the factor that brings a reference set
to unit mean square per feature; applying it to both sets keeps KID comparable between all
rows measured against that reference.
"""
from __future__ import annotations

import numpy as np

from darkgan.errors import DarkGANError
from darkgan.evaluation.metrics import register_metric
from darkgan.evaluation.metrics._checks import as_matrix


def reference_scale(reference) -> float:
    """Factor ``sqrt(d / mean ||x||^2)`` that brings ``reference [n, d]`` to unit mean square per
    feature (1.0 for an all-zero reference).

    Raises:
        DarkGANError: not a non-empty finite 2-D array."""
    x = as_matrix(reference, "kid reference embeddings", 1)
    ms = float(np.mean(np.square(x)))
    return 1.0 if ms == 0.0 else float(1.0 / np.sqrt(ms))


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """``(x @ y.T / d + coef0) ** degree``: ``[m, d] x [n, d] -> [m, n]`` (float64)."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x, y, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 between samples ``x [m, d]`` and ``y [n, d]`` (m, n >= 2), polynomial kernel.

    Raises:
        DarkGANError: fewer than 2 samples on a side, dimension mismatch.
    """
    x = as_matrix(x, "kid x", 2)
    y = as_matrix(y, "kid y", 2)
    if x.shape[1] != y.shape[1]:
        raise DarkGANError(f"kid: embedding dimensions differ ({x.shape[1]} vs {y.shape[1]})")
    m, n = x.shape[0], y.shape[0]
    kxx = polynomial_kernel(x, x, degree, coef0)
    kyy = polynomial_kernel(y, y, degree, coef0)
    kxy = polynomial_kernel(x, y, degree, coef0)
    txx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    tyy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(txx + tyy - 2.0 * kxy.mean())


@register_metric("kid")
def kid(real, fake, subset_size: int | None = None, num_subsets: int = 100, seed: int = 0,
        interval: bool = True) -> dict:
    """KID between ``real [n_r, D]`` and ``fake [n_f, D]`` embeddings.

    Args:
        subset_size: samples per side in each subset; default ``min(1000, n_r, n_f)``
            (stylegan2-ada / tf-gan default 1000). An explicit value above ``min(n_r, n_f)`` is
            an error rather than silently shrunk.
        num_subsets: subsets averaged (default 100).
        seed: numpy seed of the subset draws.
        interval: also compute the 95 % interval (needs >= 3 samples a side): ``kid`` +- 1.96 x
            the two-sample jackknife standard error of the full-set estimate
            (:func:`.kad.mmd2_jackknife`; the spread over subsets is not an interval of the mean).

    Returns:
        ``{"kid", "kid_std", "kid_x1e4", "kid_std_x1e4", "subset_size", "num_subsets", "n_real",
        "n_fake", "dim", "seed"}``; ``kid_std`` is the standard deviation over subsets; with
        ``interval``: ``kid_se``, ``kid_low_x1e4``, ``kid_high_x1e4``.

    Raises:
        DarkGANError: fewer than 2 samples, ``subset_size < 2`` or larger than a set.
    """
    r = as_matrix(real, "kid real embeddings", 2)
    f = as_matrix(fake, "kid fake embeddings", 2)
    if r.shape[1] != f.shape[1]:
        raise DarkGANError(f"kid: embedding dimensions differ (real {r.shape[1]}, fake {f.shape[1]})")
    n_min = min(len(r), len(f))
    if subset_size is None:
        subset_size = min(1000, n_min)
    subset_size = int(subset_size)
    if subset_size < 2:
        raise DarkGANError(f"kid: subset size {subset_size} < 2")
    if subset_size > n_min:
        raise DarkGANError(f"kid: subset size {subset_size} exceeds the smaller set "
                           f"({len(r)} real, {len(f)} fake samples)")
    if num_subsets < 1:
        raise DarkGANError(f"kid: num_subsets must be >= 1, got {num_subsets}")
    rng = np.random.default_rng(seed)
    vals = np.empty(num_subsets)
    for s in range(num_subsets):
        xi = r if subset_size == len(r) else r[rng.choice(len(r), subset_size, replace=False)]
        yi = f if subset_size == len(f) else f[rng.choice(len(f), subset_size, replace=False)]
        vals[s] = mmd2_unbiased(xi, yi)
    mean = float(vals.mean())
    std = float(vals.std(ddof=1)) if num_subsets > 1 else 0.0
    out = {"kid": mean, "kid_std": std, "kid_x1e4": mean * 1e4, "kid_std_x1e4": std * 1e4,
           "subset_size": subset_size, "num_subsets": int(num_subsets), "n_real": len(r), "n_fake": len(f),
           "dim": r.shape[1], "seed": seed}
    if interval and n_min >= 3:
        from darkgan.evaluation.metrics.kad import Z95, mmd2_jackknife

        _, se = mmd2_jackknife(polynomial_kernel(r, r), polynomial_kernel(f, f), polynomial_kernel(r, f))
        out.update({"kid_se": se, "kid_low_x1e4": (mean - Z95 * se) * 1e4, "kid_high_x1e4": (mean + Z95 * se) * 1e4})
    return out
