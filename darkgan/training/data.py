"""Training data: the prepared cache + teacher logits for the vocabulary's K attributes.

:func:`load_training_data` joins three artefacts of a prepared dataset folder ``DIR``:

- ``DIR/cache`` (:class:`darkgan.data.cache.NoteCache`): raw MAG-IF ``[N, 2, 1024, 32]`` float16
  memmap, MIDI pitch, split, normalisation statistics;
- ``DIR/vocabulary.json`` (:func:`darkgan.teacher.vocabulary.load_vocabulary`): the teacher id and
  the K attributes (AudioSet display names + teacher class indices);
- ``DIR/labels/<teacher>.npz`` (:func:`darkgan.teacher.labels.load_labels`): the teacher's logits
  ``[N, C]`` for every note, aligned to the cache by ``note_str``.

Batches come from :func:`sample_rows`, a pure function of (sample offset, batch size, seed), and
:class:`Prefetcher` gathers them on a background thread (pinned memory on CUDA), so the loop
never waits on the memory map and resumed / distributed runs see exactly the same data.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from darkgan.errors import DataError


@dataclass
class TrainingData:
    """A prepared dataset ready for training.

    Attributes:
        cache: the :class:`~darkgan.data.cache.NoteCache`.
        train_rows: ``[n]`` int64 cache rows of the train split.
        pitch_range: ``(lo, hi)`` MIDI, inclusive, over the whole cache.
        logits: ``[N, K]`` float32 teacher logits of the K attributes for every cache row
            (``[N, 0]`` when attributes are disabled).
        attributes: K display names; ``class_indices``: K teacher class indices.
        teacher: ``{"id", "weights_sha256"}`` ({} when attributes are disabled).
    """

    cache: object
    train_rows: np.ndarray
    pitch_range: tuple[int, int]
    logits: np.ndarray
    attributes: list[str] = field(default_factory=list)
    class_indices: list[int] = field(default_factory=list)
    teacher: dict = field(default_factory=dict)

    @property
    def n_pitches(self) -> int:
        return self.pitch_range[1] - self.pitch_range[0] + 1

    @property
    def n_attributes(self) -> int:
        return len(self.attributes)

    @property
    def normalizer(self):
        return self.cache.normalizer

    def pitch_index(self, rows: np.ndarray) -> np.ndarray:
        return self.cache.pitch[rows] - self.pitch_range[0]


def load_training_data(data_dir: str | Path, teacher: str | None = None, attributes: bool = True) -> TrainingData:
    """Load cache, vocabulary and teacher labels of ``data_dir``.

    Args:
        data_dir: a dataset folder prepared by ``darkgan data prepare`` and labelled by the teacher.
        teacher: teacher id of the labels to use (default: the vocabulary's teacher).
        attributes: False for the no-attribute baseline (K = 0; labels and vocabulary not needed).

    Raises:
        DataError: missing cache, vocabulary or labels; labels of another teacher than the
            vocabulary's; notes of the train split without labels; an empty train split.
    """
    from darkgan.data.cache import NoteCache

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: dataset folder not found")
    cache = NoteCache(data_dir)
    train_rows = cache.rows("train")
    n = len(cache)
    if not attributes:
        return TrainingData(cache, train_rows, cache.pitch_range, np.zeros((n, 0), np.float32))

    from darkgan.teacher.labels import load_vocabulary_labels

    if not (data_dir / "vocabulary.json").is_file():
        raise DataError(f"{data_dir / 'vocabulary.json'}: no attribute vocabulary; run "
                        f"`darkgan attributes {data_dir}` (or train the baseline with --no-attributes)")
    vl = load_vocabulary_labels(data_dir, teacher)
    logits, found = vl.join(cache.note_str.tolist())
    missing = np.flatnonzero(~found[train_rows])
    if len(missing):
        raise DataError(f"{vl.file}: {len(missing)} training notes have no teacher labels "
                        f"(e.g. {cache.note_str[train_rows[missing[0]]]!r}); re-run the labelling")
    teacher_meta = {"id": vl.teacher_id, "weights_sha256": vl.weights_sha256}
    return TrainingData(cache, train_rows, cache.pitch_range, logits, vl.names, [int(i) for i in vl.class_index],
                        teacher_meta)


def sample_rows(offset: int, batch_size: int, pool: np.ndarray, seed: int,
                _perm_cache: dict | None = None) -> np.ndarray:
    """Rows ``[offset, offset + batch_size)`` of the endless stream of epochs over ``pool``.

    Epoch e is ``pool[permutation_e]`` with ``permutation_e`` drawn from ``default_rng([seed, e])``
    (the same scheme as :meth:`NoteCache.batch_rows`, but addressed by sample offset because the
    batch size changes with the scale). Pure: no state to save for an exact resume.
    """
    n = len(pool)
    out = np.empty(batch_size, dtype=np.int64)
    filled = 0
    while filled < batch_size:
        epoch, start = divmod(offset + filled, n)
        perm = None if _perm_cache is None else _perm_cache.get(epoch)
        if perm is None:
            perm = np.random.default_rng([seed, epoch]).permutation(n)
            if _perm_cache is not None:
                _perm_cache.clear()
                _perm_cache[epoch] = perm
        take = min(batch_size - filled, n - start)
        out[filled:filled + take] = pool[perm[start:start + take]]
        filled += take
    return out


@dataclass
class HostBatch:
    """One rank's batch on the host (or already on the device).

    ``magif [b, 2, 1024, 32]`` float16 raw MAG-IF; ``pitch_index [b]`` int64; ``logits [b, K]``
    float32 teacher logits; ``step`` the global step it belongs to.
    """

    step: int
    magif: torch.Tensor
    pitch_index: torch.Tensor
    logits: torch.Tensor

    def to(self, device: torch.device) -> "HostBatch":
        nb = device.type == "cuda"
        return HostBatch(self.step, self.magif.to(device, non_blocking=nb),
                         self.pitch_index.to(device, non_blocking=nb), self.logits.to(device, non_blocking=nb))


def gather(data: TrainingData, rows: np.ndarray, step: int, pin: bool = False) -> HostBatch:
    """Read ``rows`` from the memory map (sorted, for sequential reads) into a HostBatch."""
    order = np.argsort(rows, kind="stable")
    x = np.empty((len(rows),) + tuple(data.cache.magif.shape[1:]), dtype=np.float16)
    x[order] = data.cache.magif[rows[order]]
    b = HostBatch(step, torch.from_numpy(x), torch.from_numpy(data.pitch_index(rows).astype(np.int64)),
                  torch.from_numpy(np.ascontiguousarray(data.logits[rows])))
    if pin:
        b = HostBatch(step, b.magif.pin_memory(), b.pitch_index.pin_memory(), b.logits.pin_memory())
    return b


class Prefetcher:
    """Gathers the batches of steps ``start, start + 1, ...`` on a background thread.

    Args:
        data: the training data.
        plan: iterator of ``(step, global_offset, global_batch_size)``.
        seed: data-order seed; rank / world_size: this process's shard of each global batch.
        depth: batches buffered ahead; pin: pin host memory (CUDA).
        device: when given, batches are also copied to it on the worker thread (own CUDA stream).
    """

    def __init__(self, data: TrainingData, plan: Iterator[tuple[int, int, int]], seed: int,
                 rank: int = 0, world_size: int = 1, depth: int = 3, pin: bool = False):
        self.data, self.plan, self.seed = data, plan, seed
        self.rank, self.world = rank, world_size
        self.pin = pin
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="darkgan-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        perm_cache: dict = {}
        try:
            for step, offset, bs in self.plan:
                if self._stop.is_set():
                    return
                rows = sample_rows(offset, bs, self.data.train_rows, self.seed, perm_cache)
                per = bs // self.world
                rows = rows[self.rank * per:(self.rank + 1) * per]
                item = gather(self.data, rows, step, self.pin)
                while not self._stop.is_set():
                    try:
                        self.q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
            self.q.put(None)
        except BaseException as e:  # surface errors in the training thread
            self.q.put(e)

    def __iter__(self):
        return self

    def __next__(self) -> HostBatch:
        item = self.q.get()
        if item is None:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)


def real_at_scale(x: torch.Tensor, model_cfg, scale: int, alpha: float) -> torch.Tensor:
    """Full-size real MAG-IF ``[B, 2, 1024, 32]`` -> scale ``scale`` ``[B, 2, H_s, W_s]``.

    Average pooling by the scale's down-sampling factor; while the scale fades in, the real batch
    is blended with its previous-scale version (pooled further, then nearest-up-sampled) with the
    same ``alpha`` as the generator's output, as the reference trainer does.
    """
    fh, fw = model_cfg.down_factors[scale]
    if (fh, fw) != (1, 1):
        x = F.avg_pool2d(x, (fh, fw))
    if scale > 0 and alpha < 1.0:
        uh, uw = model_cfg.up_factor(scale)
        low = F.interpolate(F.avg_pool2d(x, (uh, uw)), scale_factor=(float(uh), float(uw)), mode="nearest")
        x = torch.lerp(low, x, alpha)
    return x
