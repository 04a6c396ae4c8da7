"""The training cache: MAG-IF tensors of every note in one memory-mapped array.

Written by ``darkgan data prepare DIR`` (:mod:`darkgan.data.prepare`) into ``DIR/cache/``::

    magif.npy    float16 [N, 2, 1024, 32]   raw (un-normalised) MAG-IF, memory-mapped on read
    index.npz    note_str [N], pitch [N] (MIDI), velocity [N], instrument_family [N],
                 instrument_source [N], instrument_str [N], split [N] ("train"/"valid"/"test")
    stats.json   {"normalizer": Normalizer.to_dict(), "n_notes", "source", "created", ...}

The array need not fit in RAM: batches gather rows from the memory map (sorted indices, so
reads are sequential where they can be) and are normalised on the fly.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from darkgan.data.magif import N_BINS, N_FRAMES, Normalizer
from darkgan.errors import DataError
from darkgan.utils.io import read_json

CACHE_FORMAT_VERSION = 1


@dataclass
class Batch:
    """One training batch.

    Attributes:
        magif: ``[B, 2, 1024, 32]`` float32, normalised with the cache's :class:`Normalizer`.
        pitch: ``[B]`` int64 MIDI pitch.
        index: ``[B]`` int64 row numbers in the cache (to look up labels).
    """

    magif: torch.Tensor
    pitch: torch.Tensor
    index: torch.Tensor


class NoteCache:
    """Read access to a prepared training cache (``DIR/cache`` or the cache folder itself).

    Attributes:
        magif: ``np.memmap`` float16 ``[N, 2, 1024, 32]`` (raw MAG-IF).
        note_str, pitch, velocity, instrument_family, instrument_source, instrument_str, split:
            ``[N]`` arrays from ``index.npz``.
        normalizer: per-channel statistics of the training split.

    Raises:
        DataError: the folder holds no cache, or the cache is incomplete or inconsistent.
    """

    def __init__(self, root: str | Path):
        root = Path(root)
        folder = root if (root / "magif.npy").exists() else root / "cache"
        self.folder = folder
        for name in ("magif.npy", "index.npz", "stats.json"):
            if not (folder / name).is_file():
                raise DataError(f"{folder / name}: missing; run `darkgan data prepare {root}` first")
        stats = read_json(folder / "stats.json")
        if stats.get("format_version") != CACHE_FORMAT_VERSION:
            raise DataError(f"{folder / 'stats.json'}: cache format {stats.get('format_version')!r}, "
                            f"expected {CACHE_FORMAT_VERSION}; re-run `darkgan data prepare --force`")
        self.stats = stats
        self.normalizer = Normalizer.from_dict(stats["normalizer"])
        try:
            self.magif = np.load(folder / "magif.npy", mmap_mode="r")
            with np.load(folder / "index.npz", allow_pickle=False) as idx:
                self.note_str = idx["note_str"]
                self.pitch = idx["pitch"].astype(np.int64)
                self.velocity = idx["velocity"].astype(np.int64)
                self.instrument_family = idx["instrument_family"].astype(np.int64)
                self.instrument_source = idx["instrument_source"].astype(np.int64)
                self.instrument_str = idx["instrument_str"]
                self.split = idx["split"]
        except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(f"{folder}: corrupt or truncated cache ({msg}); re-run `darkgan data prepare`") from None
        n = len(self.note_str)
        if self.magif.shape != (n, 2, N_BINS, N_FRAMES):
            raise DataError(f"{folder / 'magif.npy'}: shape {self.magif.shape} does not match "
                            f"{n} notes x [2, {N_BINS}, {N_FRAMES}]")
        self._row = {s: i for i, s in enumerate(self.note_str.tolist())}

    def __len__(self) -> int:
        return len(self.note_str)

    @property
    def pitch_range(self) -> tuple[int, int]:
        """Lowest and highest MIDI pitch in the cache (inclusive)."""
        return int(self.pitch.min()), int(self.pitch.max())

    def rows(self, split: str | None = None) -> np.ndarray:
        """Row numbers of one split (``"train"``, ``"valid"``, ``"test"``) or all rows, ``[n]`` int64.

        Raises:
            DataError: the split is empty or unknown.
        """
        if split is None:
            return np.arange(len(self), dtype=np.int64)
        rows = np.flatnonzero(self.split == split).astype(np.int64)
        if len(rows) == 0:
            raise DataError(f"{self.folder}: split {split!r} is empty (splits: {sorted(set(self.split.tolist()))})")
        return rows

    def row_of(self, note_strs) -> np.ndarray:
        """Row numbers for note names, ``[n]`` int64. Raises DataError for an unknown note."""
        try:
            return np.array([self._row[s] for s in note_strs], dtype=np.int64)
        except KeyError as e:
            raise DataError(f"{self.folder}: note {e.args[0]!r} is not in the cache") from None

    def load(self, rows: np.ndarray, normalize: bool = True) -> torch.Tensor:
        """Gather rows into a float32 tensor ``[n, 2, 1024, 32]`` (normalised by default)."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        half = np.empty((len(rows), 2, N_BINS, N_FRAMES), dtype=np.float16)
        half[order] = self.magif[rows[order]]  # sorted reads from the memory map
        x = torch.from_numpy(half).float()  # torch's float16 -> float32 is vectorised (numpy's is not)
        if normalize:  # in place: (x - mean) / std as x * (1 / std) - mean / std
            mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 2, 1, 1)
                         for v in (self.normalizer.mean, self.normalizer.std))
            x.mul_(1.0 / std).sub_(mean / std)
        return x

    def batch_rows(self, step: int, batch_size: int, seed: int, split: str = "train",
                   rank: int = 0, world_size: int = 1) -> np.ndarray:
        """Rows of global batch ``step``, a pure function of (step, batch size, seed, split).

        Each epoch is a fresh permutation of the split seeded by ``(seed, epoch)``; the global
        batch ``[step * batch_size, (step + 1) * batch_size)`` of that infinite stream is cut into
        ``world_size`` equal shards and ``rank``'s shard is returned (``batch_size // world_size``
        rows). Being stateless, it makes resumed and distributed training see exactly the data an
        uninterrupted single-process run would.
        """
        pool = self.rows(split)
        n = len(pool)
        start = step * batch_size
        out = np.empty(batch_size, dtype=np.int64)
        filled = 0
        while filled < batch_size:
            epoch, offset = divmod(start + filled, n)
            perm = np.random.default_rng([seed, epoch]).permutation(n)
            take = min(batch_size - filled, n - offset)
            out[filled:filled + take] = pool[perm[offset:offset + take]]
            filled += take
        per_rank = batch_size // world_size
        return out[rank * per_rank:(rank + 1) * per_rank]

    def batches(self, batch_size: int, seed: int = 0, split: str = "train", start_step: int = 0,
                rank: int = 0, world_size: int = 1) -> Iterator[Batch]:
        """Endless iterator of :class:`Batch` from ``start_step`` on (see :meth:`batch_rows`)."""
        step = start_step
        while True:
            rows = self.batch_rows(step, batch_size, seed, split, rank, world_size)
            yield Batch(self.load(rows), torch.from_numpy(self.pitch[rows]), torch.from_numpy(rows))
            step += 1
