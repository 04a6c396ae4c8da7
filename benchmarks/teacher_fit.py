"""What does the generator learn from the teacher alone? G fitted to one teacher term, no critic (issue 15, stop 52)

    python benchmarks/teacher_fit.py --checkpoint C [--data DIR] [--term g_teacher|g_tail]
        [--loss std_mse|white_mse|corr] [--gradient magif|magnitude] [--steps 300] [--lr 1e-3]
        [--batch 16] [--n 256] [--seed 0] [--json out.json]

The checkpoint's generator (float32, every weight) is trained by Adam (betas 0, 0.99, as the
training) on one term of :class:`darkgan.training.terms.WaveTerms` alone, ``train.teacher_loss``
``--loss`` and ``train.teacher_gradient`` ``--gradient``, the random transforms and the attribute
weights of the shipped recipe, on batches of training notes asked with their own labels and
pitch. No critic and no other term hold it: the question is which way the teacher's gradient
moves the notes. Every 100 steps the term, ``g_teacher`` (white_mse) and ``g_f0`` are read on 64
fixed training notes; at the end, the attribute correlation of the whole note and of its tail from
0.2 s on (``benchmarks/tail_labels.py``) on ``--n`` validation notes, and the same at step 0.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

WEIGHTS = '{"Brass instrument": 5, "Chime": 5, "Percussion": 5, "Tuning fork": 5, "Saxophone": 3}'


def batch(data, rows: np.ndarray):
    """``(real [b, 2, 1024, 32] un-normalised, pitch_index [b], alpha [b, K])`` of training rows."""
    real = data.cache.load(rows, normalize=False).float()
    pitch = torch.from_numpy(data.pitch_index(rows).astype(np.int64))
    alpha = torch.sigmoid(torch.from_numpy(np.asarray(data.logits[rows], np.float32)) / 2.0)
    return real, pitch, alpha


def correlations(model, data, rows: np.ndarray, seed: int) -> dict:
    """``{"whole"|"tail": (mean rho, Percussion rho)}`` of the model's notes asked as ``rows``."""
    from tail_labels import tail_correlations

    res = tail_correlations(model, data, rows, [0.0, 0.2], seed)["generated"]
    k = model.attributes.index("Percussion")
    return {span: (round(res[s]["mean_rho"], 3), round(res[s]["rho"][k], 3)) for span, s in (("whole", 0.0), ("tail", 0.2))}


def main() -> None:
    from darkgan.generation.api import DarkGAN
    from darkgan.models.config import apply_overrides, get_preset
    from darkgan.training.data import load_training_data
    from darkgan.training.terms import WaveTerms

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="default")
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--term", choices=("g_teacher", "g_tail"), default="g_teacher")
    ap.add_argument("--loss", choices=("std_mse", "white_mse", "corr"), default="white_mse")
    ap.add_argument("--gradient", choices=("magif", "magnitude"), default="magif")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.steps < 0 or a.lr <= 0 or a.batch < 2:
        raise SystemExit(f"teacher_fit.py: need --steps >= 0, --lr > 0, --batch >= 2; got {a.steps}, {a.lr}, {a.batch}")
    data = load_training_data(a.data)
    base = ["train.teacher_loss=white_mse", f"train.teacher_attribute_weights={WEIGHTS}", "train.loss_weights.g_f0=1",
            "train.loss_weights.g_teacher=1", "train.loss_weights.g_tail=1"]
    cfg = lambda extra: apply_overrides(get_preset("small-control"), base + extra).train  # noqa: E731
    fitted = WaveTerms(cfg([f"train.teacher_loss={a.loss}", f"train.teacher_gradient={a.gradient}"]), data,
                       torch.device("cpu"))
    reader = WaveTerms(cfg([]), data, torch.device("cpu"))
    model = DarkGAN.load(a.checkpoint)
    g = model.synthesiser.generator.float()
    scale, fade = model.synthesiser.scale, model.synthesiser.alpha
    train_rows = np.asarray(data.train_rows)
    fixed = batch(data, np.sort(np.random.default_rng(a.seed + 1).choice(train_rows, 64, replace=False)))
    valid = np.asarray(data.cache.rows("valid"))
    valid = np.sort(np.random.default_rng(a.seed).choice(valid, min(a.n, len(valid)), replace=False))
    z_fixed = torch.randn(64, model.latent_dim, generator=torch.Generator().manual_seed(a.seed))

    def read() -> dict:
        real, pitch, alpha = fixed
        with torch.no_grad():
            out = g(z_fixed, pitch, alpha, scale=scale, alpha=fade).float()
            t = reader.for_batch(pitch, alpha, torch.Generator().manual_seed(0), real=real)(out)
        return {k: round(float(t[k]), 3) for k in ("g_teacher", "g_tail", "g_f0")}

    result = {"args": vars(a), "start": {"terms": read(), "rho": correlations(model, data, valid, a.seed)}, "log": []}
    print(f"step 0: {result['start']}", flush=True)
    opt = torch.optim.Adam(g.parameters(), lr=a.lr, betas=(0.0, 0.99))
    rng, gen, t0, seen = np.random.default_rng(a.seed), torch.Generator().manual_seed(a.seed), time.time(), []
    g.train()
    for step in range(1, a.steps + 1):
        real, pitch, alpha = batch(data, np.sort(rng.choice(train_rows, a.batch, replace=False)))
        out = g(torch.randn(a.batch, model.latent_dim, generator=gen), pitch, alpha, scale=scale, alpha=fade)
        loss = fitted.for_batch(pitch, alpha, gen, real=real)(out)[a.term]
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen.append(float(loss.detach()))
        if step % 100 == 0 or step == a.steps:
            left = (time.time() - t0) / step * (a.steps - step)
            result["log"].append({"step": step, "train": round(float(np.mean(seen[-100:])), 3), **read()})
            print(f"step {step}/{a.steps}: {result['log'][-1]} (ETA {left:.0f} s)", flush=True)
    g.eval()
    result["end"] = {"rho": correlations(model, data, valid, a.seed)}
    print(f"whole note / tail from 0.2 s, (mean rho, Percussion rho) over {len(valid)} validation notes: "
          f"start {result['start']['rho']}, end {result['end']['rho']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
