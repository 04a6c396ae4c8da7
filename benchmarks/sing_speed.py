"""SING generation speed: seconds of audio generated per second of wall time, batch 1 and 64,
beside DarkGAN's shipped checkpoint (same machine, same threads, same run).

    python benchmarks/sing_speed.py [--presets cpu paper] [--checkpoint sing-default]
                                    [--threads 1] [--reps 3] [--device cpu] [--darkgan default]
                                    [--json out.json]
    python benchmarks/sing_speed.py --train-steps cpu      # seconds per step of each stage

SING: :func:`darkgan.sing.speed.audio_rate`, the API's ``SingSynth.generate_batch`` (LSTM over
N = 265 steps, decoder, overlap-add, clipping) for 4 s notes, the timing ``darkgan bench`` uses
too; random weights for the presets (same cost as trained ones), or a trained checkpoint. DarkGAN: :meth:`DarkGAN.generate_batch` (generator, inverse
STFT, limiter) of 1 s notes. Reported per system: median wall time of a batch over ``--reps``
calls after a warm-up, and audio seconds per second (``batch x note seconds / time``; > 1 is
faster than real time). The paper: 512 s/s on a P100 GPU (Table 2).
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from darkgan.sing.speed import audio_rate, params_of, random_synth, time_median


def _time(fn, reps: int) -> float:
    return time_median(fn, reps)[0]


def darkgan_rate(g, batch: int, reps: int) -> dict:
    """The same for DarkGAN (1 s notes; random z, pitch 60, the bank's first attribute vector)."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((batch, g.latent_dim)).astype(np.float32)
    alpha = np.full((batch, len(g.attributes)), 0.1, np.float32) if g.attributes else None
    sec = _time(lambda: g.generate_batch(z, np.full(batch, 60), alpha, batch_size=batch), reps)
    return {"seconds_per_batch": sec, "audio_s_per_s": batch * 1.0 / sec}


def train_step_seconds(preset: str, reps: int = 2) -> dict:
    """Seconds per training step of each stage of ``preset`` (``darkgan.sing.train`` step functions
    on synthetic notes: the cost of real ones), what the ``cpu`` preset's step counts were sized by."""
    from darkgan.sing.config import get_config
    from darkgan.sing.data import SingNotes, Vocabulary
    from darkgan.sing.model import Sing
    from darkgan.sing.train import STEP_FNS, _Run

    cfg = get_config(preset)
    n = max(cfg.train.batch_size, cfg.train.lstm_batch_size) * 2
    rng = np.random.default_rng(0)
    vocab = Vocabulary([f"i{k}" for k in range(8)], [25, 50, 75, 100, 127], (44, 70))
    notes = SingNotes((rng.standard_normal((n, cfg.model.n_samples)) * 3000).astype(np.int16),
                      rng.integers(0, 5, n), rng.integers(0, 8, n), rng.integers(0, 27, n),
                      np.array(["train"] * n), np.array([f"n{k}" for k in range(n)]), vocab)
    run = _Run(cfg, Sing(cfg.model, 5, 8, 27), notes, None, 0, {})
    return {stage: _time(lambda f=fn: f(run), reps) for stage, fn in STEP_FNS.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", default=["cpu", "paper"])
    ap.add_argument("--checkpoint", default=None, help="also time this SING checkpoint")
    ap.add_argument("--darkgan", default="default", help="DarkGAN checkpoint to compare ('' = none)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    ap.add_argument("--train-steps", default=None, metavar="PRESET", help="only time one training step of each stage")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.train_steps:
        sec = train_step_seconds(a.train_steps, a.reps)
        print(" ".join(f"{k} {v:.3f} s/step" for k, v in sec.items()), f"(load {os.getloadavg()[0]:.2f})")
        return
    systems = {f"sing-{p}": random_synth(p, device=a.device) for p in a.presets}
    if a.checkpoint:
        from darkgan.sing.api import SingSynth

        systems[f"sing:{a.checkpoint}"] = SingSynth.load(a.checkpoint, a.device)
    rows = []
    for name, synth in systems.items():
        params = params_of(synth)
        for b in a.batches:
            with torch.inference_mode():
                r = {"system": name, "params_M": params / 1e6, **audio_rate(synth, b, a.reps)}
            rows.append(r)
            print(f"{name:<24} batch {b:>3}: {r['seconds_per_batch']:8.3f} s/batch  {r['audio_s_per_s']:8.2f} s of audio/s  "
                  f"({r['params_M']:.2f} M params)", flush=True)
    if a.darkgan:
        from darkgan.generation.api import DarkGAN

        g = DarkGAN.load(a.darkgan, device=a.device)
        for b in a.batches:
            r = {"system": f"darkgan:{a.darkgan}", "batch": b, **darkgan_rate(g, b, a.reps)}
            rows.append(r)
            print(f"{r['system']:<24} batch {b:>3}: {r['seconds_per_batch']:8.3f} s/batch  {r['audio_s_per_s']:8.2f} s of audio/s",
                  flush=True)
    print(f"threads {a.threads}, device {a.device}, load average {os.getloadavg()[0]:.2f}")
    if a.json:
        from darkgan.utils.io import write_json

        write_json(a.json, {"threads": a.threads, "device": a.device, "load": os.getloadavg()[0], "rows": rows})


if __name__ == "__main__":
    main()
