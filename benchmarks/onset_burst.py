"""The onset burst of generated notes against real ones, as numbers and a figure (issue 15).

    python benchmarks/onset_burst.py --data DIR [--checkpoint default --checkpoint control ...]
                                     [--n 512] [--seed 0] [--png docs/img/onset_burst.png]
                                     [--json out.json] [--threads 2]

For ``--n`` validation notes of ``DIR`` (their pitch and, per checkpoint, their teacher attributes
from the checkpoint's attribute bank; z ~ N(0, I) with ``--seed``), each checkpoint generates the
notes (:meth:`DarkGAN.generate_batch`, limiter off) and ``--n`` training crops are rebuilt from
the cache (:func:`darkgan.evaluation.data.real_waves`, the representation the GAN models). Printed
per row: the onset burst :func:`darkgan.evaluation.metrics.tail.onset_burst_db` (power of the
first 32 ms relative to 32-128 ms; median, share above +6 dB, share above the real notes' 99th
percentile) and, from the generator's own MAG-IF, the median drop of the frame energy from STFT
frame 0 to frame 1 (:func:`darkgan.data.magif.frame_energy_db`; real notes: never below -3 dB).
The figure shows each row's median power envelope over the first 252 ms in 4 ms blocks, relative
to 128-252 ms. Both read the audible signal (20 Hz high-pass; stop 49).
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

BLOCK = 64  # samples per envelope block (4 ms)
SPAN = 4032  # samples shown (252 ms, 63 blocks)


def envelope_db(waves: np.ndarray) -> np.ndarray:
    """``[n, 16000]`` -> ``[SPAN // BLOCK]`` median power envelope (dB re 128-252 ms) of the audible
    signal (20 Hz high-pass, as :func:`darkgan.evaluation.metrics.tail.onset_burst_db`)."""
    from darkgan.evaluation.metrics.tail import audible

    x = audible(waves)[:, :SPAN].reshape(len(waves), -1, BLOCK)
    p = 10 * np.log10((x ** 2).mean(-1) + 1e-12)
    return np.median(p - p[:, 2048 // BLOCK:].mean(1, keepdims=True), axis=0)


def generated(name: str, data: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(waves [n, 16000], frame-0 -> 1 energy steps of the generator's MAG-IF [n])."""
    from darkgan import DarkGAN
    from darkgan.data.magif import frame_energy_db

    model = DarkGAN.load(name, data=data)
    if model.has_attributes and model.bank is None:
        raise SystemExit(f"{name}: no attribute bank; run `darkgan generate --checkpoint {name} --build-bank --data DIR`")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, model.latent_dim)).astype(np.float32)
    rows = rng.choice(len(model.bank), n, replace=len(model.bank) < n) if model.has_attributes else None
    pitch = model.bank.pitch[rows] if rows is not None else rng.integers(*model.pitch_range, n, endpoint=True)
    alpha = model.bank.alpha(rows, model.temperature) if rows is not None else None
    waves = model.generate_batch(z, pitch, alpha, limit=False).numpy()
    e = frame_energy_db(model.generate_magif(z, pitch, alpha)[:, 0])
    return waves, (e[:, 1] - e[:, 0]).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="prepared dataset folder (cache, labels)")
    ap.add_argument("--checkpoint", action="append", default=None, help="checkpoint (repeatable; default: default)")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from darkgan.data.cache import NoteCache
    from darkgan.data.magif import frame_energy_db
    from darkgan.evaluation.data import real_waves
    from darkgan.evaluation.metrics.tail import onset_burst_db

    cache = NoteCache(os.path.join(args.data, "cache"))
    rows = np.sort(np.random.default_rng(args.seed).choice(np.where(cache.split == "train")[0], args.n, replace=False))
    e = frame_energy_db(cache.load(rows, normalize=False)[:, 0].float())
    rows_out = {"real (training crops)": (real_waves(cache, rows), (e[:, 1] - e[:, 0]).numpy())}
    for name in args.checkpoint or ["default"]:
        rows_out[name] = generated(name, args.data, args.n, args.seed)
    real_p99 = float(np.percentile(onset_burst_db(rows_out["real (training crops)"][0]), 99))
    result = {}
    print(f"{'row':28s} onset burst median (dB)  > +6 dB  > real p99  MAG-IF frame 0 -> 1 median (dB)")
    for name, (waves, step) in rows_out.items():
        db = onset_burst_db(waves)
        r = {"n": len(db), "onset_median_db": float(np.median(db)), "share_above_6db": float((db > 6).mean()),
             "share_above_real_p99": float((db > real_p99).mean()), "magif_step01_median_db": float(np.median(step)),
             "envelope_db": envelope_db(waves).round(2).tolist()}
        result[name] = r
        print(f"{name:28s} {r['onset_median_db']:+23.1f} {r['share_above_6db']:8.2f} {r['share_above_real_p99']:10.2f} "
              f"{r['magif_step01_median_db']:+31.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"real_p99_db": real_p99, "rows": result, "n": args.n, "seed": args.seed}, f, indent=1)
    if args.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = (np.arange(SPAN // BLOCK) + 0.5) * BLOCK / 16.0
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for name, r in result.items():
            ax.plot(t, r["envelope_db"], label=f"{name} ({r['onset_median_db']:+.1f} dB)")
        ax.axvline(32, color="grey", lw=0.5, ls=":")
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("power re 128-252 ms (dB), median")
        ax.set_title(f"Onset of {args.n} notes: real crops and generators (onset burst median)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
        print(f"figure: {args.png}")


if __name__ == "__main__":
    main()
