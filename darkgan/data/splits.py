"""Train/valid/test splits of a note dataset (``DIR/splits.json``).

Schemes:
    ``instrument`` (NSynth's): instruments, not notes, are split, so valid/test instruments are
    never heard in training. Within each instrument family the instruments are shuffled by the
    seed and cut 80/10/10 (rounded; a family keeps at least one training instrument).
    ``random`` (the DarkGAN paper's 90/10): notes are shuffled by the seed and cut into
    train/valid.

``splits.json``: ``{"scheme", "seed", "fractions": {split: fraction}, "splits": {note_str: split}}``.
"""
from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np

from darkgan.errors import DataError

FRACTIONS = {
    "instrument": {"train": 0.8, "valid": 0.1, "test": 0.1},
    "random": {"train": 0.9, "valid": 0.1},
}


def _rng(seed: int, tag: str) -> np.random.Generator:
    """A generator that depends only on (seed, tag), not on iteration order."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{tag}".encode()).digest()[:8], "little")
    return np.random.default_rng(h)


def make_splits(records: Mapping[str, Mapping], scheme: str = "instrument", seed: int = 0,
                fractions: Mapping[str, float] | None = None) -> dict:
    """Assign every note of ``records`` (``{note_str: record}``) to a split.

    Args:
        records: NSynth records; ``instrument_str`` and ``instrument_family_str`` are used.
        scheme: ``"instrument"`` or ``"random"``.
        seed: the same seed and records give the same splits.
        fractions: override :data:`FRACTIONS` for the scheme.

    Returns:
        the ``splits.json`` dictionary.

    Raises:
        DataError: unknown scheme or fractions that do not sum to 1.
    """
    if scheme not in FRACTIONS:
        raise DataError(f"split scheme {scheme!r}: expected one of {sorted(FRACTIONS)}")
    fr = dict(fractions or FRACTIONS[scheme])
    if abs(sum(fr.values()) - 1.0) > 1e-6 or any(v < 0 for v in fr.values()):
        raise DataError(f"split fractions {fr}: need non-negative values summing to 1")
    out = _random_splits(records, fr, seed) if scheme == "random" else _instrument_splits(records, fr, seed)
    return {"scheme": scheme, "seed": int(seed), "fractions": fr,
            "splits": {k: out[k] for k in records}}


def _random_splits(records: Mapping[str, Mapping], fr: dict[str, float], seed: int) -> dict[str, str]:
    """Notes shuffled (seeded) and cut by ``fr`` (in its order)."""
    names = list(fr)
    keys = sorted(records)
    order = _rng(seed, "random").permutation(len(keys))
    bounds = _bounds(len(keys), [fr[n] for n in names])
    return {keys[idx]: names[int(np.searchsorted(bounds, rank, side="right"))] for rank, idx in enumerate(order)}


def _instrument_splits(records: Mapping[str, Mapping], fr: dict[str, float], seed: int) -> dict[str, str]:
    """Instruments shuffled within each family (seeded by family) and cut by the apportioned counts."""
    by_family: dict[str, list[str]] = {}
    for r in records.values():
        by_family.setdefault(r["instrument_family_str"], []).append(r["instrument_str"])
    insts = {f: sorted(set(by_family[f])) for f in sorted(by_family)}
    counts = _apportion(insts, fr, seed)
    inst_split: dict[str, str] = {}
    for f in insts:
        order = _rng(seed, f).permutation(len(insts[f]))
        pos = 0
        for n in fr:
            if n == "train":
                continue
            for idx in order[pos:pos + counts[f][n]]:
                inst_split[insts[f][idx]] = n
            pos += counts[f][n]
        for idx in order[pos:]:
            inst_split[insts[f][idx]] = "train"
    return {key: inst_split[r["instrument_str"]] for key, r in records.items()}


def _apportion(insts: dict[str, list[str]], fr: dict[str, float], seed: int) -> dict[str, dict[str, int]]:
    """Held-out instruments per family and split: largest-remainder apportionment of the global
    counts ``round(fraction * n_instruments)``, each family keeping >= 1 training instrument."""
    families = list(insts)
    n_total = sum(len(v) for v in insts.values())
    counts: dict[str, dict[str, int]] = {f: {} for f in families}
    tie = _rng(seed, "apportion").permutation(len(families))
    for n in fr:
        if n == "train":
            continue
        quota = {f: fr[n] * len(insts[f]) for f in families}
        for f in families:
            counts[f][n] = int(np.floor(quota[f]))
        left = int(round(fr[n] * n_total)) - sum(counts[f][n] for f in families)
        order = sorted(range(len(families)),
                       key=lambda i: (-(quota[families[i]] - counts[families[i]][n]), tie[i]))
        for i in order:
            if left <= 0:
                break
            f = families[i]
            if len(insts[f]) - sum(counts[f].values()) > 1:
                counts[f][n] += 1
                left -= 1
        for f in families:  # never take a family's last training instrument
            while len(insts[f]) - sum(counts[f].values()) < 1 and counts[f][n] > 0:
                counts[f][n] -= 1
    return counts


def _bounds(n: int, fractions: list[float]) -> np.ndarray:
    """Cumulative rounded split sizes (upper rank bounds) for ``n`` items."""
    cum = np.round(np.cumsum(fractions) * n).astype(int)
    cum[-1] = n
    return cum
