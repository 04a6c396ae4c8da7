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
        return (1.0 / (1.0 + np.exp(-self.logits.astype(np.float64)))).astype(np.float32)

    def soft_labels(self, temperature: float = 1.0) -> np.ndarray:
        """``sigmoid(logits / T)`` ``[N, K]`` (DarkGAN Eq. 1)."""
        return (1.0 / (1.0 + np.exp(-self.logits.astype(np.float64) / temperature))).astype(np.float32)


def load_attribute_table(data_dir: str | Path, teacher_id: str | None = None) -> AttributeTable:
    """Read vocabulary + labels of ``data_dir``.

    Raises:
        DataError: no vocabulary, no labels for its teacher, or labels without the vocabulary's
            classes (each message names the file and the command that makes it).
    """
    from darkgan.teacher.labels import load_labels
    from darkgan.teacher.vocabulary import load_vocabulary

    data_dir = Path(data_dir)
    voc = load_vocabulary(data_dir)
    if len(voc) == 0:
        raise DataError(f"{data_dir / 'vocabulary.json'}: no attributes")
    tid = teacher_id or voc.teacher
    ls = load_labels(data_dir, tid)
    idx = np.asarray(voc.indices, dtype=np.int64)
    if idx.max() >= ls.logits.shape[1]:
        raise DataError(f"{data_dir / 'labels' / (tid + '.npz')}: logits {ls.logits.shape} do not cover the "
                        f"vocabulary's class indices (max {idx.max()})")
    meta = getattr(ls, "meta", {}) or {}
    return AttributeTable(note_str=np.asarray(ls.note_str), logits=np.asarray(ls.logits)[:, idx].astype(np.float32),
                          names=list(voc.names), mids=list(voc.mids), class_index=idx, teacher_id=str(tid),
                          teacher_sha256=str(meta.get("weights_sha256", "")))


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
