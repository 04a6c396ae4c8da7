"""Cost of the evaluation metrics at the paper's sizes (pure math, random embeddings).

    python benchmarks/bench_eval.py [--threads 2]

Times FAD (teacher D=384, YAMNet D=1024) and FAD-inf (10 sizes) on 10k x 10k embeddings,
KID (100 subsets of 1000, D=128) and IS (10k x 26), single process.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _time(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    if args.threads:
        import os

        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    from darkgan.evaluation import metrics as M

    rng = np.random.default_rng(0)
    for d in (384, 1024):
        a, b = rng.standard_normal((args.n, d)), rng.standard_normal((args.n, d))
        print(f"fad      n={args.n} D={d}: {_time(lambda: M.compute('fad', real=a, fake=b)):.2f} s")
        print(f"fad_inf  n={args.n} D={d} 10 sizes: "
              f"{_time(lambda: M.compute('fad_inf', real=a, fake=b, steps=10), repeat=1):.2f} s")
    e = rng.standard_normal((args.n, 128))
    print(f"kid      n={args.n} D=128 100x1000: "
          f"{_time(lambda: M.compute('kid', real=e, fake=e[::-1].copy()), repeat=1):.2f} s")
    p = rng.dirichlet(np.ones(26), size=args.n)
    print(f"is       n={args.n} C=26: {_time(lambda: M.compute('is', probs=p)) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
