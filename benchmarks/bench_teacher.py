"""Teacher throughput: one-second notes per second through ``Teacher.logits`` (CPU).

    python benchmarks/bench_teacher.py [--teacher efficientat-mn04] [--batch 64] [--seconds 5]

Measures, for torch.set_num_threads(1) and (2), the whole teacher call as ``darkgan label``
makes it (peak normalisation, 16 -> 32 kHz resampling, log-mel, network) under
``torch.inference_mode``, on random-phase harmonic notes (the cost does not depend on content).
Also reports the split between the front end (resample + mel) and the network. Target for the
default teacher: >= 300 notes/s on the project's 2-core CPU. On a shared machine one thread can
beat two: run it when the machine is quiet and report the better setting.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def notes(n: int, seed: int = 0) -> np.ndarray:
    """``[n, 16000]`` decaying harmonic tones at MIDI 44..70, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    out = np.zeros((n, 16000), np.float32)
    for i in range(n):
        f0 = 440 * 2 ** ((rng.integers(44, 71) - 69) / 12)
        for h in range(1, 8):
            if f0 * h < 7900:
                out[i] += np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) / h
        out[i] *= np.exp(-3 * t)
    return out


def rate(fn, x, seconds: float) -> float:
    fn(x)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(x)
        n += x.shape[0]
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default="efficientat-mn04")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    from darkgan.teacher import load_teacher

    teacher = load_teacher(args.teacher)
    x = torch.from_numpy(notes(args.batch))
    print(f"teacher {teacher.id}, batch {args.batch}, {args.seconds:.0f} s per measurement")
    for th in args.threads:
        torch.set_num_threads(th)
        total = rate(lambda w: teacher.logits(w), x, args.seconds)
        line = f"threads {th}: {total:7.1f} notes/s end to end"
        model = getattr(teacher, "model", None)
        if model is not None and hasattr(model, "frontend"):
            with torch.inference_mode():
                front = lambda w: model.frontend(model.resampler(w))  # noqa: E731
                mel = front(x)
                fe = rate(lambda w: front(w), x, args.seconds / 2)
                nn_rate = rate(lambda m: model.net(m), mel, args.seconds / 2)
            line += f"  (front end alone {fe:7.1f}/s, network alone {nn_rate:7.1f}/s)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
