"""SING's data: whole 4 s notes of an NSynth-layout dataset (``darkgan data render``) held in
memory, a subset of instruments, and the paper's pitch-completion split (Sec. 5.1): for every
instrument, 10 % of its pitches (all their velocities) go to the test set, so the test measures
(instrument, pitch) pairs never heard in training while every instrument and pitch is trained.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from darkgan.data.constants import SAMPLE_RATE
from darkgan.data.splits import _rng
from darkgan.errors import DataError


def pitch_completion_split(records: list[dict], fraction: float = 0.1, seed: int = 0) -> dict[str, str]:
    """``{note_str: "train" | "test"}``: for each instrument, ``round(fraction * n_pitches)`` of its
    pitches (at least one when it has two or more) are drawn by ``(seed, instrument)`` and all
    their notes go to ``"test"`` (paper Sec. 5.1; 27 pitches -> 3 test pitches).

    Raises:
        DataError: ``fraction`` outside [0, 1).
    """
    if not 0 <= fraction < 1:
        raise DataError(f"pitch-completion fraction {fraction}: expected 0 <= fraction < 1")
    pitches: dict[str, set[int]] = {}
    for r in records:
        pitches.setdefault(r["instrument_str"], set()).add(int(r["pitch"]))
    test: set[tuple[str, int]] = set()
    for inst, ps in pitches.items():
        ps_sorted = sorted(ps)
        k = int(round(fraction * len(ps_sorted)))
        k = max(k, 1) if fraction > 0 and len(ps_sorted) >= 2 else k
        for i in _rng(seed, f"pitch-completion:{inst}").permutation(len(ps_sorted))[:k]:
            test.add((inst, ps_sorted[i]))
    return {r["note_str"]: "test" if (r["instrument_str"], int(r["pitch"])) in test else "train" for r in records}


def choose_instruments(records: list[dict], n: int, seed: int = 0) -> list[str]:
    """``n`` instrument names drawn round-robin over the instrument families (each family's
    instruments shuffled by ``seed``), sorted; all of them when ``n`` <= 0 or >= their number."""
    by_family: dict[str, list[str]] = {}
    for r in records:
        by_family.setdefault(r["instrument_family_str"], [])
        if r["instrument_str"] not in by_family[r["instrument_family_str"]]:
            by_family[r["instrument_family_str"]].append(r["instrument_str"])
    total = sum(len(v) for v in by_family.values())
    if n <= 0 or n >= total:
        return sorted(i for v in by_family.values() for i in v)
    queues = [[v[i] for i in _rng(seed, f"instruments:{f}").permutation(len(v))] for f, v in sorted(by_family.items())]
    out: list[str] = []
    while len(out) < n:
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return sorted(out)


@dataclass
class Vocabulary:
    """What a SING checkpoint can be asked for: instrument names (``instrument_str``, in
    look-up-table order), MIDI velocities (sorted) and the pitch range ``(lo, hi)`` (inclusive;
    ``pitch_index = midi - lo``)."""

    instruments: list[str]
    velocities: list[int]
    pitch_range: tuple[int, int]

    @property
    def n_pitches(self) -> int:
        return self.pitch_range[1] - self.pitch_range[0] + 1

    def to_dict(self) -> dict:
        return {"instruments": self.instruments, "velocities": self.velocities, "pitch_range": list(self.pitch_range)}

    @classmethod
    def from_dict(cls, d: dict) -> Vocabulary:
        return cls([str(i) for i in d["instruments"]], [int(v) for v in d["velocities"]],
                   (int(d["pitch_range"][0]), int(d["pitch_range"][1])))

    @classmethod
    def from_records(cls, records: list[dict]) -> Vocabulary:
        ps = [int(r["pitch"]) for r in records]
        return cls(sorted({r["instrument_str"] for r in records}), sorted({int(r["velocity"]) for r in records}),
                   (min(ps), max(ps)))


@dataclass
class SingNotes:
    """Notes in memory with their conditioning indices.

    Attributes:
        waves: ``int16 [n, n_samples]`` (``/ 32768`` -> [-1, 1)).
        velocity, instrument, pitch: ``int64 [n]`` look-up-table indices.
        split: ``[n]`` ``"train"``/``"test"``; note_str: ``[n]``; vocab: :class:`Vocabulary`.
    """

    waves: np.ndarray
    velocity: np.ndarray
    instrument: np.ndarray
    pitch: np.ndarray
    split: np.ndarray
    note_str: np.ndarray
    vocab: Vocabulary

    def __len__(self) -> int:
        return len(self.waves)

    def indices(self, split: str) -> np.ndarray:
        """Positions of the notes of ``split`` (``int64 [m]``)."""
        return np.flatnonzero(self.split == split)

    def batch(self, idx: np.ndarray):
        """``(wave float32 [b, n_samples], velocity, instrument, pitch [b] long)`` as torch tensors."""
        import torch

        wave = torch.from_numpy(self.waves[idx].astype(np.float32) / 32768.0)
        return wave, *(torch.from_numpy(a[idx]) for a in (self.velocity, self.instrument, self.pitch))


def read_note(path: str, n_samples: int, preset: str = "") -> np.ndarray:
    """The first ``n_samples`` of a 16 kHz mono WAV as ``int16 [n_samples]``.

    Raises:
        DataError: missing/unreadable file, wrong sample rate or channels, or a note shorter than
            the model needs (names the file, its length and the length needed).
    """
    import soundfile as sf

    if not os.path.isfile(path):
        raise DataError(f"{path}: WAV file not found")
    try:
        info = sf.info(path)
        if info.samplerate != SAMPLE_RATE or info.channels != 1:
            raise DataError(f"{path}: {info.samplerate} Hz, {info.channels} channel(s); SING needs 16 kHz mono")
        if info.frames < n_samples:
            raise DataError(f"{path}: note is {info.frames} samples ({info.frames / SAMPLE_RATE:.2f} s), shorter than "
                            f"the {n_samples} samples ({n_samples / SAMPLE_RATE:.2f} s) SING {preset} needs".replace("  ", " "))
        wave, _ = sf.read(path, frames=n_samples, dtype="int16", always_2d=False)
    except DataError:
        raise
    except Exception as e:  # libsndfile errors
        raise DataError(f"{path}: unreadable WAV ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if wave.shape != (n_samples,):
        raise DataError(f"{path}: truncated ({wave.shape[0]} of {n_samples} samples readable)")
    return wave


def load_notes(root: str | os.PathLike, n_samples: int, instruments: list[str] | None = None,
               n_instruments: int = 0, fraction: float = 0.1, seed: int = 0, preset: str = "",
               progress: bool = True) -> SingNotes:
    """Read a dataset's notes (every split of the dataset: the pitch-completion split replaces
    it) for SING.

    Args:
        root: NSynth-layout dataset folder (:class:`darkgan.data.nsynth.NoteDataset`).
        n_samples: samples per note the model needs (64000 = 4 s).
        instruments: keep these (``instrument_str``); else ``n_instruments`` chosen by
            :func:`choose_instruments` (0 = all).
        fraction, seed: of :func:`pitch_completion_split`.

    Raises:
        DataError: unreadable dataset, an unknown instrument name, or notes shorter than needed.
    """
    from tqdm import tqdm

    from darkgan.data.nsynth import NoteDataset

    records = NoteDataset(root).records
    known = {r["instrument_str"] for r in records}
    if instruments:
        bad = [i for i in instruments if i not in known]
        if bad:
            raise DataError(f"{root}: unknown instrument(s) {', '.join(bad[:5])}")
        keep = set(instruments)
    else:
        keep = set(choose_instruments(records, n_instruments, seed))
    records = [r for r in records if r["instrument_str"] in keep]
    split = pitch_completion_split(records, fraction, seed)
    vocab = Vocabulary.from_records(records)
    inst_ix = {n: i for i, n in enumerate(vocab.instruments)}
    vel_ix = {v: i for i, v in enumerate(vocab.velocities)}
    waves = np.empty((len(records), n_samples), dtype=np.int16)
    for i, r in enumerate(tqdm(records, desc="read notes", unit="note", disable=not progress)):
        waves[i] = read_note(r["path"], n_samples, preset)
    return SingNotes(
        waves=waves, velocity=np.array([vel_ix[int(r["velocity"])] for r in records], dtype=np.int64),
        instrument=np.array([inst_ix[r["instrument_str"]] for r in records], dtype=np.int64),
        pitch=np.array([int(r["pitch"]) - vocab.pitch_range[0] for r in records], dtype=np.int64),
        split=np.array([split[r["note_str"]] for r in records]), note_str=np.array([r["note_str"] for r in records]),
        vocab=vocab)

