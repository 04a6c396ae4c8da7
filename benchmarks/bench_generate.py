"""Generation speed: single-note latency and batch-64 throughput, MAG-IF -> waveform included.

    python benchmarks/bench_generate.py [--presets small paper] [--threads 1 2] [--batch 64]
                                        [--reps 5] [--device cpu] [--json out.json]

For each preset (random weights, K = 128 attributes, 27 pitches: what the issue asks to time)
and each ``torch.set_num_threads`` setting, the whole path of :meth:`DarkGAN.generate_batch`
under ``torch.inference_mode``: generator -> de-normalisation -> ``magif_to_wave`` (inverse STFT)
-> peak limiter. Reported:

- latency: median wall time of one note (batch 1), in ms, over ``--reps`` calls after a warm-up;
- throughput: notes/s at batch ``--batch`` (median of ``max(2, reps // 2)`` calls), and
  x real-time (notes/s x 1 s of audio per note);
- the split: generator alone vs. the inverse (MAG-IF -> waveform) alone, at the batch size.

Random weights cost the same as trained ones (same shapes, dense float32). The machine's load
average is printed: on the shared 2-core machine, compare numbers taken at similar load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch


def build(preset: str, device: str, k: int = 128, n_pitches: int = 27):
    """A random-weight :class:`DarkGAN` of ``preset`` (nothing written to disk)."""
    from darkgan.generation.api import DarkGAN
    from darkgan.models.checkpoint import CheckpointConfig
    from darkgan.models.config import get_preset
    from darkgan.models.generator import Generator, count_parameters
    from darkgan.teacher.classes import audioset_classes

    cfg = get_preset(preset)
    torch.manual_seed(0)
    g = Generator(cfg.model, n_pitches, k).to(device).eval()
    names, _ = audioset_classes()
    cc = CheckpointConfig(config=cfg, attributes=names[:k], class_indices=list(range(k)),
                          pitch_range=(44, 44 + n_pitches - 1), normalizer={"mean": [-5.0, 0.0], "std": [2.5, 0.5]},
                          teacher={"id": "efficientat-mn04"}, temperature=2.0, scale=cfg.model.n_scales - 1)
    return DarkGAN(g, cc, torch.device(device)), count_parameters(g)


def inputs(model, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, model.latent_dim)).astype(np.float32)
    lo, hi = model.pitch_range
    pitch = rng.integers(lo, hi + 1, n)
    alpha = rng.uniform(0, 1, (n, len(model.attributes))).astype(np.float32)
    return z, pitch, alpha


def timed(fn, reps: int, sync) -> list[float]:
    fn()  # warm-up
    sync()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["small", "paper"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    from darkgan.data.magif import magif_to_wave

    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    print(f"# torch {torch.__version__}, device {dev}, load average {os.getloadavg()[0]:.2f} "
          f"(cores: {os.cpu_count()})")
    print("| preset | params (M) | threads | latency batch 1 (ms) | notes/s batch "
          f"{args.batch} | x real-time | generator / inverse share at batch {args.batch} |")
    print("|---|---|---|---|---|---|---|")
    results = []
    for preset in args.presets:
        model, n_params = build(preset, args.device)
        z1, p1, a1 = inputs(model, 1)
        zb, pb, ab = inputs(model, args.batch)
        for threads in args.threads:
            torch.set_num_threads(threads)
            lat = timed(lambda: model.generate_batch(z1, p1, a1, batch_size=1), args.reps, sync)
            reps_b = max(2, args.reps // 2)
            thr = timed(lambda: model.generate_batch(zb, pb, ab, batch_size=args.batch), reps_b, sync)
            with torch.inference_mode():
                zt, pt, at = (torch.from_numpy(zb).to(dev), torch.from_numpy(pb - model.pitch_range[0]).to(dev),
                              torch.from_numpy(ab).to(dev))
                x = model.generator(zt, pt, at)
                t_gen = statistics.median(timed(lambda: model.generator(zt, pt, at), reps_b, sync))
                xd = model.normalizer.denormalize(x)
                t_inv = statistics.median(timed(lambda: magif_to_wave(xd), reps_b, sync))
            lat_ms = 1000 * statistics.median(lat)
            nps = args.batch / statistics.median(thr)
            share = t_gen / (t_gen + t_inv)
            row = {"preset": preset, "params": n_params, "threads": threads, "latency_ms": lat_ms,
                   "notes_per_s": nps, "x_realtime": nps * 1.0, "generator_share": share,
                   "batch": args.batch, "device": str(dev), "load_avg": os.getloadavg()[0]}
            results.append(row)
            print(f"| {preset} | {n_params / 1e6:.2f} | {threads} | {lat_ms:.0f} | {nps:.1f} | {nps:.1f}x | "
                  f"{100 * share:.0f} % / {100 * (1 - share):.0f} % |", flush=True)
    if args.json:
        from darkgan.utils.io import write_json

        write_json(args.json, {"results": results, "torch": torch.__version__})


if __name__ == "__main__":
    main()
