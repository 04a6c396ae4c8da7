"""Attribute control: correlation, out-of-distribution correlation, increment consistency.

DarkGAN paper, Sec. 4.4.2 (definitions restated in ``../shared/reference/darkgan-facts.md``):

- **Attribute correlation** ``rho_i = corr(F_i(G(z, p, alpha)), alpha_i)``: Pearson correlation,
  over generations conditioned on validation attribute vectors ``alpha``, between the
  conditioning value of attribute ``i`` and the tagger's prediction ``F_i`` for the generated
  note (paper: 10k generations, F = the teacher).
- **Out-of-distribution correlation**: for the attributes with ``rho_i > 0``, add
  ``delta_l = 10^(-3 + l * delta_0 / 50)``, ``l = 0..50``, to attribute ``i`` of every
  conditioning vector (the others unchanged) and recompute ``rho_i`` (paper: 1k samples per
  increment); the curve is the mean of ``rho_i`` over those attributes at each ``delta_l``.
  ``delta_0 = 3.6`` (:data:`DELTA0`), i.e. increments from 1e-3 to 10^0.6 ~= 3.98, the range of
  the reference code (``np.logspace(-3, 0.6, ...)`` in its ``out_of_dist_corr2.py``).
- **Increment consistency**: for the 50 attributes of highest ``rho_i``, on 100 validation
  vectors with fixed noise, ``IC_i(delta_k) = mean(F_i(G(alpha + delta_k e_i)) - F_i(G(alpha)))
  / std(F_i(G(alpha)))``, ``delta_k = k / 5``, ``k = 0..25``; the curve is the mean over
  attributes.

Attributes are in [0, 1] (teacher probabilities); out-of-distribution inputs exceed 1 on
purpose and are not clipped. Predictions ``F_i`` are sigmoid probabilities at temperature 1.

**Increments in a model's own input units (ours).** The paper's increments are additive on the
probability, its generator's input. A generator that takes standardised logits
(``model.attr_input = "std_logit"``: ``(logit(alpha) - mean) / std``) sees every alpha >= 1 as
the same clamped logit, so on it the paper's grids (delta up to 4 and 5) mostly measure that clamp:
the shipped model's increment curve was flat after its first step. For such a model the drivers
take ``input_std`` (``[K]``, the std of ``logit(alpha)`` over the training notes) and shift in
logit space, ``alpha' = sigmoid(logit(alpha) + delta * input_std_i)``: delta counts standard
deviations of the model's input (:func:`shift_attribute`), the same grids, and an increment never
leaves the set of inputs the model can distinguish.

The ``register_metric`` functions here are pure math on arrays; the ``run_*`` drivers take a
generator callable and a predictor callable, so the same code serves real generators, the
"oracle" generator of the tests, and the cached runner.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from darkgan.errors import DarkGANError
from darkgan.evaluation.metrics import register_metric
from darkgan.evaluation.metrics._checks import as_matrix

#: delta_0 of the out-of-distribution increments (see module docstring).
DELTA0 = 3.6
#: Number of increment levels of the paper, l = 0..50.
OOD_LEVELS = 51
#: Increment-consistency grid of the paper: delta_k = k / 5, k = 0..25.
IC_STEPS = 26

#: ``generate(pitch [n] int64 MIDI, attributes [n, K] float32, seed) -> waves [n, 16000] float32``
#: (or any "notes" object that the paired ``predict`` accepts, e.g. the evaluation context's cached
#: :class:`darkgan.evaluation.features.NoteSet`). Same ``seed`` and ``n`` must give the same noise
#: vectors (increment consistency relies on it).
GenerateFn = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
#: ``predict(waves [n, 16000]) -> [n, K]`` tagger probabilities for the K vocabulary attributes
#: (NaN columns for attributes the tagger does not have).
PredictFn = Callable[[np.ndarray], np.ndarray]


def ood_deltas(levels: Sequence[int] | None = None, delta0: float = DELTA0) -> np.ndarray:
    """``delta_l = 10^(-3 + l * delta0 / 50)`` for ``l`` in ``levels`` (default 0..50), ``[L]``."""
    ls = np.arange(OOD_LEVELS) if levels is None else np.asarray(levels, dtype=np.float64)
    return 10.0 ** (-3.0 + ls * delta0 / 50.0)


def ood_levels(count: int) -> list[int]:
    """``count`` levels spread evenly over 0..50 (both ends kept); ``count >= 51`` gives all."""
    if count >= OOD_LEVELS:
        return list(range(OOD_LEVELS))
    return sorted(set(np.round(np.linspace(0, OOD_LEVELS - 1, max(count, 2))).astype(int).tolist()))


def increment_deltas(ks: Sequence[int] | None = None) -> np.ndarray:
    """``delta_k = k / 5`` for ``k`` in ``ks`` (default 0..25), ``[L]``."""
    ks = np.arange(IC_STEPS) if ks is None else np.asarray(ks, dtype=np.float64)
    return np.asarray(ks, dtype=np.float64) / 5.0


def increment_steps(count: int) -> list[int]:
    """``count`` values of k spread over 0..25 (0 and 25 kept); ``count >= 26`` gives all."""
    if count >= IC_STEPS:
        return list(range(IC_STEPS))
    return sorted(set(np.round(np.linspace(0, IC_STEPS - 1, max(count, 2))).astype(int).tolist()))


def shift_attribute(attrs: np.ndarray, i: int, delta: float, input_std: np.ndarray | None = None) -> np.ndarray:
    """``attrs [n, K]`` with attribute ``i`` raised by ``delta``: added to the probability (paper,
    ``input_std=None``), or by ``delta`` standard deviations of its logit,
    ``sigmoid(logit(alpha_i) + delta * input_std[i])`` (``input_std [K]``; alpha clamped to
    [1e-6, 1 - 1e-6] first, as the generator does). Returns a new float32 array ``[n, K]``.

    Source: the additive increment is the paper's (Sec. 4.4.2, Figs. 2-3); the logit shift is
    ours (module docstring, "Increments in a model's own input units")."""
    a = np.array(attrs, dtype=np.float32, copy=True)
    if input_std is None:
        a[:, i] += np.float32(delta)
        return a
    p = np.clip(a[:, i].astype(np.float64), 1e-6, 1.0 - 1e-6)
    u = np.log(p) - np.log1p(-p) + float(delta) * float(np.asarray(input_std)[i])
    a[:, i] = (1.0 / (1.0 + np.exp(-u))).astype(np.float32)
    return a


def pearson_columns(a, b) -> np.ndarray:
    """Column-wise Pearson correlation of ``a [n, K]`` and ``b [n, K]`` -> ``[K]`` (float64).

    A column that is constant (or contains NaN) in either input gives NaN, never a division
    warning. Raises DarkGANError on shape mismatch or ``n < 2``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None] if b.ndim == 1 else b
    if a.shape != b.shape or a.ndim != 2:
        raise DarkGANError(f"correlation: shapes differ ({a.shape} vs {b.shape})")
    if a.shape[0] < 2:
        raise DarkGANError(f"correlation: {a.shape[0]} samples, need at least 2")
    ac = a - a.mean(axis=0)
    bc = b - b.mean(axis=0)
    num = (ac * bc).sum(axis=0)
    den = np.sqrt((ac ** 2).sum(axis=0) * (bc ** 2).sum(axis=0))
    out = np.full(a.shape[1], np.nan)
    ok = np.isfinite(den) & (den > 1e-12 * max(1.0, float(np.nanmax(np.abs(den))) if den.size else 1.0))
    out[ok] = num[ok] / den[ok]
    return np.clip(out, -1.0, 1.0)


