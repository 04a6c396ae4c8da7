"""AudioSet class lists shipped with the package (so labels work without the model folders).

- ``audioset_classes.json``: the 527 classes in the output order of EfficientAT and PANNs
  (index, mid, display name) plus PANNs CNN14's per-class AP on the AudioSet evaluation set
  (``cnn14_ap``; Kong et al. 2020, the figures the DarkGAN reference ranks attributes with).
- ``yamnet_classes.json``: YAMNet's 521 classes in its output order.
Both equal the CSV files beside the weights (``../shared/models``) and the reference table
(``../shared/reference/cnn14_per_class_ap.csv``); tests/test_teacher_vocabulary.py checks it.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def _load(name: str) -> list[dict]:
    with open(_HERE / name, encoding="utf-8") as f:
        return json.load(f)["classes"]


def audioset_classes() -> tuple[list[str], list[str]]:
    """``(display names [527], mids [527])`` in EfficientAT / PANNs output order."""
    rows = _load("audioset_classes.json")
    return [r["name"] for r in rows], [r["mid"] for r in rows]


def yamnet_classes() -> tuple[list[str], list[str]]:
    """``(display names [521], mids [521])`` in YAMNet output order."""
    rows = _load("yamnet_classes.json")
    return [r["name"] for r in rows], [r["mid"] for r in rows]


def cnn14_ap_by_mid() -> dict[str, float]:
    """PANNs CNN14 per-class AP keyed by AudioSet mid (packaged copy)."""
    return {r["mid"]: float(r["cnn14_ap"]) for r in _load("audioset_classes.json")}
