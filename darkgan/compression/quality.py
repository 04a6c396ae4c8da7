"""Quality of compressed generators: FAD and pitch accuracy on fixed inputs (issue 6).

Every model compared in one study (teacher, students, pruned, quantized) synthesises the *same*
notes: the same ``n`` conditioning rows (pitch, attributes) drawn with ``seed`` from the
validation split of the labelled dataset (or the teacher's attribute bank) and the same
``z ~ N(0, I)``. Reported:

- ``fad``: Frechet distance between embeddings of the model's notes and of ``n`` real
  validation notes (the dataset's MAG-IF cache, passed through the same inverse);
- ``fad_teacher``: Frechet distance to the teacher generator's notes for the same inputs (how
  far the compressed model moved from what it imitates);
- ``pitch_accuracy``: share of notes whose median pYIN f0 is within 50 cents of the requested
  pitch (:mod:`darkgan.evaluation.metrics.pitch_accuracy`).

Embedding: the AudioSet tagger's (``darkgan.teacher``, default EfficientAT mn04, the project's
offline teacher) penultimate features, as FAD's VGGish in the paper (absolute values depend on
the embedding; compare within one table). With ``n`` at most the embedding size the covariance
is singular: the FAD is then computed with ``allow_singular`` and flagged (``fad_singular``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

SynthFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], np.ndarray]


@dataclass
class QualityInputs:
    """Fixed inputs of a quality study: ``z [n, Z]``, ``pitch [n]`` MIDI, ``attributes [n, K]``."""

    z: torch.Tensor
    pitch: torch.Tensor
    attributes: torch.Tensor | None
    source: str


def quality_inputs(ckpt_cfg, n: int, seed: int = 0, data: str | Path | None = None) -> QualityInputs:
    """``n`` conditioning rows from the validation split (else the bank, else uniform) and z."""
    from darkgan.compression.conditioning import condition_pool, pool_from_dataset

    if data is not None:
        try:
            pool = pool_from_dataset(data, ckpt_cfg, "valid")
        except Exception:  # no validation notes: fall back to train
            pool = pool_from_dataset(data, ckpt_cfg, "train")
    else:
        pool = condition_pool(ckpt_cfg, None, "auto")
    rng = np.random.default_rng([seed, 7])
    p_idx, alpha = pool.sample(n, rng)
    z = torch.from_numpy(np.random.default_rng([seed, 11]).standard_normal((n, ckpt_cfg.config.model.latent_dim))
                         .astype(np.float32))
    k = ckpt_cfg.n_attributes if ckpt_cfg.attributes_enabled else 0
    return QualityInputs(z, p_idx + ckpt_cfg.pitch_range[0], alpha if k else None, pool.source)


def synthesize(fn: SynthFn, inp: QualityInputs, batch: int = 32) -> np.ndarray:
    """``[n, 16000]`` float32 waveforms from ``fn(z, pitch_midi, attributes)`` in batches."""
    out = []
    for s in range(0, len(inp.z), batch):
        a = None if inp.attributes is None else inp.attributes[s:s + batch]
        with torch.inference_mode():
            out.append(np.asarray(fn(inp.z[s:s + batch], inp.pitch[s:s + batch], a), dtype=np.float32))
    return np.concatenate(out)


def torch_synth(gen, ckpt_cfg, fast: bool = True) -> SynthFn:
    """A :data:`SynthFn` for a torch generator (fast path + ``torch.istft`` by default)."""
    from darkgan.compression.fast import FastSynth, fast_generator
    from darkgan.data.magif import magif_to_note

    norm = ckpt_cfg.get_normalizer()
    lo = ckpt_cfg.pitch_range[0]
    if fast:
        synth = FastSynth(fast_generator(gen), norm, fade=gen.cfg.synthesis_fade)
        return lambda z, p, a: synth(z, p - lo, a).numpy()
    return lambda z, p, a: magif_to_note(norm.denormalize(gen(z, p - lo, a)), gen.cfg.synthesis_fade).numpy()


def onnx_synth(path: str | Path, threads: int | None = None) -> SynthFn:
    """A :data:`SynthFn` for an exported ONNX file."""
    from darkgan.compression.export import load_onnx_session, run_onnx

    sess = load_onnx_session(path, threads)
    return lambda z, p, a: run_onnx(sess, (z, p) if a is None else (z, p, a))


def embed(waves: np.ndarray, teacher: str = "efficientat-mn04") -> np.ndarray:
    """Tagger embeddings ``[n, D]`` float64 of ``waves [n, 16000]``."""
    from darkgan.teacher import load_teacher

    t = load_teacher(teacher)
    return np.asarray(t.embedding(torch.from_numpy(waves)), dtype=np.float64)


def frechet(a: np.ndarray, b: np.ndarray) -> tuple[float, bool]:
    """``(FAD, singular)`` between two embedding sets ``[n, D]``."""
    from darkgan.evaluation.metrics.fad import frechet_distance, gaussian_stats

    singular = min(len(a), len(b)) <= a.shape[1]
    mu1, c1 = gaussian_stats(a, "reference", allow_singular=singular)
    mu2, c2 = gaussian_stats(b, "model", allow_singular=singular)
    return float(frechet_distance(mu1, c1, mu2, c2)), singular


def pitch_accuracy(waves: np.ndarray, pitch: np.ndarray) -> float:
    """Share of notes within 50 cents of their pitch (pYIN median f0)."""
    from darkgan.evaluation.metrics.pitch_accuracy import estimate_f0
    from darkgan.evaluation.metrics.pitch_accuracy import pitch_accuracy as acc

    return float(acc(estimate_f0(waves), np.asarray(pitch))["pitch_accuracy"])


def real_reference(data: str | Path, n: int, seed: int = 0) -> np.ndarray:
    """``n`` real validation notes ``[n, 16000]`` of a prepared dataset (through the MAG-IF inverse)."""
    from darkgan.data.cache import NoteCache
    from darkgan.evaluation.data import real_waves

    cache = NoteCache(data)
    rows = cache.rows("valid")
    if len(rows) == 0:
        rows = cache.rows("train")
    rng = np.random.default_rng([seed, 13])
    rows = np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))
    return real_waves(cache, rows)


class QualityStudy:
    """FAD (vs real data and vs the teacher) and pitch accuracy of several models on the same inputs.

    Args:
        teacher_ckpt: the teacher checkpoint (vocabulary, pitch range, conditioning source).
        data: a prepared, labelled dataset folder (real reference and conditioning); without it
            only ``fad_teacher`` and ``pitch_accuracy`` are computed.
        n: notes per model; seed: the inputs' seed.
    """

    def __init__(self, teacher_ckpt: str | Path, data: str | Path | None = None, n: int = 256, seed: int = 0,
                 tagger: str = "efficientat-mn04"):
        from darkgan.models.checkpoint import load_generator

        self.teacher_gen, self.cfg = load_generator(teacher_ckpt)
        self.data, self.tagger = data, tagger
        self.inputs = quality_inputs(self.cfg, n, seed, data)
        self._real = embed(real_reference(data, n, seed), tagger) if data is not None else None
        self._teacher_emb = None

    def teacher_embedding(self) -> np.ndarray:
        if self._teacher_emb is None:
            waves = synthesize(torch_synth(self.teacher_gen, self.cfg), self.inputs)
            self._teacher_waves = waves
            self._teacher_emb = embed(waves, self.tagger)
        return self._teacher_emb

    def evaluate(self, fn: SynthFn, is_teacher: bool = False) -> dict:
        """``{"fad", "fad_singular", "fad_teacher", "pitch_accuracy", "n"}`` of one model."""
        if is_teacher:
            emb = self.teacher_embedding()
            waves = self._teacher_waves
        else:
            waves = synthesize(fn, self.inputs)
            emb = embed(waves, self.tagger)
        res: dict = {"n": int(len(waves))}
        if self._real is not None:
            res["fad"], res["fad_singular"] = frechet(self._real, emb)
        else:
            res["fad"], res["fad_singular"] = None, None
        res["fad_teacher"] = 0.0 if is_teacher else frechet(self.teacher_embedding(), emb)[0]
        res["pitch_accuracy"] = pitch_accuracy(waves, self.inputs.pitch.numpy())
        return res