def _nanmean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


@register_metric("attribute_correlation")
def attribute_correlation(predicted, target, names: Sequence[str] | None = None) -> dict:
    """rho_i between tagger predictions and conditioning attributes.

    Args:
        predicted: ``[n, K]`` F_i(G(z, p, alpha)) (probabilities; NaN columns = no such class).
        target: ``[n, K]`` the conditioning alpha.
        names: K attribute names (optional).

    Returns:
        ``{"rho": [K] (NaN -> None in JSON), "names", "mean_rho", "n_positive", "n"}``.
    """
    p = np.asarray(predicted, dtype=np.float64)
    t = as_matrix(target, "attribute_correlation target", 2)
    if p.shape != t.shape:
        raise DarkGANError(f"attribute_correlation: predicted {p.shape} vs target {t.shape}")
    rho = pearson_columns(p, t)
    return {"rho": rho.tolist(), "names": list(names) if names is not None else None,
            "mean_rho": _nanmean(rho), "n_positive": int(np.nansum(rho > 0)), "n": int(t.shape[0])}


@register_metric("ood_correlation")
def ood_correlation(predicted, target, deltas, attributes: Sequence[int] | None = None) -> dict:
    """Out-of-distribution correlation curve.

    Args:
        predicted: ``[L, A, n]`` F_i(G(alpha + delta_l e_i)) for each increment l and attribute i.
        target: ``[A, n]`` the (un-incremented) alpha_i; the increment is a constant shift, so
            ``corr(alpha_i + delta_l, F) = corr(alpha_i, F)``.
        deltas: ``[L]`` the increments.
        attributes: A attribute indices (for the record).

    Returns:
        ``{"deltas": [L], "rho": [L][A], "mean_rho": [L], "attributes": [A]}``.
    """
    p = np.asarray(predicted, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    d = np.asarray(deltas, dtype=np.float64)
    if p.ndim != 3 or t.shape != p.shape[1:] or len(d) != p.shape[0]:
        raise DarkGANError(f"ood_correlation: predicted {p.shape}, target {t.shape}, deltas {d.shape} "
                           f"(expected [L, A, n], [A, n], [L])")
    rho = np.stack([pearson_columns(p[l].T, t.T) for l in range(p.shape[0])])
    return {"deltas": d.tolist(), "rho": rho.tolist(), "mean_rho": [_nanmean(r) for r in rho],
            "attributes": list(attributes) if attributes is not None else list(range(p.shape[1]))}


@register_metric("increment_consistency")
def increment_consistency(base, incremented, deltas, attributes: Sequence[int] | None = None) -> dict:
    """Increment consistency curve.

    Args:
        base: ``[A, n]`` F_i(G(z, p, alpha)) (no increment).
        incremented: ``[L, A, n]`` F_i(G(z, p, alpha + delta_k e_i)), same z, p, alpha.
        deltas: ``[L]``.

    Returns:
        ``{"deltas", "ic": [L][A], "mean_ic": [L], "attributes"}``; ``ic = mean(inc - base) /
        std(base)`` per attribute (NaN where ``std(base) == 0``).
    """
    b = np.asarray(base, dtype=np.float64)
    x = np.asarray(incremented, dtype=np.float64)
    d = np.asarray(deltas, dtype=np.float64)
    if x.ndim != 3 or b.shape != x.shape[1:] or len(d) != x.shape[0]:
        raise DarkGANError(f"increment_consistency: base {b.shape}, incremented {x.shape}, deltas {d.shape} "
                           f"(expected [A, n], [L, A, n], [L])")
    if b.shape[1] < 2:
        raise DarkGANError("increment_consistency: need at least 2 samples")
    std = b.std(axis=1, ddof=1)
    std = np.where(std > 1e-12, std, np.nan)
    ic = (x - b[None]).mean(axis=2) / std[None]
    return {"deltas": d.tolist(), "ic": ic.tolist(), "mean_ic": [_nanmean(r) for r in ic],
            "attributes": list(attributes) if attributes is not None else list(range(b.shape[0]))}


# --------------------------------------------------------------------------- protocol drivers
def _batched(generate: GenerateFn, predict: PredictFn, pitch: np.ndarray, attrs: np.ndarray, seed: int,
             batch: int) -> np.ndarray:
    """predict(generate(...)) over the rows in chunks of ``batch``; chunk c uses seed ``seed + c``."""
    outs = []
    for c, s in enumerate(range(0, len(pitch), batch)):
        waves = generate(pitch[s:s + batch], attrs[s:s + batch], seed + c)
        outs.append(np.asarray(predict(waves), dtype=np.float64))
    return np.concatenate(outs)


def run_attribute_correlation(generate: GenerateFn, predict: PredictFn, pitch, attrs, seed: int = 0,
                              batch: int = 256, names: Sequence[str] | None = None) -> dict:
    """Generate from ``attrs [n, K]`` / ``pitch [n]``, predict, and return :func:`attribute_correlation`."""
    pitch = np.asarray(pitch, dtype=np.int64)
    attrs = np.asarray(attrs, dtype=np.float32)
    pred = _batched(generate, predict, pitch, attrs, seed, batch)
    return attribute_correlation(pred, attrs, names=names)


def run_ood_correlation(generate: GenerateFn, predict: PredictFn, pitch, attrs, attributes: Sequence[int],
                        deltas, seed: int = 0, batch: int = 256, progress=None,
                        input_std: np.ndarray | None = None) -> dict:
    """Out-of-distribution curve: for each delta and attribute i, raise column i of
    ``attrs [n, K]`` by delta (:func:`shift_attribute`; ``input_std [K]``: in the model's input
    units), generate, predict, correlate (:func:`ood_correlation`)."""
    pitch = np.asarray(pitch, dtype=np.int64)
    attrs = np.asarray(attrs, dtype=np.float32)
    attributes = list(attributes)
    pred = np.empty((len(deltas), len(attributes), len(pitch)))
    for li, delta in enumerate(deltas):
        for ai, i in enumerate(attributes):
            a = shift_attribute(attrs, i, delta, input_std)
            pred[li, ai] = _batched(generate, predict, pitch, a, seed, batch)[:, i]
            if progress is not None:
                progress.update(len(pitch))
    return ood_correlation(pred, attrs[:, attributes].T, deltas, attributes)


def run_increment_consistency(generate: GenerateFn, predict: PredictFn, pitch, attrs, attributes: Sequence[int],
                              deltas, seed: int = 0, batch: int = 256, progress=None,
                              input_std: np.ndarray | None = None) -> dict:
    """Increment consistency: base generations once, then one set per (delta, attribute) with
    the same noise (same seeds) (:func:`increment_consistency`); increments as
    :func:`shift_attribute` (``input_std [K]``: in the model's input units)."""
    pitch = np.asarray(pitch, dtype=np.int64)
    attrs = np.asarray(attrs, dtype=np.float32)
    attributes = list(attributes)
    base_all = _batched(generate, predict, pitch, attrs, seed, batch)
    base = base_all[:, attributes].T
    inc = np.empty((len(deltas), len(attributes), len(pitch)))
    for li, delta in enumerate(deltas):
        for ai, i in enumerate(attributes):
            if delta == 0:
                inc[li, ai] = base[ai]
                continue
            a = shift_attribute(attrs, i, delta, input_std)
            inc[li, ai] = _batched(generate, predict, pitch, a, seed, batch)[:, i]
            if progress is not None:
                progress.update(len(pitch))
    return increment_consistency(base, inc, deltas, attributes)
