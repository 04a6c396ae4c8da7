"""Evaluation inputs read from a dataset folder: attribute table, real waveforms.

Layouts (DEVELOPERS.md, "Dataset folder"): ``DIR/vocabulary.json`` names the K attributes and
their teacher class indices; ``DIR/labels/<teacher>.npz`` holds the teacher's logits of every note.
Read with the teacher stage's readers (:func:`darkgan.teacher.labels.load_labels`,
:func:`darkgan.teacher.vocabulary.load_vocabulary`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkgan.errors import DataError
from darkgan.teacher.labels import soft_labels


@dataclass
class AttributeTable:
    """Teacher attributes of the dataset's notes.

    Attributes:
        note_str: ``[N]`` note names.
        logits: ``[N, K]`` teacher logits at the vocabulary's class indices (float32).
        names: K attribute display names (vocabulary order).
        mids: K AudioSet machine ids.
        class_index: ``[K]`` index of each attribute in the teacher's output.
        teacher_id: the teacher the labels come from.
        teacher_sha256: its weights checksum (from ``labels/<id>.json``), "" if unknown.
    """

    note_str: np.ndarray
    logits: np.ndarray
    names: list[str]
    mids: list[str]
    class_index: np.ndarray
    teacher_id: str
    teacher_sha256: str = ""

    @property
    def probs(self) -> np.ndarray:
        """``sigmoid(logits)`` ``[N, K]`` float32 (temperature 1)."""
        return soft_labels(self.logits).astype(np.float32)

    def soft_labels(self, temperature: float = 1.0) -> np.ndarray:
        """``sigmoid(logits / T)`` ``[N, K]`` (DarkGAN Eq. 1)."""
        return soft_labels(self.logits, temperature).astype(np.float32)


def load_attribute_table(data_dir: str | Path, teacher_id: str | None = None) -> AttributeTable:
    """Read vocabulary + labels of ``data_dir``.

    Raises:
        DataError: no vocabulary, no labels for its teacher, or labels without the vocabulary's
            classes (each message names the file and the command that makes it).
    """
    from darkgan.teacher.labels import load_vocabulary_labels

    vl = load_vocabulary_labels(data_dir, teacher_id, same_teacher=False)
    return AttributeTable(note_str=np.asarray(vl.labels.note_str), logits=vl.logits, names=vl.names, mids=vl.mids,
                          class_index=vl.class_index, teacher_id=vl.teacher_id,
                          teacher_sha256=str(vl.weights_sha256 or ""))


def labelled_training_notes(data_dir: str | Path, teacher_id: str, class_indices,
                            pitch_range: tuple[int, int] = (0, 127), split: str = "train"):
    """The notes of ``split`` in ``pitch_range`` (MIDI, inclusive) that the teacher labelled, with their logits.

    The one home of "a model's training notes and their conditioning" for the evaluation stage
    (the control benchmark's training-set columns, partial effects, the nearest-note oracle); how
    many to draw, and whether with replacement, is the caller's.

    Args:
        data_dir: a prepared dataset folder; teacher_id: whose ``labels/<id>.npz``;
        class_indices: ``[K]`` teacher class indices (the vocabulary's).

    Returns:
        ``(cache, rows [n] int64 ascending, logits [n, K] float32)``: the dataset's
        :class:`~darkgan.data.cache.NoteCache`, its rows and the teacher's raw logits z
        (soft labels are ``sigmoid(z / T)``, paper Eq. 1).

    Raises:
        DataError: no labels for that teacher, or no labelled note of ``split`` in the range.
    """
    from darkgan.data.cache import NoteCache
    from darkgan.teacher.labels import load_labels

    cache = NoteCache(data_dir)
    labels = load_labels(data_dir, teacher_id)
    row = {s: i for i, s in enumerate(np.asarray(labels.note_str).tolist())}
    lo, hi = pitch_range
    rows = np.array([r for r in cache.rows(split) if lo <= cache.pitch[r] <= hi and cache.note_str[r] in row],
                    dtype=np.int64)
    if not len(rows):
        what = "training" if split == "train" else f"{split!r}"
        raise DataError(f"{data_dir}: no labelled {what} notes in pitches {lo}-{hi}")
    logits = np.asarray(labels.logits)[[row[s] for s in cache.note_str[rows].tolist()]][:, list(class_indices)]
    return cache, rows, logits.astype(np.float32)


def real_waves(cache, rows: np.ndarray, batch: int = 256, down: tuple[int, int] | None = None) -> np.ndarray:
    """Waveforms ``[n, 16000]`` float32 of cache ``rows``, rebuilt from the cached MAG-IF.

    Real reference notes thus pass through the exact representation the GAN models (1 s crop,
    fade-out, MAG-IF, inverse): real and generated notes differ only by what the GAN learned.
    ``down = (fh, fw)``: first average-pool the MAG-IF by that (frequency, time) factor and
    nearest-up-sample it back, as the training targets and the preview of a checkpoint that
    stopped at a coarser scale (``ModelConfig.down_factors[scale]``): the real reference at that
    scale's resolution.
    """
    import torch
    import torch.nn.functional as F

    from darkgan.data.magif import magif_to_wave

    out = np.empty((len(rows), 16000), np.float32)
    for s in range(0, len(rows), batch):
        with torch.inference_mode():
            x = cache.load(rows[s:s + batch], normalize=False).float()
            if down is not None and tuple(down) != (1, 1):
                x = F.interpolate(F.avg_pool2d(x, tuple(down)), size=tuple(x.shape[-2:]), mode="nearest")
            out[s:s + batch] = magif_to_wave(x).numpy()
    return out
