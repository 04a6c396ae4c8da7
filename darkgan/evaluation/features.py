"""Features of sets of notes, computed once and cached on disk under ``REPORT_DIR/cache/``.

:class:`NoteSet`: real cache rows or generations of one model from explicit inputs, named by a
content key (:func:`content_key` of the weights fingerprint and the exact inputs).
:class:`Featurizers`: the teacher, YAMNet, the inception classifier and the f0 tracker, loaded on
first use. :class:`FeatureCache`: ``waves/<key>.npy`` (float16) and
``feat/<key>.<featurizer>.npz``, so a rerun (another metric, a crash) does not regenerate.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from darkgan.errors import DarkGANError


def content_key(*parts) -> str:
    """20-hex-digit sha256 of arrays (dtype, shape, bytes) and JSON-able values, in order."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str(p.dtype).encode() + str(p.shape).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"|")
    return h.hexdigest()[:20]


class FeatureCache:
    """``REPORT_DIR/cache/``: ``waves/<key>.npy`` (float16) and ``feat/<key>.<featurizer>.npz``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / f"{key}{suffix}"

    def get_features(self, key: str, featurizer: str) -> dict | None:
        p = self._path("feat", key, f".{featurizer}.npz")
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
            self.hits += 1
            return out
        except (OSError, ValueError):
            return None

    def put_features(self, key: str, featurizer: str, arrays: dict) -> None:
        from darkgan.utils.io import save_npz

        self.misses += 1
        save_npz(self._path("feat", key, f".{featurizer}.npz"), **arrays)

    def get_waves(self, key: str) -> np.ndarray | None:
        p = self._path("waves", key, ".npy")
        if p.is_file():
            try:
                return np.load(p).astype(np.float32)
            except (OSError, ValueError):
                return None
        return None

    def put_waves(self, key: str, waves: np.ndarray) -> None:
        from darkgan.utils.io import atomic_write

        with atomic_write(self._path("waves", key, ".npy")) as f:
            np.save(f, np.asarray(waves, dtype=np.float16))


class Featurizers:
    """Teacher, YAMNet, inception classifier and pitch tracker, loaded lazily, with ids."""

    def __init__(self, data_dir: Path, teacher_id: str, device: str, log: Callable = print,
                 inception_epochs: int = 4):
        self.data_dir = data_dir
        self.teacher_id = teacher_id
        self.device = device
        self.log = log
        self.inception_epochs = inception_epochs
        self._teacher = self._yamnet = self._inception = None
        self.errors: dict[str, str] = {}

    @property
    def teacher(self):
        if self._teacher is None:
            from darkgan.teacher import load_teacher

            self._teacher = load_teacher(self.teacher_id, device=self.device)
        return self._teacher

    @property
    def yamnet(self):
        if self._yamnet is None:
            from darkgan.teacher import load_teacher

            self._yamnet = load_teacher("yamnet", device="cpu")
        return self._yamnet

    @property
    def inception(self):
        if self._inception is None:
            from darkgan.evaluation.inception import load_or_train

            self._inception = load_or_train(self.data_dir, device=self.device, epochs=self.inception_epochs,
                                            log=self.log)
        return self._inception

    def model_ids(self) -> dict:
        """Ids and checksums of the models that produced the features (for metrics.json)."""
        out = {}
        for name, attr in (("teacher", "_teacher"), ("yamnet", "_yamnet")):
            t = getattr(self, attr)
            if t is not None:
                out[name] = {"id": t.id, "weights_sha256": t.weights_sha256, "embedding_dim": t.embedding_dim,
                             "classes": t.num_classes}
        if self._inception is not None:
            m = self._inception.meta
            out["inception"] = {"id": self._inception.id, "weights_sha256": m.get("sha256"),
                                "embedding_dim": m.get("embedding_dim"), "valid": m.get("valid"),
                                "train": m.get("train")}
        return out

    def compute(self, name: str, waves: np.ndarray) -> dict:
        """Features ``name`` (teacher / yamnet / inception / f0) of ``waves [n, 16000]``."""
        if name in ("teacher", "yamnet"):
            t = self.teacher if name == "teacher" else self.yamnet
            lg, emb = t.logits_and_embedding(waves)
            return {"logits": lg.float().cpu().numpy(), "embedding": emb.float().cpu().numpy()}
        if name == "inception":
            return self.inception.outputs_wave(waves).to_dict()
        if name == "f0":
            from darkgan.evaluation.metrics.pitch_accuracy import estimate_f0

            return {"f0": estimate_f0(waves)}
        raise DarkGANError(f"unknown featurizer {name!r}")


@dataclass
class NoteSet:
    """A set of notes: real cache rows, or generations of one model from explicit inputs."""

    name: str
    key: str
    pitch: np.ndarray
    make_waves: Callable[[], np.ndarray]
    keep_waves: bool = False
    meta: dict = field(default_factory=dict)
