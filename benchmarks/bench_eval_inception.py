"""Training / inference throughput of the inception classifier (notes per second).

    python benchmarks/bench_eval_inception.py [--device cuda] [--notes 2000] [--epochs 1]

Builds a throw-away training cache of MAG-IF computed from synthetic harmonic tones (random
pitch 44..70, family = number of partials mod 11) in a temporary folder, trains the classifier
(:func:`darkgan.evaluation.inception.train`) and times it, then times ``outputs_wave``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_cache(root: Path, n: int, seed: int = 0) -> None:
    import torch

    from darkgan.data.magif import Normalizer, fade_out, wave_to_magif
    from darkgan.utils.io import save_npz, write_json

    rng = np.random.default_rng(seed)
    pitch = rng.integers(44, 71, n)
    partials = rng.integers(1, 12, n)
    t = np.arange(16000) / 16000.0
    x = np.empty((n, 2, 1024, 32), np.float16)
    for s in range(0, n, 256):
        w = np.zeros((min(256, n - s), 16000), np.float32)
        for j in range(len(w)):
            f0 = 440 * 2 ** ((pitch[s + j] - 69) / 12)
            for k in range(1, partials[s + j] + 1):
                if k * f0 < 7900:
                    w[j] += np.sin(2 * np.pi * k * f0 * t) / k
            w[j] *= np.exp(-3 * t) * 0.3
        x[s:s + len(w)] = wave_to_magif(fade_out(torch.from_numpy(w))).numpy()
    (root / "cache").mkdir(parents=True)
    np.save(root / "cache" / "magif.npy", x)
    split = np.where(rng.random(n) < 0.9, "train", "valid")
    save_npz(root / "cache" / "index.npz", note_str=np.array([f"n{i}" for i in range(n)]), pitch=pitch,
             velocity=np.full(n, 100), instrument_family=partials % 11, instrument_source=np.zeros(n, int),
             instrument_str=np.array([f"i{p}" for p in partials]), split=split)
    xf = x[split == "train"].astype(np.float32)
    norm = Normalizer(tuple(xf.mean(axis=(0, 2, 3)).tolist()), tuple(xf.std(axis=(0, 2, 3)).tolist()))
    write_json(root / "cache" / "stats.json", {"format_version": 1, "normalizer": norm.to_dict(), "fade_out": True})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--notes", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    from darkgan.evaluation import inception

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.time()
        make_cache(root, args.notes)
        print(f"cache: {args.notes} notes in {time.time() - t0:.1f} s")
        t0 = time.time()
        clf = inception.train(root, epochs=args.epochs, device=args.device, progress=False)
        dt = time.time() - t0
        n_train = clf.meta["train"]["n_train"]
        print(f"train ({args.device}): {n_train * args.epochs / dt:.0f} notes/s ({dt:.1f} s), valid {clf.meta['valid']}")
        waves = np.random.default_rng(0).standard_normal((512, 16000)).astype(np.float32) * 0.1
        clf.outputs_wave(waves[:16])
        t0 = time.time()
        clf.outputs_wave(waves)
        print(f"outputs_wave ({args.device}): {512 / (time.time() - t0):.0f} notes/s")


if __name__ == "__main__":
    main()
