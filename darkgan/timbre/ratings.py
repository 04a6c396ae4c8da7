"""Perceptual dissimilarity ratings of the 12 orchestral instruments (read and validated).

The file format is the one of ``../shared/reference/timbre-dissimilarity/timbre_dissimilarity.json``
(README there): ``instruments`` (names in matrix order), ``gm_program`` (name -> General MIDI
program, 0-based), ``dissimilarity_gaussian_mean`` (12 x 12, symmetric, zero diagonal, values in
[0, 1]: the target distances of the perceptual regulariser, Esling et al. 2018, Sec. 3.3) and
``pairs`` (the pooled raw ratings per unordered pair).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkgan.data.gm import GM_PROGRAM_NAMES
from darkgan.errors import DataError
from darkgan.utils.io import read_json

#: The ratings, shipped inside the package (a copy of the shared reference data and its README).
REFERENCE_RATINGS = Path(__file__).resolve().parent.parent / "assets" / "timbre-ratings" / "timbre_dissimilarity.json"


@dataclass(frozen=True)
class Ratings:
    """Rated timbre dissimilarities.

    Attributes:
        instruments: ``K`` instrument names, in matrix order.
        programs: ``K`` General MIDI programs (0-based) that render each instrument.
        dissimilarity: ``[K, K]`` float64, symmetric, zero diagonal, values in [0, 1].
    """

    instruments: tuple[str, ...]
    programs: tuple[int, ...]
    dissimilarity: np.ndarray

    def index(self, name: str) -> int:
        """Matrix index of an instrument (case-insensitive).

        Raises:
            DataError: unknown name (lists the known ones).
        """
        low = [n.lower() for n in self.instruments]
        if name.lower() not in low:
            raise DataError(f"unknown instrument {name!r}; rated instruments: {', '.join(self.instruments)}")
        return low.index(name.lower())

    def to_dict(self) -> dict:
        """JSON form (the same fields as the reference file, without the raw ratings)."""
        return {"instruments": list(self.instruments),
                "gm_program": dict(zip(self.instruments, self.programs)),
                "dissimilarity_gaussian_mean": self.dissimilarity.tolist()}


def ratings_from_dict(data: dict, source: str = "ratings") -> Ratings:
    """Validate a ratings dict and build :class:`Ratings`.

    Raises:
        DataError: (one line naming ``source``) a missing field, a ``gm_program`` entry or a pair
            naming an unknown instrument, a missing pair (matrix entry null/NaN or a pair absent
            from ``pairs``), a matrix of the wrong shape or asymmetric, a value outside [0, 1].
    """
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected a JSON object")
    for key in ("instruments", "gm_program", "dissimilarity_gaussian_mean"):
        if key not in data:
            raise DataError(f"{source}: missing field {key!r}")
    names = [str(n) for n in data["instruments"]]
    if len(names) < 3 or len(set(names)) != len(names):
        raise DataError(f"{source}: 'instruments' must list at least 3 distinct names")
    programs = _programs(data["gm_program"], names, source)
    mat = _matrix(data["dissimilarity_gaussian_mean"], names, source)
    _check_pairs(data.get("pairs"), names, source)
    return Ratings(tuple(names), programs, mat)


def _programs(gm: dict, names: list[str], source: str) -> tuple[int, ...]:
    if not isinstance(gm, dict):
        raise DataError(f"{source}: 'gm_program' must map instrument name -> GM program")
    for k in gm:
        if k not in names:
            raise DataError(f"{source}: gm_program names unknown instrument {k!r}")
    out = []
    for n in names:
        p = gm.get(n)
        if not isinstance(p, int) or not 0 <= p < len(GM_PROGRAM_NAMES):
            raise DataError(f"{source}: instrument {n!r} has no valid GM program (got {p!r})")
        out.append(p)
    return tuple(out)


def _matrix(rows, names: list[str], source: str) -> np.ndarray:
    k = len(names)
    try:
        mat = np.array([[np.nan if v is None else float(v) for v in r] for r in rows], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{source}: dissimilarity matrix must be {k} x {k} numbers") from None
    if mat.shape != (k, k):
        raise DataError(f"{source}: dissimilarity matrix is {mat.shape}, expected {k} x {k}")
    bad = np.argwhere(~np.isfinite(mat))
    if len(bad):
        i, j = bad[0]
        raise DataError(f"{source}: missing rating for pair {names[i]}-{names[j]}")
    out = np.argwhere((mat < 0) | (mat > 1))
    if len(out):
        i, j = out[0]
        raise DataError(f"{source}: rating {mat[i, j]:g} for pair {names[i]}-{names[j]} is outside [0, 1]")
    if not np.allclose(mat, mat.T, atol=1e-6) or np.any(np.diag(mat) != 0):
        raise DataError(f"{source}: dissimilarity matrix must be symmetric with a zero diagonal")
    return mat


def _check_pairs(pairs, names: list[str], source: str) -> None:
    if pairs is None:
        return
    seen = set()
    for p in pairs:
        a, b = p.get("a"), p.get("b")
        for n in (a, b):
            if n not in names:
                raise DataError(f"{source}: pair names unknown instrument {n!r}")
        values = [v for s in p.get("ratings_by_set", []) for v in s]
        if any(not (isinstance(v, (int, float)) and 0 <= v <= 1) for v in values):
            raise DataError(f"{source}: pair {a}-{b} has a rating outside [0, 1]")
        seen.add(frozenset((a, b)))
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if frozenset((a, b)) not in seen:
                raise DataError(f"{source}: missing pair {a}-{b} in 'pairs'")


def load_ratings(path: str | os.PathLike | None = None) -> Ratings:
    """Read and validate a ratings file (default: :data:`REFERENCE_RATINGS`).

    Raises:
        DataError: the file is missing, not JSON, or invalid (see :func:`ratings_from_dict`).
    """
    path = Path(path) if path is not None else REFERENCE_RATINGS
    return ratings_from_dict(read_json(path), source=str(path))
