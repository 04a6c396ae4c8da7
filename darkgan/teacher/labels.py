"""``darkgan label DIR``: the teacher's soft labels (raw logits) for every note of a dataset.

Output (contract in DEVELOPERS.md):
    ``DIR/labels/<teacher-id>.npz``: ``note_str [N]`` (str), ``logits [N, C]`` float32 (raw, before
        any temperature; DarkGAN paper Eq. 1 applies ``sigmoid(z / T)`` later), ``class_names [C]``.
    ``DIR/labels/<teacher-id>.json``: teacher id, weights sha256, created (ISO 8601, UTC),
        class_mids, number of notes, and the input convention (first 16000 samples = 1 s at
        16 kHz from :class:`darkgan.data.nsynth.NoteDataset`, peak-normalised to -1 dBFS by the
        teacher, see :mod:`darkgan.teacher.base`).
Notes are labelled in ``note_str`` order (sorted), all splits.

Resumable: chunks of ``chunk_size`` notes go to ``DIR/labels/.partial-<id>/chunk-XXXXX.npz``
(each written atomically) next to a ``manifest.json`` (teacher, weights sha256, note count and
a hash of the note list); an interrupted run keeps every finished chunk; the final files are
merged last. A rerun on a labelled dataset (same notes, same weights) does nothing unless
``force=True``.
"""
from __future__ import annotations

import hashlib
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from darkgan.errors import DataError
from darkgan.utils.io import folder_lock, read_json, save_npz, write_json

CROP = 16000
LABELS_FORMAT_VERSION = 1


@dataclass
class LabelSet:
    """Teacher labels of a dataset.

    Attributes:
        note_str: ``[N]`` str array, sorted.
        logits: ``[N, C]`` float32 raw teacher logits.
        class_names: ``[C]`` AudioSet display names.
        meta: the ``.json`` metadata (teacher, weights_sha256, created, class_mids, input ...).
    """

    note_str: np.ndarray
    logits: np.ndarray
    class_names: np.ndarray
    meta: dict = field(default_factory=dict)

    def rows(self, note_strs, missing_ok: bool = False) -> np.ndarray:
        """Row indices ``[n]`` int64 of ``note_strs``: the join of labels to other note lists (a
        cache, a split) by note name. An unlabelled note raises DataError naming it, or gives
        -1 with ``missing_ok``."""
        pos = {n: i for i, n in enumerate(np.asarray(self.note_str).tolist())}
        if missing_ok:
            return np.array([pos.get(n, -1) for n in note_strs], dtype=np.int64)
        try:
            return np.array([pos[n] for n in note_strs], dtype=np.int64)
        except KeyError as e:
            raise DataError(f"note {e.args[0]} has no teacher label; rerun `darkgan label --force`") from None

    def probabilities(self, temperature: float = 1.0) -> np.ndarray:
        """``sigmoid(logits / T)`` ``[N, C]`` float64 (paper Eq. 1)."""
        return soft_labels(self.logits, temperature)


