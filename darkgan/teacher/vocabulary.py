"""``darkgan attributes DIR``: choose the attribute vocabulary (the classes the GAN is conditioned on).

DarkGAN paper Sec. 4.2: rank AudioSet classes by ``sqrt(p_q(i) x acc(i))`` and keep the first
``n`` (128), where ``p_q(i)`` is the ``q``-quantile (paper: 90th percentile, q = 0.9) of the
teacher's probability ``sigmoid(z_i)`` (T = 1) over the notes of the *training* split
(``DIR/splits.json``), and ``acc(i)`` the tagger's published per-class accuracy. EfficientAT
publishes no per-class AP, so ``acc(i)`` is PANNs CNN14's per-class AP on the AudioSet
evaluation set (the figures the reference code ranks with) for every teacher: the file
``cnn14_per_class_ap.csv`` from ``$DARKGAN_REFERENCE_DIR`` or ``../shared/reference`` beside the
checkout when present, else the identical copy shipped in ``audioset_classes.json``; classes are
matched by AudioSet mid (YAMNet's 521 classes are a subset). The reference code used the 80th
percentile by mistake; the quantile is a setting here (default 0.9).

Left out before ranking: the vague / long-time-scale classes listed in ``skip_classes.txt``
(genres, moods, "Music", "Musical instrument", "Sound effect", ...).

Output ``DIR/vocabulary.json``: ``{"teacher", "quantile", "n", "weights_sha256", "created",
"skipped", "attributes": [{"name", "index", "mid", "p_q", "ap", "score"}, ...]}``, best first;
``index`` is the class's column in the teacher's logits.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from darkgan.errors import DataError
from darkgan.teacher.labels import soft_labels
from darkgan.utils.io import read_json, write_json

_HERE = Path(__file__).resolve().parent
AP_FILE = "cnn14_per_class_ap.csv"


def skip_classes() -> list[str]:
    """Display names left out of the vocabulary (``skip_classes.txt``, comments stripped)."""
    lines = (_HERE / "skip_classes.txt").read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]


def reference_dirs() -> list[Path]:
    """Where the reference tables are searched: ``$DARKGAN_REFERENCE_DIR``, ``../shared/reference``."""
    from darkgan.paths import REPO_ROOT

    dirs = []
    if env := os.environ.get("DARKGAN_REFERENCE_DIR"):
        dirs.append(Path(env))
    dirs.append(REPO_ROOT.parent / "shared" / "reference")
    return dirs


def class_ap() -> tuple[dict[str, float], str]:
    """PANNs CNN14 per-class AP keyed by mid, and where it came from (a path or "packaged").

    Raises:
        DataError: a reference CSV exists but lacks the ``mid``/``ap`` columns.
    """
    for d in reference_dirs():
        p = d / AP_FILE
        if p.is_file():
            with open(p, encoding="utf-8", newline="") as f:
                rows = list(csv.DictReader(f))
            if not rows or "mid" not in rows[0] or "ap" not in rows[0]:
                raise DataError(f"{p}: expected columns index,mid,display_name,ap")
            return {r["mid"]: float(r["ap"]) for r in rows}, str(p)
    from darkgan.teacher.classes import cnn14_ap_by_mid

    return cnn14_ap_by_mid(), "packaged (darkgan/teacher/audioset_classes.json)"


def train_notes(root: Path) -> set[str]:
    """note_str of the training split (``DIR/splits.json``).

    Raises:
        DataError: no splits.json or no training notes.
    """
    splits = read_json(root / "splits.json").get("splits", {})
    train = {n for n, s in splits.items() if s == "train"}
    if not train:
        raise DataError(f"{root / 'splits.json'}: no notes in the train split")
    return train


def rank_classes(logits: np.ndarray, class_names, class_mids, ap: dict[str, float],
                 quantile: float = 0.9, n: int = 128, skip=()) -> list[dict]:
    """Rank classes by ``sqrt(p_q x AP)``; returns the best ``n`` as dicts (best first).

    Args:
        logits: ``[N, C]`` teacher logits of the notes to rank over (the training split).
        quantile: ``q`` in (0, 1]; ``p_q = np.quantile(sigmoid(logits), q, axis=0)`` (linear
            interpolation, numpy's default).
        skip: display names left out.
    Ties are broken by class index. Classes without an AP are left out.

    Raises:
        DataError: ``quantile`` outside (0, 1], ``n < 1``, ``n`` above the number of rankable
            classes (never silently fewer), or empty ``logits``.
    """
    if not 0.0 < quantile <= 1.0:
        raise DataError(f"quantile must be in (0, 1], got {quantile}")
    if n < 1:
        raise DataError(f"n must be >= 1, got {n}")
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise DataError(f"no notes to rank over (logits shape {logits.shape})")
    p = soft_labels(logits)
    p_q = np.quantile(p, quantile, axis=0)
    skip = set(skip)
    rows = []
    for i, (name, mid) in enumerate(zip(class_names, class_mids)):
        if name in skip or mid not in ap:
            continue
        rows.append({"name": str(name), "index": i, "mid": str(mid), "p_q": float(p_q[i]),
                     "ap": float(ap[mid]), "score": float(np.sqrt(p_q[i] * ap[mid]))})
    if n > len(rows):
        raise DataError(f"n = {n} attributes asked, but only {len(rows)} of the {len(class_names)} classes can be "
                        f"ranked (the others are skipped as vague or have no published AP); ask for at most {len(rows)}")
    rows.sort(key=lambda r: (-r["score"], r["index"]))
    return rows[:n]


def build_vocabulary(root: str | Path, teacher: str = "efficientat-mn04", n: int = 128,
                     quantile: float = 0.9, write: bool = True) -> dict:
    """Rank the classes over the training notes' labels and write ``DIR/vocabulary.json``.

    Raises:
        DataError: no labels (run ``darkgan label``), no splits, no training notes labelled.
    """
    from darkgan.teacher import canonical_name
    from darkgan.teacher.labels import load_labels

    root = Path(root)
    tid = canonical_name(teacher)
    labels = load_labels(root, tid)
    train = train_notes(root)
    mask = np.array([s in train for s in labels.note_str.tolist()])
    if not mask.any():
        raise DataError(f"{root}: none of the {len(train)} training notes has a {tid} label")
    mids = labels.meta.get("class_mids")
    if not mids or len(mids) != len(labels.class_names):
        from darkgan.teacher.classes import audioset_classes, yamnet_classes

        mids = (yamnet_classes() if tid == "yamnet" else audioset_classes())[1]
    ap, ap_source = class_ap()
    attrs = rank_classes(labels.logits[mask], labels.class_names.tolist(), mids, ap, quantile, n,
                         skip_classes())
    vocab = {
        "teacher": tid,
        "quantile": quantile,
        "n": len(attrs),
        "weights_sha256": labels.meta.get("weights_sha256", ""),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_train_notes": int(mask.sum()),
        "ap_source": ap_source,
        "skipped": skip_classes(),
        "attributes": attrs,
    }
    if write:
        write_json(root / "vocabulary.json", vocab)
    return vocab


@dataclass
class Vocabulary:
    """The chosen attributes: ``names [K]``, ``indices [K]`` (teacher logit columns), ``mids``,
    plus the raw json (``data``)."""

    teacher: str
    quantile: float
    names: list[str]
    indices: np.ndarray
    mids: list[str]
    data: dict

    def __len__(self) -> int:
        return len(self.names)


def load_vocabulary(root: str | Path) -> Vocabulary:
    """Read ``DIR/vocabulary.json``.

    Raises:
        DataError: missing (names the command that makes it) or malformed.
    """
    path = Path(root) / "vocabulary.json"
    if not path.is_file():
        raise DataError(f"{path}: no vocabulary; run `darkgan attributes {root}`")
    d = read_json(path)
    try:
        attrs = d["attributes"]
        return Vocabulary(d["teacher"], float(d["quantile"]), [a["name"] for a in attrs],
                          np.array([a["index"] for a in attrs], dtype=np.int64), [a["mid"] for a in attrs], d)
    except (KeyError, TypeError) as e:
        raise DataError(f"{path}: malformed vocabulary ({e})") from None


def format_table(vocab: dict, limit: int | None = None) -> str:
    """The ranked table as text: rank, score, p_q, AP, name."""
    q = vocab["quantile"]
    lines = [f"{'rank':>4}  {'score':>6}  {'p' + format(int(round(q * 100)), 'd'):>6}  {'AP':>5}  name"]
    for r, a in enumerate(vocab["attributes"][:limit], 1):
        lines.append(f"{r:>4}  {a['score']:6.3f}  {a['p_q']:6.3f}  {a['ap']:5.2f}  {a['name']}")
    return "\n".join(lines)
