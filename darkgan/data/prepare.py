"""``darkgan data prepare DIR``: turn a note dataset into the memory-mapped training cache.

Reads every note of ``DIR`` with :class:`darkgan.data.nsynth.NoteDataset` (ours or the real
NSynth release), crops the first second (16 000 samples), applies the short fade-out of the
reference configuration, computes MAG-IF (:func:`darkgan.data.magif.wave_to_magif`) and writes
``DIR/cache/`` (layout in :mod:`darkgan.data.cache`). Per-channel normalisation statistics come
from the training split only.

Resumable: rows are written into ``cache/.magif.partial.npy`` with a progress file; an
interrupted run continues where it stopped. The finished array is renamed into place last, so a
cache is either complete or absent.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from darkgan.errors import DataError
from darkgan.utils.io import folder_lock, read_json, save_npz, write_json

SPLITS = ("train", "valid", "test")


def _collect(root: Path, pitches: tuple[int, int] | None):
    """All notes with their split, in a stable order (split, then note_str).

    Notes of a dataset without any split information count as training notes.
    """
    from darkgan.data.nsynth import NoteDataset

    ds = NoteDataset(root, pitches=pitches)
    items = [(rec.get("split") or "train", rec["note_str"], ds, i) for i, rec in enumerate(ds.records)]
    items.sort(key=lambda t: (SPLITS.index(t[0]), t[1]))
    return items


def prepare(root: str | Path, force: bool = False, pitches: tuple[int, int] | None = None,
            batch_size: int = 128, fade: bool = True, progress: bool = True) -> Path:
    """Build ``root/cache`` from the dataset in ``root``; returns the cache folder.

    Args:
        root: dataset folder (``examples.json`` + ``audio/``, or the real NSynth release).
        force: rebuild even if a complete cache exists.
        pitches: keep only MIDI pitches in ``[lo, hi]`` (inclusive), e.g. ``(44, 70)``.
        batch_size: notes transformed per torch call.
        fade: apply the 64 ms raised-cosine fade-out at the end of each 1 s crop.

    A cache that does not read back intact (:class:`~darkgan.data.cache.NoteCache`: a truncated
    ``magif.npy``, a corrupt ``index.npz``, shapes that disagree) is not "complete": it is rebuilt.

    Raises:
        DataError: no notes, unreadable audio (names the file), or no training notes.
        DarkGANError: another job is writing into ``root/cache`` (:func:`folder_lock`).
    """
    root = Path(root)
    out = root / "cache"
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    with folder_lock(out):
        if not force and _cache_intact(out):
            print(f"{out}: cache already complete (use --force to rebuild)")
            return out
        return _build(root, force, pitches, batch_size, fade, progress)


def _cache_intact(out: Path) -> bool:
    """True when ``out`` holds a cache that opens with consistent shapes; says why not otherwise."""
    from darkgan.data.cache import NoteCache

    if not ((out / "magif.npy").exists() and (out / "stats.json").exists()):
        return False
    try:
        NoteCache(out)
    except DataError as e:
        print(f"{str(e).splitlines()[0]}; rebuilding the cache")
        return False
    return True


def _build(root: Path, force: bool, pitches: tuple[int, int] | None, batch_size: int, fade: bool,
           progress: bool) -> Path:
    """Compute and write the cache (resumable; see :func:`prepare`)."""
    out = root / "cache"
    final = out / "magif.npy"
    t0 = time.time()
    items = _collect(root, pitches)
    signature = {"n": len(items), "first": items[0][1], "last": items[-1][1], "pitches": pitches, "fade": fade}
    out.mkdir(parents=True, exist_ok=True)
    partial, progress_file = out / ".magif.partial.npy", out / ".progress.json"
    arr, done = _open_partial(partial, progress_file, signature, force)
    _fill(arr, items, done, batch_size, fade, progress, lambda k: write_json(progress_file, {"signature": signature,
                                                                                             "done": k}))
    recs = [it[2].records[it[3]] for it in items]
    meta = {
        "note_str": np.array([it[1] for it in items]),
        "pitch": np.array([r["pitch"] for r in recs], dtype=np.int16),
        "velocity": np.array([r["velocity"] for r in recs], dtype=np.int16),
        "instrument_family": np.array([r["instrument_family"] for r in recs], dtype=np.int16),
        "instrument_source": np.array([r["instrument_source"] for r in recs], dtype=np.int16),
        "instrument_str": np.array([r["instrument_str"] for r in recs]),
        "split": np.array([it[0] for it in items]),
    }
    normalizer = write_index_and_stats(out, arr, meta, {
        "pitches": list(pitches) if pitches else None, "fade_out": fade,
        "source": str(root.resolve()), "wall_time_s": round(time.time() - t0, 1)})
    del arr
    partial.replace(final)
    progress_file.unlink(missing_ok=True)
    print(f"{out}: {len(items)} notes cached ({final.stat().st_size / 2**30:.2f} GiB), "
          f"normalisation {normalizer.to_dict()}, "
          f"{time.time() - t0:.0f} s")
    return out


def _open_partial(partial: Path, progress_file: Path, signature: dict, force: bool) -> tuple[np.ndarray, int]:
    """The cache being written ``[n, 2, 1024, 32]`` float16 (memmap) and how many rows of it are
    done: an interrupted build with the same ``signature`` resumes, else it starts over."""
    from darkgan.data.magif import N_BINS, N_FRAMES

    done = 0
    if partial.exists() and progress_file.exists() and not force:
        state = read_json(progress_file)
        if state.get("signature") == signature:
            done = int(state["done"])
    if done == 0:
        shape = (signature["n"], 2, N_BINS, N_FRAMES)
        return np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16, shape=shape), 0
    print(f"resuming: {done}/{signature['n']} notes already in {partial}")
    return np.load(partial, mmap_mode="r+"), done


def _fill(arr: np.ndarray, items: list, done: int, batch_size: int, fade: bool, progress: bool, mark) -> None:
    """MAG-IF of ``items[done:]`` into ``arr`` in batches (2 reader threads); after each batch is
    flushed, ``mark(rows done)`` records the progress that vouches for it."""
    import torch
    from tqdm import tqdm

    from darkgan.data.magif import N_SAMPLES, fade_out, wave_to_magif

    def load(item):
        split, note_str, ds, i = item
        wave = ds.load_audio(i)
        if wave.shape != (N_SAMPLES,):
            raise DataError(f"{note_str}: crop has shape {wave.shape}, expected ({N_SAMPLES},)")
        return wave

    bar = tqdm(total=len(items), initial=done, unit="note", desc="prepare", disable=not progress)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(done, len(items), batch_size):
            chunk = items[start:start + batch_size]
            waves = torch.from_numpy(np.stack(list(pool.map(load, chunk))))
            if fade:
                waves = fade_out(waves)
            with torch.inference_mode():
                x = wave_to_magif(waves)
            arr[start:start + len(chunk)] = x.numpy().astype(np.float16)
            arr.flush()  # rows first, then the progress record that vouches for them
            mark(start + len(chunk))
            bar.update(len(chunk))
    bar.close()
    arr.flush()


def write_index_and_stats(out: Path, arr: np.ndarray, meta: dict[str, np.ndarray], extra: dict):
    """Write ``index.npz`` and ``stats.json`` of a cache whose MAG-IF rows are in ``arr``.

    Args:
        out: the cache folder.
        arr: ``[N, 2, 1024, 32]`` raw MAG-IF (array or memmap).
        meta: ``[N]`` arrays: note_str, pitch, velocity, instrument_family, instrument_source,
            instrument_str, split.
        extra: more fields for ``stats.json`` (provenance).

    Returns:
        The :class:`~darkgan.data.magif.Normalizer` fitted on the rows whose split is "train".

    Raises:
        DataError: no training rows.
    """
    from darkgan.data.cache import CACHE_FORMAT_VERSION
    from darkgan.data.magif import Normalizer

    split_arr = meta["split"]
    train_rows = np.flatnonzero(split_arr == "train")
    if len(train_rows) == 0:
        raise DataError(f"{out}: no training notes; cannot fit normalisation statistics")
    s1 = np.zeros(2)
    s2 = np.zeros(2)
    count = 0
    for start in range(0, len(train_rows), 512):
        block = np.asarray(arr[train_rows[start:start + 512]], dtype=np.float64)
        s1 += block.sum(axis=(0, 2, 3))
        s2 += (block ** 2).sum(axis=(0, 2, 3))
        count += block.shape[0] * block.shape[2] * block.shape[3]
    mean = s1 / count
    std = np.sqrt(np.maximum(s2 / count - mean ** 2, 1e-12))
    normalizer = Normalizer(mean=tuple(mean.tolist()), std=tuple(std.tolist()))
    save_npz(out / "index.npz", **meta)
    write_json(out / "stats.json", {
        "format_version": CACHE_FORMAT_VERSION,
        "normalizer": normalizer.to_dict(),
        "n_notes": int(len(split_arr)),
        "splits": {s: int((split_arr == s).sum()) for s in SPLITS},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    })
    return normalizer


def _parse_pitches(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        lo, hi = (int(v) for v in text.split("-"))
    except ValueError:
        raise DataError(f"--pitches {text!r}: expected LO-HI, e.g. 44-70") from None
    if not 0 <= lo <= hi <= 127:
        raise DataError(f"--pitches {text!r}: need 0 <= LO <= HI <= 127")
    return lo, hi


def add_prepare_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``darkgan data prepare`` on the ``data`` command group's sub-parsers."""
    p = sub.add_parser("prepare", help="build the memory-mapped MAG-IF training cache of a dataset")
    p.add_argument("dir", type=Path, help="dataset folder (ours or the real NSynth release)")
    p.add_argument("--pitches", default=None, help="keep MIDI pitches LO-HI, e.g. 44-70 (default: all)")
    p.add_argument("--no-fade", action="store_true", help="do not fade out the end of each 1 s crop")
    p.add_argument("--force", action="store_true", help="rebuild an existing cache")
    p.set_defaults(func=lambda a: prepare(a.dir, force=a.force, pitches=_parse_pitches(a.pitches),
                                          fade=not a.no_fade) and 0)
