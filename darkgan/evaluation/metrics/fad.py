"""Frechet (audio) distance between Gaussians fitted to embeddings, and FAD-infinity.

FAD (Kilgour et al., "Frechet Audio Distance", 2019; after FID, Heusel et al. 2017):

    FD = |mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr( (S_r^1/2 S_f S_r^1/2)^1/2 )

The trace term is computed by the eigenvalue method in float64: ``S_r^1/2`` from the symmetric
eigen-decomposition of ``S_r`` (negative round-off eigenvalues clipped to 0), then the
eigenvalues of the symmetric PSD matrix ``S_r^1/2 S_f S_r^1/2``, whose square roots summed give
``tr((S_r S_f)^1/2)`` (the two matrices are similar). No ``scipy.linalg.sqrtm`` (it returned
complex or wrong results in some SciPy releases; the symmetric route is exact and stable).

FAD-infinity (Chung et al. / Gui et al., "Adapting Frechet Audio Distance for Generative Music
Evaluation", ICASSP 2024, ``fadtk``): FAD is biased upwards by ~c/N for N evaluation samples.
Compute FAD on random subsets of N = N_1 < ... < N_k generated samples (the reference keeps all
its samples), fit ``FAD(N) = FAD_inf + slope / N`` by least squares and report the intercept.

Sample sizes: the covariance of ``n`` samples in ``D`` dimensions has rank <= n - 1; with
``n <= D`` it is singular and FAD is dominated by estimation noise, so by default both sets need
``n > D`` (:class:`DarkGANError` otherwise; ``allow_singular=True`` lifts this to ``n >= 2``).
"""
from __future__ import annotations

import numpy as np

from darkgan.errors import DarkGANError
from darkgan.evaluation.metrics import register_metric
from darkgan.evaluation.metrics._checks import as_matrix


def gaussian_stats(emb, name: str = "embeddings", allow_singular: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` (float64) of ``emb [n, D]``.

    Raises:
        DarkGANError: ``n < 2``, or ``n <= D`` without ``allow_singular`` (the message names the
            sizes), or non-finite values.
    """
    x = as_matrix(emb, name, min_rows=2)
    n, d = x.shape
    if n <= d and not allow_singular:
        raise DarkGANError(f"{name}: {n} samples for a {d}-dimensional embedding; FAD needs more samples "
                           f"than dimensions (n > {d}) for a full-rank covariance (raise --n)")
    mu = x.mean(axis=0)
    xc = x - mu
    cov = xc.T @ xc / (n - 1)
    return mu, cov


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix ``[D, D]`` (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh((a + a.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Frechet distance between N(mu1, cov1) and N(mu2, cov2); all float64, ``[D]`` / ``[D, D]``.

    Returns a float >= 0 (tiny negative round-off is clipped to 0).

    Raises:
        DarkGANError: mismatched dimensions.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise DarkGANError(f"Frechet distance: mismatched shapes mu {mu1.shape}/{mu2.shape}, "
                           f"cov {cov1.shape}/{cov2.shape}")
    s1 = _psd_sqrt(cov1)
    m = s1 @ cov2 @ s1
    eig = np.linalg.eigvalsh((m + m.T) / 2.0)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_covmean)
    return max(fd, 0.0)


@register_metric("fad")
def fad(real, fake, allow_singular: bool = False) -> dict:
    """Frechet distance between embedding sets.

    Args:
        real: ``[n_r, D]`` reference embeddings (e.g. real training notes).
        fake: ``[n_f, D]`` evaluated embeddings (generations, or held-out real notes).
        allow_singular: accept ``n <= D`` (rank-deficient covariance; value then biased high).

    Returns:
        ``{"fad": float, "n_real": int, "n_fake": int, "dim": int}``.

    Raises:
        DarkGANError: dimension mismatch, too few samples (see module docstring).
    """
    r = as_matrix(real, "fad real embeddings", 2)
    f = as_matrix(fake, "fad fake embeddings", 2)
    if r.shape[1] != f.shape[1]:
        raise DarkGANError(f"fad: embedding dimensions differ (real {r.shape[1]}, fake {f.shape[1]})")
    mu_r, cov_r = gaussian_stats(r, "fad real embeddings", allow_singular)
    mu_f, cov_f = gaussian_stats(f, "fad fake embeddings", allow_singular)
    return {"fad": frechet_distance(mu_r, cov_r, mu_f, cov_f), "n_real": r.shape[0], "n_fake": f.shape[0],
            "dim": r.shape[1]}


@register_metric("fad_inf")
def fad_inf(real, fake, n_min: int | None = None, steps: int = 10, repeats: int = 1, seed: int = 0,
            allow_singular: bool = False) -> dict:
    """FAD-infinity: extrapolate FAD(N) over ``fake`` subset sizes N to 1/N = 0 (fadtk-style).

    Args:
        real: ``[n_r, D]`` reference embeddings (all used for the reference Gaussian).
        fake: ``[n_f, D]`` evaluated embeddings; subsets of N drawn without replacement.
        n_min: smallest N (default ``max(D + 1, n_f // 5)``, at least 2).
        steps: number of distinct N values, linearly spaced in [n_min, n_f] (>= 3 needed).
        repeats: independent draws averaged per N.
        seed: numpy seed of the subset draws.

    Returns:
        ``{"fad_inf", "slope", "r2", "ns": [k], "fads": [k], "fad": FAD at N = n_f, ...}``.

    Raises:
        DarkGANError: fewer than 3 distinct N values fit between ``n_min`` and ``n_f``, or as
            :func:`fad`.
    """
    r = as_matrix(real, "fad_inf real embeddings", 2)
    f = as_matrix(fake, "fad_inf fake embeddings", 2)
    if r.shape[1] != f.shape[1]:
        raise DarkGANError(f"fad_inf: embedding dimensions differ (real {r.shape[1]}, fake {f.shape[1]})")
    n, d = f.shape
    mu_r, cov_r = gaussian_stats(r, "fad_inf real embeddings", allow_singular)
    lo = n_min if n_min is not None else max(d + 1 if not allow_singular else 2, n // 5)
    if not allow_singular and lo <= d:
        raise DarkGANError(f"fad_inf: n_min={lo} <= embedding dimension {d}")
    ns = np.unique(np.linspace(lo, n, max(int(steps), 3)).astype(int))
    if len(ns) < 3 or lo >= n:
        raise DarkGANError(f"fad_inf: {n} samples leave fewer than 3 subset sizes between n_min={lo} and {n}; "
                           f"need n >= {lo + 2} (raise --n)")
    rng = np.random.default_rng(seed)
    fads = []
    for m in ns:
        vals = []
        for _ in range(max(1, int(repeats)) if m < n else 1):
            sub = f[rng.choice(n, size=int(m), replace=False)] if m < n else f
            mu_f, cov_f = gaussian_stats(sub, "fad_inf subset", allow_singular=True)
            vals.append(frechet_distance(mu_r, cov_r, mu_f, cov_f))
        fads.append(float(np.mean(vals)))
    x = 1.0 / ns.astype(np.float64)
    y = np.asarray(fads)
    slope, intercept = np.polyfit(x, y, 1)
    pred = intercept + slope * x
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"fad_inf": float(intercept), "slope": float(slope), "r2": r2, "ns": ns.tolist(), "fads": fads,
            "fad": fads[-1], "n_real": r.shape[0], "n_fake": n, "dim": d, "seed": seed}
