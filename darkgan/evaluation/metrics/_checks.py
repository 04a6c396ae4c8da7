"""Shared input checks for the metrics (shapes, finiteness, sample sizes)."""
from __future__ import annotations

import numpy as np

from darkgan.errors import DarkGANError


def as_matrix(x, name: str, min_rows: int = 1, dtype=np.float64) -> np.ndarray:
    """``x`` as a finite 2-D array ``[n, d]`` of ``dtype``; a torch tensor is accepted.

    Raises:
        DarkGANError: not 2-D, fewer than ``min_rows`` rows, or NaN/inf values.
    """
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 2:
        raise DarkGANError(f"{name}: expected a matrix [n, d], got shape {x.shape}")
    if x.shape[0] < min_rows:
        raise DarkGANError(f"{name}: {x.shape[0]} samples, need at least {min_rows}")
    if not np.all(np.isfinite(x)):
        raise DarkGANError(f"{name}: contains NaN or inf values")
    return x


def as_vector(x, name: str, dtype=np.float64) -> np.ndarray:
    """``x`` as a 1-D array (torch tensors accepted). Raises DarkGANError if not 1-D."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 1:
        raise DarkGANError(f"{name}: expected a vector [n], got shape {x.shape}")
    return x