def soft_labels(logits, temperature: float = 1.0) -> np.ndarray:
    """The soft labels ``sigmoid(z / T)`` (DarkGAN paper Eq. 1) of teacher logits ``z`` (any shape),
    computed in float64: the one home of Eq. 1 for numpy arrays (attribute banks, conditioning,
    evaluation). ``T`` > 0 is the distillation temperature (1: the tagger's own probabilities)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64) / temperature))


@dataclass
class VocabularyLabels:
    """A dataset's teacher labels restricted to its attribute vocabulary.

    Attributes:
        teacher_id: the teacher (canonical name); weights_sha256: its weights' hash (as the
            labels record it, ``None`` if they do not).
        names, mids: the K attribute names and AudioSet ids; class_index: ``[K]`` teacher columns.
        labels: the full :class:`LabelSet` (all classes); logits: ``[N, K]`` float32 of its rows.
        file: the labels file (for messages).
    """

    teacher_id: str
    weights_sha256: str | None
    names: list
    mids: list
    class_index: np.ndarray
    labels: LabelSet
    logits: np.ndarray
    file: Path

    def join(self, note_strs) -> tuple[np.ndarray, np.ndarray]:
        """``(logits [n, K] float32, found [n] bool)`` of ``note_strs`` joined by note name (zeros
        where a note has no label)."""
        rows = self.labels.rows(note_strs, missing_ok=True)
        out = np.zeros((len(rows), len(self.class_index)), np.float32)
        found = rows >= 0
        out[found] = self.logits[rows[found]]
        return out, found


def load_vocabulary_labels(root: str | Path, teacher: str | None = None, same_teacher: bool = True) -> VocabularyLabels:
    """The vocabulary of ``DIR`` and its teacher's labels, checked against each other: the cache
    + labels + vocabulary join every stage uses (training, evaluation).

    Args:
        root: a labelled dataset folder with ``vocabulary.json``.
        teacher: teacher id (default: the vocabulary's teacher).
        same_teacher: ``teacher`` must be the vocabulary's (``False``: another tagger's labels of
            the same classes, e.g. an evaluation with a checkpoint's own teacher).

    Raises:
        DataError: no or empty vocabulary, a ``teacher`` other than the vocabulary's, missing
            labels, labels of another teacher or not covering the vocabulary's class indices.
    """
    from darkgan.teacher import canonical_name
    from darkgan.teacher.vocabulary import load_vocabulary

    root = Path(root)
    vocab = load_vocabulary(root)
    teacher_id = canonical_name(teacher) if teacher else vocab.teacher
    if same_teacher and vocab.teacher and teacher_id != canonical_name(vocab.teacher):
        raise DataError(f"{root / 'vocabulary.json'}: built from teacher {vocab.teacher!r}, "
                        f"but --teacher {teacher_id!r} was given")
    if len(vocab.names) == 0:
        raise DataError(f"{root / 'vocabulary.json'}: no attributes")
    file = labels_paths(root, teacher_id)[0]
    labels = load_labels(root, teacher_id)
    idx = np.asarray(vocab.indices, dtype=np.int64)
    logits = np.asarray(labels.logits, dtype=np.float32)
    if logits.ndim != 2 or idx.max() >= logits.shape[1]:
        raise DataError(f"{file}: logits {logits.shape} do not cover the vocabulary's class indices (max {idx.max()})")
    meta = dict(labels.meta or {})
    if meta.get("teacher") not in (None, teacher_id):
        raise DataError(f"{file}: labels of teacher {meta.get('teacher')!r}, expected {teacher_id!r}")
    return VocabularyLabels(str(teacher_id), meta.get("weights_sha256"), [str(n) for n in vocab.names],
                            list(vocab.mids), idx, labels, logits[:, idx], file)


def labels_paths(root: str | Path, teacher_id: str) -> tuple[Path, Path]:
    """``(DIR/labels/<id>.npz, DIR/labels/<id>.json)``."""
    d = Path(root) / "labels"
    return d / f"{teacher_id}.npz", d / f"{teacher_id}.json"


def load_labels(root: str | Path, teacher_id: str = "efficientat-mn04") -> LabelSet:
    """Read ``DIR/labels/<teacher_id>.npz`` and ``.json``.

    Raises:
        DataError: files missing (names the command that makes them), truncated or corrupt (the
            zip's CRC-32 is checked on read), or inconsistent.
    """
    from darkgan.teacher import canonical_name

    teacher_id = canonical_name(teacher_id)
    npz, meta_path = labels_paths(root, teacher_id)
    if not npz.is_file():
        raise DataError(f"{npz}: no labels; run `darkgan label {root} --teacher {teacher_id}`")
    meta = read_json(meta_path) if meta_path.is_file() else {}
    try:
        with np.load(npz, allow_pickle=False) as z:
            ls = LabelSet(z["note_str"], z["logits"].astype(np.float32), z["class_names"], meta)
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{npz}: unreadable label file, truncated or corrupt ({msg}); rerun "
                        f"`darkgan label {root} --teacher {teacher_id} --force`") from None
    if ls.logits.shape != (len(ls.note_str), len(ls.class_names)):
        raise DataError(f"{npz}: logits {ls.logits.shape} do not match {len(ls.note_str)} notes x "
                        f"{len(ls.class_names)} classes")
    return ls


def _note_list(root: Path):
    """The dataset reader and its notes sorted by note_str: ``(dataset, [(note_str, index)])``."""
    from darkgan.data.nsynth import NoteDataset

    ds = NoteDataset(root, crop=CROP)
    items = sorted((rec["note_str"], i) for i, rec in enumerate(ds.records))
    if not items:
        raise DataError(f"{root}: no notes to label")
    return ds, items


def _notes_hash(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def label_dataset(root: str | Path, teacher: str = "efficientat-mn04", batch_size: int = 64,
                  device: str = "cpu", force: bool = False, weights=None, chunk_size: int = 1024,
                  progress: bool = True) -> Path:
    """Run the teacher over every note of ``root``; returns the ``.npz`` path (see module doc).

    Args:
        root: dataset folder readable by ``NoteDataset`` (ours or NSynth).
        teacher: registry name (:func:`darkgan.teacher.load_teacher`).
        batch_size: notes per teacher call.
        device: ``cpu`` / ``cuda``.
        force: relabel even when up to date (discards partial chunks too).
        weights: explicit weights file.
        chunk_size: notes per resumable chunk.

    Raises:
        DataError: not a dataset, unreadable audio (names the file); WeightsError.
        DarkGANError: another job is labelling into ``DIR/labels`` (:func:`folder_lock`).

    A labels file that no longer reads back intact (truncated, corrupt, other notes) is not
    "up to date": it is relabelled.
    """
    from darkgan.teacher import canonical_name, load_teacher

    root = Path(root)
    tid = canonical_name(teacher)
    npz, meta_path = labels_paths(root, tid)
    ds, items = _note_list(root)
    names = [n for n, _ in items]
    nhash = _notes_hash(names)
    t = load_teacher(tid, weights=weights, device=device)
    with folder_lock(npz.parent):
        if not force and _up_to_date(root, tid, names, nhash, t):
            print(f"{npz}: labels up to date ({len(names)} notes; use --force to relabel)")
            return npz
        return _label_all(root, tid, t, ds, items, nhash, batch_size, force, chunk_size, progress)


def _up_to_date(root: Path, tid: str, names: list[str], nhash: str, t) -> bool:
    """True when ``DIR/labels/<tid>.npz`` holds intact labels of exactly ``names`` by the
    teacher's current weights; says why it relabels otherwise (changed notes or weights, or a
    truncated / corrupt / inconsistent file)."""
    npz, meta_path = labels_paths(root, tid)
    if not (npz.is_file() and meta_path.is_file()):
        return False
    try:
        meta = read_json(meta_path)
        if meta.get("notes_sha256") != nhash or meta.get("weights_sha256") != t.weights_sha256:
            print(f"{npz}: dataset or weights changed since labelling; relabelling")
            return False
        ls = load_labels(root, tid)
        if ls.note_str.tolist() != names or ls.logits.shape[1] != t.num_classes:
            raise DataError(f"{npz}: holds {ls.logits.shape} labels, expected {len(names)} x {t.num_classes}")
    except DataError as e:
        print(f"{str(e).splitlines()[0]}; relabelling")
        return False
    return True


def _label_all(root: Path, tid: str, t, ds, items, nhash: str, batch_size: int, force: bool, chunk_size: int,
               progress: bool) -> Path:
    """The labelling itself (resumable chunks, then the merged files); see :func:`label_dataset`."""
    import torch
    from tqdm import tqdm

    npz, meta_path = labels_paths(root, tid)
    names = [n for n, _ in items]
    partial = npz.parent / f".partial-{tid}"
    manifest = {"teacher": tid, "weights_sha256": t.weights_sha256, "n": len(names),
                "notes_sha256": nhash, "chunk_size": chunk_size, "version": LABELS_FORMAT_VERSION}
    if partial.exists() and (force or not (partial / "manifest.json").is_file()
                             or read_json(partial / "manifest.json") != manifest):
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    write_json(partial / "manifest.json", manifest)

    n_chunks = (len(items) + chunk_size - 1) // chunk_size
    chunk_path = lambda c: partial / f"chunk-{c:05d}.npz"  # noqa: E731
    done = [c for c in range(n_chunks) if chunk_path(c).is_file()]
    n_done = sum(min(chunk_size, len(items) - c * chunk_size) for c in done)
    if done:
        print(f"resuming: {n_done}/{len(items)} notes already labelled in {partial}")
    bar = tqdm(total=len(items), initial=n_done, unit="note", desc=f"label {tid}", disable=not progress)
    for c in range(n_chunks):
        if c in done:
            continue
        chunk = items[c * chunk_size:(c + 1) * chunk_size]
        out = []
        for s in range(0, len(chunk), batch_size):
            part = chunk[s:s + batch_size]
            waves = np.stack([load_note_crop(ds, i, n) for n, i in part])
            with torch.inference_mode():
                out.append(t.logits(waves).float().cpu().numpy())
            bar.update(len(part))
        save_npz(chunk_path(c), note_str=np.array([n for n, _ in chunk]), logits=np.concatenate(out))
    bar.close()

    logits = np.concatenate([np.load(chunk_path(c))["logits"] for c in range(n_chunks)])
    save_npz(npz, note_str=np.array(names), logits=logits.astype(np.float32),
             class_names=np.array(t.class_names))
    meta = {
        "teacher": tid,
        "weights_sha256": t.weights_sha256,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "num_notes": len(names),
        "num_classes": t.num_classes,
        "notes_sha256": nhash,
        "class_mids": t.class_mids,
        "input": {"crop": f"first {CROP} samples (1 s at 16 kHz) of each note",
                  "normalization": t.describe()["input"]["normalization"],
                  "values": "raw logits (no temperature); probabilities = sigmoid(logits / T)"},
        "format_version": LABELS_FORMAT_VERSION,
    }
    write_json(meta_path, meta)
    shutil.rmtree(partial, ignore_errors=True)
    print(f"{npz}: {len(names)} notes x {t.num_classes} classes")
    return npz


def load_note_crop(ds, i: int, note_str: str) -> np.ndarray:
    """The labelled input of note ``i`` of ``ds``: its first :data:`CROP` samples ``[16000]``
    float32 (zero-padded when shorter). Raises DataError naming ``note_str`` on a bad crop."""
    wave = np.asarray(ds.load_audio(i), dtype=np.float32)
    if wave.ndim != 1 or wave.shape[0] < 1024:
        raise DataError(f"{note_str}: audio crop has shape {wave.shape}, expected ({CROP},)")
    if wave.shape[0] != CROP:
        wave = np.pad(wave[:CROP], (0, max(0, CROP - wave.shape[0])))
    return wave
