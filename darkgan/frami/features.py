"""Log-mel inputs for the sound classifiers, computed from the training cache's STFT magnitudes.

The cache (:class:`darkgan.data.cache.NoteCache`) holds ``log(|X| + 1e-6)`` of a 2048-point STFT
(hop 512, 16 kHz, 1024 bins, 32 frames = 1 s). A librosa Slaney mel filterbank over those bins
gives the power mel spectrogram ``log(mel @ |X|^2 + 1e-6)``, standardised with the train split's
mean and std (one scalar each), so classifier inputs are ``[B, 1, n_mels, 32]`` near N(0, 1).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from darkgan.data.magif import N_BINS, N_FFT, SAMPLE_RATE
from darkgan.errors import DataError


@dataclass
class MelSet:
    """Log-mel notes and their instrument families.

    Attributes:
        x: ``[N, 1, n_mels, 32]`` float32, standardised log-mel (see :func:`load_mel_split`).
        y: ``[N]`` int64 instrument family (NSynth numbering, 0..10).
        note_str: ``[N]`` note names.
    """

    x: torch.Tensor
    y: torch.Tensor
    note_str: np.ndarray


def mel_filterbank(n_mels: int) -> np.ndarray:
    """``[n_mels, 1024]`` float32 Slaney mel filterbank (librosa) over the cache's STFT bins (Hz 0..8000)."""
    import librosa

    fb = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels, fmin=0.0, fmax=SAMPLE_RATE / 2)
    return fb[:, :N_BINS].astype(np.float32)


#: ``split="note"``: one note in this many of the train split's is held out for test.
NOTE_TEST_EVERY = 5


def split_rows(cache, split: str, by: str = "instrument") -> np.ndarray:
    """Sorted cache rows of ``split`` (``"train"``, ``"valid"``, ``"test"``).

    ``by="instrument"``: the dataset's own instrument-disjoint split. ``by="note"``: the notes of
    the dataset's train split, a note held out for ``"test"`` when the CRC-32 of its name is
    divisible by :data:`NOTE_TEST_EVERY` (stable under subsetting and re-rendering), the rest
    ``"train"``; the same instruments on both sides.

    Raises:
        DataError: an unknown ``by``, or ``"valid"`` with ``by="note"``.
    """
    if by == "instrument":
        return np.flatnonzero(cache.split == split)
    if by != "note" or split not in ("train", "test"):
        raise DataError(f"{cache.folder}: no split {split!r} of notes divided by {by!r}")
    pool = np.flatnonzero(cache.split == "train")
    held = np.array([zlib.crc32(str(s).encode()) % NOTE_TEST_EVERY == 0 for s in cache.note_str[pool]], bool)
    return pool[held] if split == "test" else pool[~held]


def pick_rows(cache, split: str, per_class: int, seed: int, by: str = "instrument") -> np.ndarray:
    """Sorted cache rows of ``split`` (:func:`split_rows`, divided ``by``): at most ``per_class``
    notes per instrument family, drawn with ``seed`` (all when ``per_class`` is 0). Raises
    DataError when the split has no notes."""
    rows = split_rows(cache, split, by)
    if rows.size == 0:
        raise DataError(f"{cache.folder}: no notes in split {split!r}")
    if per_class <= 0:
        return rows
    rng = np.random.default_rng(seed)
    fam = cache.instrument_family[rows]
    keep = [rng.permutation(rows[fam == f])[:per_class] for f in np.unique(fam)]
    return np.sort(np.concatenate(keep))


def load_mel_split(data: str | Path, split: str, n_mels: int, per_class: int = 0, seed: int = 0,
                   stats: tuple[float, float] | None = None, by: str = "instrument") -> tuple[MelSet, tuple[float, float]]:
    """Standardised log-mel notes of one split of a prepared dataset.

    Args:
        data: dataset folder with ``cache/`` (``darkgan data prepare``).
        split: ``"train"``, ``"valid"`` or ``"test"``, of the dataset's instrument-disjoint split
            (``by="instrument"``) or of its train split's notes (``by="note"``; :func:`split_rows`).
        n_mels: mel bands.
        per_class: at most this many notes per instrument family (0 = all), drawn with ``seed``.
        stats: ``(mean, std)`` to standardise with; ``None`` computes them on these notes
            (use the train split's for the others).
        by: ``"instrument"`` or ``"note"`` (``data.split``), how train and test are divided.

    Returns:
        ``(MelSet, (mean, std))``.

    Raises:
        DataError: no cache, no notes in ``split``, or a split ``by`` cannot give (:func:`split_rows`).
    """
    from darkgan.data.cache import NoteCache

    cache = NoteCache(data)
    rows = pick_rows(cache, split, per_class, seed, by)
    fb = torch.from_numpy(mel_filterbank(n_mels))
    out = []
    for i in range(0, rows.size, 512):
        logmag = torch.from_numpy(np.asarray(cache.magif[rows[i:i + 512], 0], dtype=np.float32))
        out.append(torch.log(torch.einsum("mf,bft->bmt", fb, torch.exp(2 * logmag)) + 1e-6))
    x = torch.cat(out)[:, None]
    if stats is None:
        stats = (float(x.mean()), float(x.std()))
    x = (x - stats[0]) / stats[1]
    y = torch.from_numpy(cache.instrument_family[rows].astype(np.int64))
    return MelSet(x=x, y=y, note_str=cache.note_str[rows]), stats
