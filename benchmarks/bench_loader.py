"""Training-cache loader throughput: notes/s that `NoteCache.batches` delivers.

Usage: python benchmarks/bench_loader.py DIR [--batch-size 64] [--seconds 20]

DIR is a dataset prepared with `darkgan data prepare DIR`. The first pass may read from disk;
the number reported is the steady state after one warm-up epoch of batches (the page cache is
warm, as it is during training). Target (issue 2): >= 5,000 notes/s on the 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from darkgan.data.cache import NoteCache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cache = NoteCache(args.dir)
    it = cache.batches(args.batch_size, seed=0)
    n_train = len(cache.rows("train"))
    warm = min(n_train // args.batch_size, 200)
    for _ in range(warm):
        next(it)
    t0, notes = time.perf_counter(), 0
    while time.perf_counter() - t0 < args.seconds:
        b = next(it)
        notes += b.magif.shape[0]
    dt = time.perf_counter() - t0
    print(json.dumps({"notes": len(cache), "train_notes": n_train, "batch_size": args.batch_size,
                      "threads": args.threads, "notes_per_s": round(notes / dt, 1)}))


if __name__ == "__main__":
    main()
