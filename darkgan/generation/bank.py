"""The attribute bank: validation-note teacher logits that fill in the attributes a user leaves out.

DarkGAN (paper Sec. 4.4) generates with the attribute vectors of validation notes: an attribute
the user does not set takes the value it has in a random validation note. A checkpoint therefore
carries a bank of such vectors, ``<checkpoint>/attribute_bank.safetensors``::

    logits   [M, K] float16   raw teacher logits z of the checkpoint's K vocabulary classes
                              (columns in the checkpoint's attribute order), one row per note
    pitch    [M]    int16     the note's MIDI pitch
    metadata (str -> str)     format ("darkgan-attribute-bank"), format_version, teacher,
                              teacher_sha256, split, source (dataset folder name), created,
                              n_notes, attributes (JSON list of the K names), note_str (JSON list)

Raw logits, not probabilities, are stored: the conditioning value is ``alpha = sigmoid(z / T)``
(paper Eq. 1) with T the checkpoint's training temperature, the same transform applied to the
teacher's output for ``like=`` (timbre transfer), so the bank does not bake in a temperature and
a re-trained checkpoint at another T can reuse it. float16 keeps 3 significant digits of z
(|z| < 20: error < 0.01, i.e. < 0.0013 in alpha at T >= 2); 4096 notes x 128 attributes = 1 MiB.

Building (``darkgan generate --build-bank --data DIR [--checkpoint PATH]`` or :func:`build_bank`):
the ``valid`` split of a labelled dataset folder (splits and pitches from ``DIR/cache/index.npz``,
or ``DIR/splits.json`` + ``DIR/examples.json``; logits from ``DIR/labels/<teacher>.npz``),
restricted to the checkpoint's pitch range, at most
``max_notes`` notes (a seeded sample stratified by pitch), written atomically into the
checkpoint folder. The file is not listed among ``config.json``'s checksums (it may be added
after training); it is validated on load (shape, names, teacher).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from darkgan.errors import CheckpointError, DataError

BANK_FILE = "attribute_bank.safetensors"
BANK_FORMAT = "darkgan-attribute-bank"
BANK_FORMAT_VERSION = 1
DEFAULT_MAX_NOTES = 4096


@dataclass
class AttributeBank:
    """Teacher logits of validation notes, in a checkpoint's attribute order.

    Attributes:
        logits: ``[M, K]`` float32 raw teacher logits.
        pitch: ``[M]`` int64 MIDI pitch of each note.
        note_str: ``[M]`` note names (provenance; may be empty strings).
        meta: the metadata (teacher, split, source, ...).
    """

    logits: np.ndarray
    pitch: np.ndarray
    note_str: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.logits.shape[0])

    def alpha(self, rows: np.ndarray, temperature: float) -> np.ndarray:
        """Conditioning vectors ``sigmoid(z / T)`` of ``rows``: ``[len(rows), K]`` float32 in (0, 1)."""
        from darkgan.teacher.labels import soft_labels

        return soft_labels(self.logits[np.asarray(rows, dtype=np.int64)], float(temperature)).astype(np.float32)

    def sample_rows(self, pitches: np.ndarray, rng: np.random.Generator, match_pitch: bool = True) -> np.ndarray:
        """One random bank row per requested pitch, ``[n]`` int64.

        With ``match_pitch`` a row is drawn among the notes of the same MIDI pitch (the joint
        distribution of (pitch, attributes) the generator was trained on); pitches absent from
        the bank draw from all notes. Deterministic given ``rng``'s state.
        """
        pitches = np.asarray(pitches, dtype=np.int64).reshape(-1)
        u = rng.random(len(pitches))  # one draw per note, whatever the pitch: stable streams
        out = np.empty(len(pitches), dtype=np.int64)
        if not match_pitch:
            return np.minimum((u * len(self)).astype(np.int64), len(self) - 1)
        for p in np.unique(pitches):
            sel = pitches == p
            pool = np.flatnonzero(self.pitch == p)
            if len(pool) == 0:
                pool = np.arange(len(self))
            out[sel] = pool[np.minimum((u[sel] * len(pool)).astype(np.int64), len(pool) - 1)]
        return out


def bank_path(checkpoint_dir: str | os.PathLike) -> Path:
    return Path(checkpoint_dir) / BANK_FILE


def load_bank(checkpoint_dir: str | os.PathLike, attributes: list[str], teacher_id: str | None = None) -> AttributeBank | None:
    """Read ``<checkpoint_dir>/attribute_bank.safetensors``; ``None`` if the file is absent.

    Raises:
        CheckpointError: the file is corrupt, or its attributes or teacher differ from the
            checkpoint's (``attributes``: the checkpoint's K names, in order).
    """
    path = bank_path(checkpoint_dir)
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            meta = dict(f.metadata() or {})
            logits = f.get_tensor("logits").astype(np.float32)
            pitch = f.get_tensor("pitch").astype(np.int64)
    except Exception as e:  # safetensors raises several error types
        raise CheckpointError(f"{path}: corrupt attribute bank ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                              "rebuild it with `darkgan generate --build-bank --data DIR`") from None
    if meta.get("format") != BANK_FORMAT or meta.get("format_version") != str(BANK_FORMAT_VERSION):
        raise CheckpointError(f"{path}: not a version-{BANK_FORMAT_VERSION} attribute bank "
                              f"(format {meta.get('format')!r} version {meta.get('format_version')!r})")
    names = json.loads(meta.get("attributes", "[]"))
    if logits.ndim != 2 or logits.shape[1] != len(attributes) or pitch.shape != (logits.shape[0],) or len(pitch) == 0:
        raise CheckpointError(f"{path}: logits {list(logits.shape)} / pitch {list(pitch.shape)} do not fit "
                              f"the checkpoint's {len(attributes)} attributes")
    if names != list(attributes):
        raise CheckpointError(f"{path}: built for another vocabulary than the checkpoint's; rebuild it "
                              "with `darkgan generate --build-bank --data DIR`")
    if teacher_id and meta.get("teacher") and meta["teacher"] != teacher_id:
        raise CheckpointError(f"{path}: labels of teacher {meta['teacher']!r}, the checkpoint uses {teacher_id!r}")
    if not np.isfinite(logits).all():
        raise CheckpointError(f"{path}: non-finite logits")
    note_str = json.loads(meta.get("note_str", "[]")) or [""] * len(pitch)
    return AttributeBank(logits, pitch, list(note_str), meta)


def read_dataset_labels(data_dir: str | os.PathLike, teacher_id: str) -> tuple[np.ndarray, np.ndarray]:
    """``(note_str [N], logits [N, C] float32)`` of ``DIR/labels/<teacher_id>.npz``.

    Uses :func:`darkgan.teacher.labels.load_labels` (the teacher stage's reader).

    Raises:
        DataError: the dataset has no labels of this teacher (the message says how to make them).
    """
    data_dir = Path(data_dir)
    f = data_dir / "labels" / f"{teacher_id}.npz"
    if not f.is_file():
        raise DataError(f"{f}: teacher labels missing; label the dataset first "
                        f"(`darkgan label {data_dir} --teacher {teacher_id}`)")
    try:
        from darkgan.teacher.labels import load_labels
    except ImportError:  # pragma: no cover - the teacher stage always ships it
        load_labels = None
    if load_labels is not None:
        lab = load_labels(data_dir, teacher_id)
        return np.asarray(lab.note_str).astype(str), np.asarray(lab.logits, dtype=np.float32)
    try:
        with np.load(f, allow_pickle=False) as z:
            return z["note_str"].astype(str), z["logits"].astype(np.float32)
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{f}: corrupt labels file ({e})") from None


def dataset_split_and_pitch(data_dir: str | os.PathLike) -> tuple[dict[str, str], dict[str, int]]:
    """``({note_str: split}, {note_str: MIDI pitch})`` of a dataset folder.

    Read from the prepared cache's ``DIR/cache/index.npz`` when present (the splits training
    used), else from ``DIR/splits.json`` and ``DIR/examples.json``.

    Raises:
        DataError: neither source is present, or it is malformed.
    """
    from darkgan.utils.io import read_json

    data_dir = Path(data_dir)
    index = data_dir / "cache" / "index.npz"
    if index.is_file():
        try:
            with np.load(index, allow_pickle=False) as z:
                names, pitch, split = z["note_str"].astype(str), z["pitch"].astype(np.int64), z["split"].astype(str)
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{index}: unreadable cache index ({e})") from None
        return dict(zip(names.tolist(), split.tolist())), dict(zip(names.tolist(), pitch.tolist()))
    if not (data_dir / "splits.json").is_file():
        raise DataError(f"{data_dir}: no cache/index.npz nor splits.json: not a dataset folder with splits")
    splits = read_json(data_dir / "splits.json")
    examples = read_json(data_dir / "examples.json")
    try:
        split_of = {str(k): str(v) for k, v in splits["splits"].items()}
        pitch_of = {str(k): int(v["pitch"]) for k, v in examples.items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{data_dir}: malformed splits.json / examples.json ({type(e).__name__}: {e})") from None
    return split_of, pitch_of


def make_bank(data_dir: str | os.PathLike, class_indices: list[int], attributes: list[str], teacher_id: str,
              pitch_range: tuple[int, int], split: str = "valid", max_notes: int = DEFAULT_MAX_NOTES,
              seed: int = 0) -> AttributeBank:
    """Collect a bank in memory from a labelled dataset folder (see the module docstring).

    Args:
        data_dir: labelled dataset folder (see :func:`dataset_split_and_pitch`).
        class_indices: the checkpoint's K teacher class indices (columns of the labels).
        attributes: the K names (stored for validation).
        teacher_id: whose labels to read.
        pitch_range: ``(lo, hi)`` MIDI, inclusive: notes outside are left out.
        split: the split to draw from (``"valid"``; the paper's validation attributes).
        max_notes: cap on M; a seeded, pitch-stratified sample is kept when there are more.
        seed: sampling seed.

    Raises:
        DataError: missing labels/splits, no labelled note of ``split`` in the pitch range, or
            labels narrower than the class indices.
    """
    data_dir = Path(data_dir)
    names, logits = read_dataset_labels(data_dir, teacher_id)
    if logits.ndim != 2 or (class_indices and max(class_indices) >= logits.shape[1]):
        raise DataError(f"{data_dir}/labels/{teacher_id}.npz: logits {list(logits.shape)} do not cover "
                        f"the checkpoint's class indices (max {max(class_indices) if class_indices else '-'})")
    split_of, pitch_of = dataset_split_and_pitch(data_dir)
    lo, hi = pitch_range
    rows = [i for i, s in enumerate(names.tolist())
            if split_of.get(s) == split and s in pitch_of and lo <= pitch_of[s] <= hi]
    if not rows:
        raise DataError(f"{data_dir}: no labelled note of split {split!r} within MIDI {lo}..{hi}")
    rows = np.asarray(rows, dtype=np.int64)
    pitch = np.array([pitch_of[names[i]] for i in rows], dtype=np.int64)
    if len(rows) > max_notes:
        rng = np.random.default_rng(seed)
        # stratified by pitch: each pitch keeps its share of max_notes (largest remainders)
        values, counts = np.unique(pitch, return_counts=True)
        share = max_notes * counts / counts.sum()
        quota = np.floor(share).astype(np.int64)
        quota[np.argsort(-(share - quota), kind="stable")[:max_notes - quota.sum()]] += 1
        keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(pitch == p), size=q, replace=False)
                                       for p, q in zip(values, quota)]))
        rows, pitch = rows[keep], pitch[keep]
    z = logits[rows][:, np.asarray(class_indices, dtype=np.int64)]
    if not np.isfinite(z).all():
        raise DataError(f"{data_dir}/labels/{teacher_id}.npz: non-finite logits")
    meta = {"teacher": teacher_id, "split": split, "source": data_dir.resolve().name}
    return AttributeBank(z.astype(np.float32), pitch, [str(names[i]) for i in rows], meta)


def _check_writable(checkpoint_dir) -> None:
    """Raise CheckpointError when ``checkpoint_dir`` is a shipped checkpoint (read-only to every command)."""
    from darkgan.paths import is_shipped

    if is_shipped(checkpoint_dir):
        raise CheckpointError(f"{checkpoint_dir}: a shipped checkpoint is read-only; write the bank into a copy "
                              "(`darkgan generate --build-bank --data DIR --out COPY`, or copy the folder and pass "
                              "--checkpoint COPY)")


def write_bank(checkpoint_dir: str | os.PathLike, bank: AttributeBank, attributes: list[str],
               teacher_sha256: str = "") -> Path:
    """Write ``bank`` to ``<checkpoint_dir>/attribute_bank.safetensors`` atomically; return the path.

    Raises:
        CheckpointError: the folder is not writable, or is a shipped checkpoint (read-only).
    """
    from safetensors.numpy import save

    from darkgan.utils.io import atomic_write

    _check_writable(checkpoint_dir)
    meta = {
        "format": BANK_FORMAT, "format_version": str(BANK_FORMAT_VERSION),
        "teacher": str(bank.meta.get("teacher", "")), "teacher_sha256": teacher_sha256,
        "split": str(bank.meta.get("split", "")), "source": str(bank.meta.get("source", "")),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "n_notes": str(len(bank)), "attributes": json.dumps(list(attributes)),
        "note_str": json.dumps(list(bank.note_str)),
    }
    data = save({"logits": np.ascontiguousarray(bank.logits, dtype=np.float16),
                 "pitch": np.ascontiguousarray(bank.pitch, dtype=np.int16)}, metadata=meta)
    path = bank_path(checkpoint_dir)
    try:
        with atomic_write(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot write the attribute bank ({e.strerror or e})") from None
    return path


def build_bank(checkpoint: str | os.PathLike | None, data_dir: str | os.PathLike, split: str = "valid",
               max_notes: int = DEFAULT_MAX_NOTES, seed: int = 0, out: str | os.PathLike | None = None) -> Path:
    """Build and write the attribute bank of ``checkpoint`` (None: the shipped one) from ``data_dir``.

    Args:
        out: write a copy of the checkpoint folder with the new bank here (a new or empty
            folder, written as a whole: :func:`darkgan.generation.outdir.replace_folder`)
            instead of writing into ``checkpoint``. Required for a shipped checkpoint.

    Returns the written file. Raises CheckpointError (including a shipped checkpoint without
    ``out``) / DataError (see :func:`make_bank`); a baseline checkpoint (no attributes) needs
    no bank (DarkGANError); an ``out`` that is not new or empty (DarkGANError).
    """
    from darkgan.errors import DarkGANError
    from darkgan.models.checkpoint import read_checkpoint_config

    if checkpoint is None:
        from darkgan.paths import shipped_checkpoint

        checkpoint = shipped_checkpoint()
    cfg = read_checkpoint_config(checkpoint)
    if not cfg.attributes_enabled or not cfg.attributes:
        raise DarkGANError(f"{cfg.path}: a baseline checkpoint without attributes needs no attribute bank")
    teacher_id = str(cfg.teacher.get("id", ""))
    if not teacher_id:
        raise CheckpointError(f"{cfg.path / 'config.json'}: no teacher id; cannot tell which labels to use")
    if out is None:
        _check_writable(cfg.path)  # before the work
    bank = make_bank(data_dir, cfg.class_indices, cfg.attributes, teacher_id, cfg.pitch_range, split, max_notes, seed)
    sha = str(cfg.teacher.get("weights_sha256", ""))
    if out is None:
        return write_bank(cfg.path, bank, cfg.attributes, sha)
    import shutil

    from darkgan.generation.outdir import replace_folder

    with replace_folder(out, ()) as stage:
        shutil.copytree(cfg.path, stage, dirs_exist_ok=True, ignore=shutil.ignore_patterns(BANK_FILE, ".*"))
        write_bank(stage, bank, cfg.attributes, sha)
    return bank_path(Path(os.path.abspath(out)))
