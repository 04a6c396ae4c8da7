"""Attribute response: does the teacher hear more of an attribute when its input rises?

    python benchmarks/attribute_response.py [--checkpoint PATH] [--data DIR] [--notes 16]
                                            [--levels 0 0.5 1] [--seed 0] [--top 10]
                                            [--attributes NAME ...] [--json out.json]

For every attribute i of the checkpoint (or those named): ``--notes`` base notes (a validation
attribute vector of the bank with its own pitch, and a z ~ N(0, I)) are generated with alpha_i
set to each of ``--levels``, all other inputs fixed. The teacher (the checkpoint's, at its
temperature: ``F_i = sigmoid(z_teacher_i / T)``, the same units as alpha) scores every note.
Reported per attribute: the teacher's mean F_i at each level, the least-squares slope of F_i on
alpha_i (per note, pooled), Pearson's r and its p-value over the (alpha_i, F_i) pairs, and
whether the mean rises at every step. The ``--top`` attributes by r are printed as a table;
``rises`` = the mean increases monotonically over the levels.

This is the issue's check ("the teacher's mean prediction for an attribute must rise when that
attribute's input rises") and a cheap cousin of the paper's increment consistency (Sec. 4.4.2),
which the evaluation stage computes in full. Cost: K x levels x notes generations + teacher
calls (128 x 3 x 16 = 6144 notes by default).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="default: the shipped checkpoint")
    ap.add_argument("--data", default=None, help="labelled dataset (attribute bank if the checkpoint has none)")
    ap.add_argument("--notes", type=int, default=16, help="base notes per attribute")
    ap.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--attributes", nargs="+", default=None, help="only these attributes (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from scipy.stats import pearsonr

    from darkgan.generation.api import DarkGAN

    model = DarkGAN.load(args.checkpoint, device=args.device, data=args.data)
    if not model.has_attributes:
        raise SystemExit("the checkpoint has no attributes (baseline)")
    pool = model.validation_attributes()
    if pool is None:
        raise SystemExit("the checkpoint has no attribute bank: build it with `darkgan generate --build-bank --data DIR`")
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(pool), size=args.notes, replace=len(pool) < args.notes)
    base = pool[rows]
    pitch = model.bank.pitch[rows]
    z = rng.standard_normal((args.notes, model.latent_dim)).astype(np.float32)
    names = model.attributes
    which = [model.attribute_index(a) for a in args.attributes] if args.attributes else list(range(len(names)))
    levels = np.asarray(args.levels, dtype=np.float32)
    teacher = model.teacher
    cls = np.asarray(model.config.class_indices)
    T = model.temperature
    results = []
    t0 = time.perf_counter()
    L, N = len(levels), args.notes
    for j, i in enumerate(which):
        alpha = np.repeat(base[None], L, axis=0)  # [L, N, K]
        alpha[:, :, i] = levels[:, None]
        waves = model.generate_batch(np.tile(z, (L, 1)), np.tile(pitch, L), alpha.reshape(L * N, -1))
        logits = teacher.logits(waves).cpu().numpy()[:, cls[i]]
        f = (1 / (1 + np.exp(-logits / T))).reshape(L, N)
        x = np.repeat(levels, N)
        slope = float(np.polyfit(x, f.reshape(-1), 1)[0])
        r, pval = pearsonr(x, f.reshape(-1)) if np.std(f) > 0 else (0.0, 1.0)
        means = f.mean(axis=1)
        results.append({"attribute": names[i], "index": int(i), "means": means.tolist(), "slope": slope,
                        "r": float(r), "p": float(pval), "rises": bool(np.all(np.diff(means) > 0))})
        if (j + 1) % 16 == 0:
            print(f"# {j + 1}/{len(which)} attributes, {time.perf_counter() - t0:.0f} s", flush=True)
    results.sort(key=lambda d: -d["r"])
    n_pos = sum(d["r"] > 0 and d["p"] < 0.01 for d in results)
    n_rise = sum(d["rises"] for d in results)
    print(f"# checkpoint {model.checkpoint_path} (step {model.config.step}), T={T:g}, {N} notes x levels "
          f"{', '.join(f'{v:g}' for v in levels)}, seed {args.seed}, {time.perf_counter() - t0:.0f} s")
    print(f"# {n_pos}/{len(results)} attributes with r > 0 at p < 0.01; {n_rise}/{len(results)} with a "
          "monotonically rising mean")
    print("| attribute | teacher mean F_i at levels " + " / ".join(f"{v:g}" for v in levels)
          + " | slope | r | rises |")
    print("|---|---|---|---|---|")
    for d in results[:args.top]:
        print(f"| {d['attribute']} | " + " / ".join(f"{m:.3f}" for m in d["means"])
              + f" | {d['slope']:+.3f} | {d['r']:+.2f} | {'yes' if d['rises'] else 'no'} |")
    if args.json:
        from darkgan.utils.io import write_json

        write_json(args.json, {"checkpoint": str(model.checkpoint_path), "step": model.config.step,
                               "levels": levels.tolist(), "notes": N, "seed": args.seed, "temperature": T,
                               "positive_significant": n_pos, "rising": n_rise, "results": results})


if __name__ == "__main__":
    main()
