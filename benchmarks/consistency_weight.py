"""How ``g_consistency`` compares with ``g_teacher`` on a trained generator (issue 21).

On the shipped generator (or ``--checkpoint``), a batch of ``--batch`` training notes' conditioning
(soft labels ``sigmoid(z / T)``) and pitches, fixed z (seed 0): the value of each term as
:class:`darkgan.training.terms.WaveTerms` computes it in training (``g_teacher``: ``std_mse``
with the random transforms; ``g_consistency``: half the batch again at ``p +- 1..3``) and the
norm of its gradient with respect to the generator's output ``[b, 2, 1024, 32]``, so that a
weight can be chosen. One thread, no training.

    python benchmarks/consistency_weight.py --data /work/data/default
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/work/data/default")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from darkgan.models.checkpoint import load_generator
    from darkgan.models.config import apply_overrides
    from darkgan.training.data import load_training_data
    from darkgan.training.loop import _with_partners
    from darkgan.training.losses import teacher_soft_labels
    from darkgan.training.terms import WaveTerms

    G, cc = load_generator(args.checkpoint)
    data = load_training_data(args.data)
    cfg = apply_overrides(cc.config, ["train.loss_weights.g_teacher=1", "train.loss_weights.g_consistency=1"])
    wt = WaveTerms(cfg.train, data, torch.device("cpu"))
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(data.train_rows, size=args.batch, replace=False))
    pitch = torch.from_numpy(data.pitch_index(rows).astype(np.int64))
    soft = teacher_soft_labels(torch.from_numpy(data.logits[rows]), cfg.train.temperature)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(args.batch, G.cfg.latent_dim, generator=gen)
    terms = wt.for_batch(pitch, soft, gen, torch.rand(args.batch, generator=gen))
    with torch.no_grad():
        out = G(*_with_partners(z, pitch, soft, terms.partner_pitch))
    res = {"checkpoint": str(args.checkpoint or "default"), "batch": args.batch, "unrelated_distance": wt.unrelated,
           "partner_offsets": (terms.partner_pitch - pitch[:len(terms.partner_pitch)]).tolist()}
    for name in ("g_teacher", "g_consistency"):
        x = out.clone().requires_grad_(True)
        value = terms(x)[name]
        (grad,) = torch.autograd.grad(value, x)
        res[name] = float(value)
        res[f"{name}_grad_norm"] = float(grad.norm())
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
