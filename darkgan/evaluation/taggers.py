"""Callables that the control measures (:mod:`.metrics.correlation`, :mod:`.metrics.control`) run.

- :func:`generator_fn`: ``generate(pitch [n], attrs [n, K], seed) -> waves [n, 16000]`` over a
  :class:`darkgan.generation.api.DarkGAN` (noise ``z ~ N(0, I)`` from ``seed``: the same seed and
  n give the same z, as increment consistency needs).
- :func:`vocabulary_predictor`: ``predict(waves) -> [n, K]`` probabilities of the K vocabulary
  attributes from a tagger (the teacher, or YAMNet through :func:`yamnet_mapping`), at a
  temperature (paper Eq. 1: ``sigmoid(z / T)``; rho uses T = 1, retrieval the checkpoint's T).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from darkgan.evaluation.metrics.correlation import GenerateFn, PredictFn

#: Instrument attributes of the paper's Table 2 (T = 2: rho 0.30-0.50), AudioSet display names.
TABLE2_INSTRUMENTS = ("Acoustic guitar", "Bass guitar", "Brass instrument", "Chime", "Guitar",
                      "Plucked string instrument", "Saxophone", "Electronic tuner", "Tuning fork", "Percussion")
#: The teacher rho each Table-2 instrument is asked to reach (issue 15's target; the paper's 0.30-0.50).
TABLE2_TARGET = 0.35


def yamnet_mapping(names: Sequence[str], mids: Sequence[str], yam_names: Sequence[str],
                   yam_mids: Sequence[str]) -> np.ndarray:
    """For each of the K attributes, the YAMNet class index with the same AudioSet mid (else the
    same display name, case-insensitive), or -1 -> ``[K]`` int64."""
    by_mid = {m: i for i, m in enumerate(yam_mids)}
    by_name = {n.lower().strip(): i for i, n in enumerate(yam_names)}
    return np.array([by_mid.get(m, by_name.get(n.lower().strip(), -1)) for n, m in zip(names, mids)], dtype=np.int64)


def vocabulary_predictor(tagger, columns: Sequence[int], temperature: float = 1.0) -> PredictFn:
    """``predict(waves [n, 16000]) -> [n, K]`` float64: ``sigmoid(z[:, columns] / T)`` of ``tagger``
    (a :class:`darkgan.teacher.base.Teacher`); a column of -1 gives NaN (class not in the tagger)."""
    cols = np.asarray(columns, dtype=np.int64)
    ok = cols >= 0

    def predict(waves: np.ndarray) -> np.ndarray:
        probs = tagger.probabilities(np.asarray(waves, dtype=np.float32), temperature=temperature).cpu().numpy()
        out = np.full((len(probs), len(cols)), np.nan)
        out[:, ok] = probs[:, cols[ok]]
        return out

    return predict


def yamnet_columns(names: Sequence[str], teacher, class_indices: Sequence[int], yamnet) -> np.ndarray:
    """YAMNet class index of each attribute (``names``, the ``teacher``'s ``class_indices``), -1
    where YAMNet lacks the class -> ``[K]`` int64."""
    mids = [teacher.class_mids[int(i)] for i in class_indices]
    return yamnet_mapping(names, mids, yamnet.class_names, yamnet.class_mids)


def generator_fn(model, batch_size: int | None = None) -> GenerateFn:
    """``generate(pitch [n], attrs [n, K], seed) -> [n, 16000]`` float32 for a DarkGAN: z drawn
    from ``numpy.random.default_rng(seed)`` (``[n, Z]`` standard normal)."""

    def generate(pitch: np.ndarray, attrs: np.ndarray, seed: int) -> np.ndarray:
        z = np.random.default_rng(seed).standard_normal((len(pitch), model.latent_dim)).astype(np.float32)
        return model.generate_batch(z, pitch, attrs, batch_size=batch_size).numpy()

    return generate
