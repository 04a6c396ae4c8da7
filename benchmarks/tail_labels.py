"""Does the teacher hear a note's labels in its tail alone? Real and generated notes (issue 15, stop 52)

    python benchmarks/tail_labels.py --checkpoint C [--data DIR] [--n 512] [--from-s 0 0.1 0.2 0.3]
        [--seed 0] [--json out.json]

``n`` random validation notes and the checkpoint's notes asked with their labels and pitch (one z
each, drawn with ``--seed``) are synthesised (:func:`darkgan.data.magif.magif_to_note`, real notes
through their cached MAG-IF as the generated ones) and labelled by the teacher from each
``--from-s`` on (0: the whole note). Printed per start: the attribute correlation rho_i between
the asked labels and the teacher's soft labels of that span
(:func:`darkgan.evaluation.metrics.correlation.attribute_correlation`, Pearson, the measure of
``benchmarks/control.py``), its mean over the K attributes and the Table-2 instruments', for real
and generated notes. A struck note's label lives in its decay as well as in its attack: what a
generator says only with its onset is lost from 0.1 s on. ``g_tail`` (docs/training.md, "Losses")
trains the span from ``train.tail_from_s``.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch


@torch.no_grad()
def tail_correlations(model, data, rows: np.ndarray, starts_s: list[float], seed: int) -> dict:
    """``{"real"|"generated": {start_s: attribute_correlation dict}}`` for the dataset notes ``rows [n]``:
    each note's waveform ``[n, 16000]`` (16 kHz) cut from ``start_s`` seconds on, labelled by the teacher
    (``[n, K]`` soft labels at the model's T) and correlated with the asked ``alpha [n, K]``."""
    from darkgan.data.magif import SAMPLE_RATE, magif_to_note
    from darkgan.evaluation.metrics.correlation import attribute_correlation

    alpha = (1 / (1 + np.exp(-np.asarray(data.logits[rows], np.float64) / model.temperature))).astype(np.float32)
    z = torch.randn(len(rows), model.latent_dim, generator=torch.Generator().manual_seed(seed))
    waves = {"real": [], "generated": []}
    for i in range(0, len(rows), 64):
        r = rows[i:i + 64]
        waves["real"].append(magif_to_note(data.cache.load(r, normalize=False).float()))
        gen = model.generate_magif(z[i:i + 64], data.cache.pitch[r], alpha[i:i + 64]).float()
        waves["generated"].append(magif_to_note(gen))
    out = {}
    for side, w in waves.items():
        w = torch.cat(w)
        out[side] = {s: attribute_correlation(model.teacher_attributes(w[:, int(round(s * SAMPLE_RATE)):]), alpha,
                                              model.attributes) for s in starts_s}
    return out


def main() -> None:
    from darkgan.evaluation.taggers import TABLE2_INSTRUMENTS
    from darkgan.generation.api import DarkGAN
    from darkgan.training.data import load_training_data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="default")
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--from-s", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()
    if not all(0 <= s <= 0.75 for s in a.from_s):
        raise SystemExit(f"tail_labels.py: --from-s must be in [0, 0.75] s, got {a.from_s}")
    data = load_training_data(a.data)
    model = DarkGAN.load(a.checkpoint)
    valid = np.asarray(data.cache.rows("valid"))
    rows = np.sort(np.random.default_rng(a.seed).choice(valid, min(a.n, len(valid)), replace=False))
    res = tail_correlations(model, data, rows, a.from_s, a.seed)
    table2 = [model.attributes.index(n) for n in TABLE2_INSTRUMENTS if n in model.attributes]
    print(f"{len(rows)} validation notes; {a.checkpoint}'s notes asked as them; teacher rho of the span from t on")
    print("| notes | from | mean rho | Table-2 mean | " + " | ".join(model.attributes[k] for k in table2) + " |")
    print("|---" * (4 + len(table2)) + "|")
    summary = {"checkpoint": a.checkpoint, "n": len(rows), "seed": a.seed, "spans": []}
    for side, by_start in res.items():
        for s, c in by_start.items():
            rho = np.asarray([np.nan if v is None else v for v in c["rho"]], np.float64)
            row = {"notes": side, "from_s": s, "mean_rho": c["mean_rho"], "table2_mean": float(np.nanmean(rho[table2])),
                   "table2": {model.attributes[k]: float(rho[k]) for k in table2}}
            summary["spans"].append(row)
            print(f"| {side} | {s:.2f} s | {row['mean_rho']:.3f} | {row['table2_mean']:.3f} | "
                  + " | ".join(f"{rho[k]:.2f}" for k in table2) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
