"""Helpers for the model/training tests: a small synthetic prepared dataset.

The synthetic dataset follows the on-disk contracts of ``darkgan data prepare`` (cache),
``darkgan label`` (labels) and ``darkgan attributes`` (vocabulary) exactly; the training tests
that need real audio use the ``prepared_dataset`` fixture instead when it exists.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from darkgan.utils.io import save_npz, write_json


def make_synthetic_dataset(root: Path, n: int = 24, k: int = 5, c: int = 20, pitches=(60, 64),
                           seed: int = 0, teacher: str = "efficientat-mn04") -> Path:
    """A prepared dataset folder with ``n`` random notes, ``c`` teacher classes, ``k`` attributes."""
    from darkgan.data.cache import CACHE_FORMAT_VERSION

    rng = np.random.default_rng(seed)
    root = Path(root)
    cache = root / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    mag = rng.normal(-4, 2, size=(n, 1, 1024, 32))
    inf = rng.uniform(-1, 1, size=(n, 1, 1024, 32))
    np.save(cache / "magif.npy", np.concatenate([mag, inf], axis=1).astype(np.float16))
    names = np.array([f"synth_{i:03d}-{60 + i % 5:03d}-100" for i in range(n)])
    pitch = np.array([pitches[0] + i % (pitches[1] - pitches[0] + 1) for i in range(n)])
    split = np.array(["valid" if i % 6 == 5 else "train" for i in range(n)])
    save_npz(cache / "index.npz", note_str=names, pitch=pitch, velocity=np.full(n, 100),
             instrument_family=np.zeros(n, int), instrument_source=np.zeros(n, int),
             instrument_str=np.array(["synth"] * n), split=split)
    write_json(cache / "stats.json", {"format_version": CACHE_FORMAT_VERSION, "n_notes": n,
                                      "normalizer": {"mean": [-4.0, 0.0], "std": [2.0, 0.58]}})
    labels = root / "labels"
    order = np.argsort(names)
    save_npz(labels / f"{teacher}.npz", note_str=names[order],
             logits=rng.normal(-2, 2, size=(n, c)).astype(np.float32),
             class_names=np.array([f"Class {j}" for j in range(c)]))
    write_json(labels / f"{teacher}.json", {"teacher": teacher, "weights_sha256": "0" * 64,
                                            "class_mids": [f"/m/{j}" for j in range(c)]})
    attrs = [{"name": f"Class {j}", "index": j, "mid": f"/m/{j}", "p_q": 0.5, "ap": 0.5, "score": 0.5}
             for j in range(0, 2 * k, 2)]
    write_json(root / "vocabulary.json", {"teacher": teacher, "quantile": 0.9, "n": k, "attributes": attrs})
    return root
