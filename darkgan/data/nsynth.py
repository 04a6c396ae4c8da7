"""One reader for NSynth-layout note datasets: ours (``darkgan data render``) and the real NSynth.

Accepted ``root`` layouts:

* our dataset folder: ``examples.json`` + ``audio/<note_str>.wav`` [+ ``splits.json``];
* one folder of the NSynth json/wav release (``nsynth-train``, ``nsynth-valid``,
  ``nsynth-test``): ``examples.json`` + ``audio/``; its split is the folder-name suffix;
* a folder holding several of those ``nsynth-<split>/`` folders.

Audio is 16 kHz mono 16-bit PCM, 64000 samples (4 s) per note; :meth:`NoteDataset.load_audio`
returns the first ``crop`` samples as float32 in [-1, 1) (``int16 / 32768``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from darkgan.errors import DataError
from darkgan.utils.io import read_json

from darkgan.data.constants import SAMPLE_RATE  # noqa: E402 (16 kHz)
NOTE_SAMPLES = 64000  #: samples per note file
SPLITS = ("train", "valid", "test")
#: fields every record must carry (NSynth's, minus qualities which we do not use)
REQUIRED_FIELDS = ("note_str", "pitch", "velocity", "instrument_str", "instrument_family",
                   "instrument_family_str", "instrument_source", "instrument_source_str")


class NoteDataset:
    """Notes of an NSynth-layout dataset, optionally filtered.

    Args:
        root: dataset folder (see module doc).
        split: ``"train"``, ``"valid"``, ``"test"`` or None (all notes). For our datasets the
            split comes from ``splits.json``; for NSynth from the ``nsynth-<split>`` folder name.
        pitches: keep these MIDI pitches: a 2-tuple ``(lo, hi)`` is an inclusive range
            (``(44, 70)``); any other iterable (list, set, range) is the set of pitches kept.
        families: instrument families to keep, by name (``"guitar"``) or NSynth id (3).
        sources: instrument sources to keep, by name (``"acoustic"``) or id (0).
        velocities: MIDI velocities to keep.
        crop: samples returned by :meth:`load_audio` (16000 = the first second; at most 64000).

    Attributes:
        records: list of NSynth record dicts (sorted by note_str); each gains ``"split"`` (or
            None) and ``"path"`` (its WAV file).

    Raises:
        DataError: missing folder, ``examples.json`` or ``splits.json`` entry, a record lacking a
            field, an unknown split, or no note left after filtering (message names the file).
    """

    def __init__(self, root: str | os.PathLike, split: str | None = None,
                 pitches: Iterable[int] | tuple[int, int] | None = None,
                 families: Iterable[str | int] | None = None,
                 sources: Iterable[str | int] | None = None,
                 velocities: Iterable[int] | None = None, crop: int = 16000):
        self.root = Path(root)
        if split is not None and split not in SPLITS:
            raise DataError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        if not 0 < int(crop) <= NOTE_SAMPLES:
            raise DataError(f"crop {crop}: expected 1..{NOTE_SAMPLES} samples")
        self.split = split
        self.crop = int(crop)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset folder not found")
        records = []
        for folder, folder_split in self._folders(split):
            records += self._read_folder(folder, folder_split)
        keep_p = _pitch_filter(pitches)
        keep_f = _label_filter(families, "family")
        keep_s = _label_filter(sources, "source")
        keep_v = None if velocities is None else {int(v) for v in velocities}
        out = []
        for r in records:
            if split is not None and r["split"] != split:
                continue
            if keep_p is not None and r["pitch"] not in keep_p:
                continue
            if keep_f is not None and not ({r["instrument_family"], r["instrument_family_str"]} & keep_f):
                continue
            if keep_s is not None and not ({r["instrument_source"], r["instrument_source_str"]} & keep_s):
                continue
            if keep_v is not None and r["velocity"] not in keep_v:
                continue
            out.append(r)
        if not out:
            what = f"split {split!r}" if split else "the dataset"
            raise DataError(f"{self.root}: {what} has no notes" +
                            (" matching the filters" if records else ""))
        out.sort(key=lambda r: r["note_str"])
        self.records: list[dict] = out

    # ------------------------------------------------------------------ layout
    def _folders(self, split: str | None) -> list[tuple[Path, str | None]]:
        """(folder with examples.json, split fixed by the folder name or None)."""
        root = self.root
        if (root / "examples.json").is_file():
            name_split = _split_from_name(root.name)
            return [(root, name_split)]
        subs = [(root / f"nsynth-{s}", s) for s in SPLITS if (root / f"nsynth-{s}" / "examples.json").is_file()]
        if not subs:
            raise DataError(f"{root}: no examples.json (expected a dataset folder, an nsynth-<split> "
                            "folder, or a folder holding nsynth-train/valid/test)")
        if split is not None:
            subs = [(f, s) for f, s in subs if s == split]
            if not subs:
                raise DataError(f"{root}: split {split!r} has no notes (no nsynth-{split}/examples.json)")
        return subs

    def _read_folder(self, folder: Path, folder_split: str | None) -> list[dict]:
        ex_path = folder / "examples.json"
        examples = read_json(ex_path)
        if not isinstance(examples, dict):
            raise DataError(f"{ex_path}: expected a JSON object {{note_str: record}}")
        splits = None
        if folder_split is None and (folder / "splits.json").is_file():
            sj = read_json(folder / "splits.json")
            splits = sj.get("splits") if isinstance(sj, dict) else None
            if not isinstance(splits, dict):
                raise DataError(f"{folder / 'splits.json'}: missing the 'splits' mapping")
        audio = folder / "audio"
        recs = []
        for key, rec in examples.items():
            if not isinstance(rec, dict):
                raise DataError(f"{ex_path}: record {key!r} is not an object")
            missing = [f for f in REQUIRED_FIELDS if f not in rec]
            if missing:
                raise DataError(f"{ex_path}: record {key!r} lacks field(s) {', '.join(missing)}")
            r = dict(rec)
            if folder_split is not None:
                r["split"] = folder_split
            elif splits is not None:
                if key not in splits:
                    raise DataError(f"{folder / 'splits.json'}: no split for note {key!r}")
                r["split"] = splits[key]
            else:
                r["split"] = None
            r["path"] = str(audio / f"{r['note_str']}.wav")
            recs.append(r)
        return recs

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.records)

    def load_audio(self, i: int) -> np.ndarray:
        """First ``crop`` samples of note ``i``: ``np.float32 [crop]`` in [-1, 1).

        Raises:
            DataError: the WAV is missing, unreadable/truncated, not 16 kHz mono, or not
                64000 samples long (message names the file).
        """
        import soundfile as sf

        path = self.records[i]["path"]
        if not os.path.isfile(path):
            raise DataError(f"{path}: WAV file not found")
        try:
            info = sf.info(path)
        except Exception as e:  # libsndfile: corrupt or truncated header, not a WAV
            raise DataError(f"{path}: unreadable WAV ({_one_line(e)})") from None
        if info.samplerate != SAMPLE_RATE:
            raise DataError(f"{path}: sample rate {info.samplerate} Hz, expected {SAMPLE_RATE}")
        if info.channels != 1:
            raise DataError(f"{path}: {info.channels} channels, expected mono")
        if info.frames != NOTE_SAMPLES:
            raise DataError(f"{path}: {info.frames} samples, expected {NOTE_SAMPLES}")
        try:
            wave, _ = sf.read(path, frames=self.crop, dtype="float32", always_2d=False)
        except Exception as e:
            raise DataError(f"{path}: unreadable WAV ({_one_line(e)})") from None
        if wave.shape != (self.crop,):  # data chunk shorter than its header says
            raise DataError(f"{path}: truncated ({wave.shape[0]} of {self.crop} samples readable)")
        return wave

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict]:
        """``(wave float32 [crop], record)``."""
        return self.load_audio(i), self.records[i]

    def __repr__(self) -> str:
        return f"NoteDataset({str(self.root)!r}, split={self.split!r}, notes={len(self)})"


def _split_from_name(name: str) -> str | None:
    for s in SPLITS:
        if name == f"nsynth-{s}":
            return s
    return None


def _pitch_filter(pitches) -> set[int] | None:
    if pitches is None:
        return None
    if isinstance(pitches, tuple) and len(pitches) == 2:
        lo, hi = int(pitches[0]), int(pitches[1])
        return set(range(lo, hi + 1))
    return {int(p) for p in pitches}


def _label_filter(values, kind: str) -> set | None:
    if values is None:
        return None
    from darkgan.data.gm import FAMILIES, SOURCES

    names = FAMILIES if kind == "family" else SOURCES
    out: set = set()
    for v in values:
        if isinstance(v, str):
            if v not in names:
                raise DataError(f"instrument {kind} {v!r}: expected one of {', '.join(names)}")
            out |= {v, names.index(v)}
        else:
            out |= {int(v), names[int(v)] if 0 <= int(v) < len(names) else None}
    return out


def _one_line(e: Exception) -> str:
    """First line of an exception message, without libsndfile's repeated "Error opening 'path': "."""
    msg = (str(e).splitlines() or [type(e).__name__])[0]
    if msg.startswith("Error opening") and "': " in msg:
        msg = msg.split("': ", 1)[1]
    return msg.strip() or type(e).__name__
