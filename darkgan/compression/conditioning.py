"""Conditioning (pitch, attributes) for distillation and for quality checks of compressed models.

The DrumGAN compression study found that distilling with conditioning drawn from the *real*
joint distribution of (pitch, attributes) works better than uniform sampling. Sources, in order:

1. a labelled dataset folder (``--data DIR``): the notes of ``split`` (default ``train``) whose
   pitch is in the checkpoint's range; attributes ``alpha = sigmoid(z / T)`` (paper Eq. 1) of the
   checkpoint's K vocabulary classes (``DIR/labels/<teacher>.npz`` columns ``class_indices``),
   T the checkpoint's temperature;
2. the checkpoint's attribute bank (validation notes, ``attribute_bank.safetensors``);
3. ``uniform`` (explicit only): pitch uniform over the range, attributes uniform in [0, 1].

A baseline checkpoint (K = 0) needs only pitches: with no source, pitches are uniform.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from darkgan.errors import DarkGANError, DataError


@dataclass
class ConditionPool:
    """Rows of real conditioning.

    Attributes:
        pitch_index: ``[M]`` int64, MIDI pitch minus the checkpoint's lowest pitch.
        alpha: ``[M, K]`` float32 attribute values (``K = 0`` for the baseline).
        source: where the rows come from (for logs and reports).
    """

    pitch_index: np.ndarray
    alpha: np.ndarray
    source: str

    def __len__(self) -> int:
        return int(len(self.pitch_index))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pitch_index [n] int64, alpha [n, K] float32)`` drawn with replacement."""
        rows = rng.integers(0, len(self), size=n)
        return (torch.from_numpy(self.pitch_index[rows].astype(np.int64)),
                torch.from_numpy(np.ascontiguousarray(self.alpha[rows], dtype=np.float32)))


def pool_from_dataset(data_dir: str | Path, ckpt_cfg, split: str = "train") -> ConditionPool:
    """Conditioning rows of a labelled dataset folder (see the module docstring).

    Raises:
        DataError: no labels of the checkpoint's teacher, no notes of ``split`` in the pitch range.
    """
    from darkgan.generation.bank import dataset_split_and_pitch, make_bank

    data_dir = Path(data_dir)
    lo, hi = ckpt_cfg.pitch_range
    if ckpt_cfg.attributes_enabled and ckpt_cfg.n_attributes:
        teacher_id = str(ckpt_cfg.teacher.get("id", ""))
        if not teacher_id:
            raise DataError(f"{ckpt_cfg.path}: checkpoint names no teacher; cannot read attribute labels")
        # the bank's join of labels, splits and pitches, every note kept
        bank = make_bank(data_dir, list(ckpt_cfg.class_indices), list(ckpt_cfg.attributes), teacher_id, (lo, hi),
                         split=split, max_notes=np.iinfo(np.int64).max)
        pitch, alpha = bank.pitch - lo, bank.alpha(np.arange(len(bank)), ckpt_cfg.temperature)
    else:
        split_of, pitch_of = dataset_split_and_pitch(data_dir)
        keep = sorted(s for s, sp in split_of.items() if sp == split and s in pitch_of and lo <= pitch_of[s] <= hi)
        if not keep:
            raise DataError(f"{data_dir}: no {split!r} notes with pitch in [{lo}, {hi}]")
        pitch = np.array([pitch_of[s] - lo for s in keep], dtype=np.int64)
        alpha = np.zeros((len(keep), 0), np.float32)
    return ConditionPool(pitch, alpha, f"dataset {data_dir} ({split}, {len(pitch)} notes)")


def pool_from_bank(ckpt_cfg) -> ConditionPool | None:
    """The checkpoint's attribute bank as a pool (``None`` if it has none)."""
    from darkgan.generation.bank import load_bank

    if not (ckpt_cfg.attributes_enabled and ckpt_cfg.n_attributes):
        return None
    bank = load_bank(ckpt_cfg.path, ckpt_cfg.attributes, str(ckpt_cfg.teacher.get("id", "")) or None)
    if bank is None:
        return None
    lo, hi = ckpt_cfg.pitch_range
    ok = (bank.pitch >= lo) & (bank.pitch <= hi)
    if not ok.any():
        return None
    rows = np.flatnonzero(ok)
    return ConditionPool(bank.pitch[rows] - lo, bank.alpha(rows, ckpt_cfg.temperature),
                         f"attribute bank of {ckpt_cfg.path} ({len(rows)} notes)")


def uniform_pool(ckpt_cfg, n: int = 4096, seed: int = 0) -> ConditionPool:
    """Uniform pitches and attributes (the study's weaker alternative)."""
    rng = np.random.default_rng(seed)
    k = ckpt_cfg.n_attributes if ckpt_cfg.attributes_enabled else 0
    return ConditionPool(rng.integers(0, ckpt_cfg.n_pitches, size=n).astype(np.int64),
                         rng.random((n, k)).astype(np.float32), "uniform")


def condition_pool(ckpt_cfg, data_dir: str | Path | None = None, source: str = "auto",
                   split: str = "train") -> ConditionPool:
    """Pick the conditioning source.

    Args:
        ckpt_cfg: the teacher's :class:`~darkgan.models.checkpoint.CheckpointConfig`.
        data_dir: labelled dataset folder (used when given).
        source: ``auto`` (dataset, else bank, else uniform pitches for a baseline), ``dataset``,
            ``bank`` or ``uniform``.

    Raises:
        DarkGANError: the requested source is unavailable (the message says what to pass).
    """
    if source not in ("auto", "dataset", "bank", "uniform"):
        raise DarkGANError(f"conditioning source {source!r}: choose auto, dataset, bank or uniform")
    if source == "uniform":
        return uniform_pool(ckpt_cfg)
    if data_dir is not None and source in ("auto", "dataset"):
        return pool_from_dataset(data_dir, ckpt_cfg, split)
    if source == "dataset":
        raise DarkGANError("--conditioning dataset needs --data DIR (a labelled dataset folder)")
    pool = pool_from_bank(ckpt_cfg)
    if pool is not None:
        return pool
    k = ckpt_cfg.n_attributes if ckpt_cfg.attributes_enabled else 0
    if k == 0 and source == "auto":
        return uniform_pool(ckpt_cfg)
    raise DarkGANError(f"{ckpt_cfg.path}: no attribute bank in the checkpoint; pass --data DIR (the labelled "
                       "training dataset) for real conditioning, or --conditioning uniform")
