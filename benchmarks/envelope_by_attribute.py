"""Which real notes ``g_envelope`` penalises, by the teacher's soft labels (issue 15, stop 43).

    python benchmarks/envelope_by_attribute.py [--data DIR] [--n 4096] [--quantile 0.05]
        [--drop-steps 31] [--top 0.05] [--attr NAME ...] [--seed 1] [--json out.json]

``n`` real training notes (drawn with ``--seed``) are scored one by one with the generator's own
term, :func:`darkgan.training.losses.envelope_range_loss` under the bounds of
:func:`darkgan.training.terms.envelope_bounds` (``--quantile``, ``--drop-steps``: the
``train.envelope_*`` settings). For each attribute asked, the top ``--top`` share of the notes by
that attribute's soft label ``sigmoid(z / T)`` is compared with all notes: the share that pays
something, the mean loss as a multiple of all notes' mean, and the Spearman correlation of label
and loss. A term that real notes of one kind pay for teaches the generator not to make that kind.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

DEFAULT_ATTRS = ("Percussion", "Drum", "Marimba, xylophone", "Glockenspiel", "Chime", "Tuning fork",
                 "Brass instrument", "Saxophone", "Piano", "Guitar", "Electronic tuner")


def per_note_loss(data, rows: np.ndarray, lo: torch.Tensor, hi: torch.Tensor) -> np.ndarray:
    """``[len(rows)]`` the ``g_envelope`` loss of each real note (un-normalised cache log magnitudes)."""
    from darkgan.data.magif import frame_energy_db
    from darkgan.training.losses import envelope_range_loss

    out = []
    for i in range(0, len(rows), 256):
        energy = frame_energy_db(data.cache.load(rows[i:i + 256], normalize=False)[:, 0].float())
        out += [float(envelope_range_loss(e[None], lo, hi)) for e in energy]
    return np.asarray(out)


def main() -> None:
    from scipy.stats import spearmanr

    from darkgan.training.data import load_training_data
    from darkgan.training.terms import envelope_bounds

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--quantile", type=float, default=0.05, help="train.envelope_quantile (the shipped recipe's)")
    ap.add_argument("--drop-steps", type=int, default=31, help="train.envelope_drop_steps")
    ap.add_argument("--top", type=float, default=0.05)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--attr", action="append", default=[])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    data = load_training_data(a.data)
    names = a.attr or [n for n in DEFAULT_ATTRS if n in data.attributes]
    unknown = [n for n in names if n not in data.attributes]
    if unknown:
        raise SystemExit(f"--attr {unknown[0]!r}: not in {a.data}'s vocabulary")
    lo, hi = envelope_bounds(data, 0, a.quantile, drop_steps=a.drop_steps)
    rows = np.sort(np.random.default_rng(a.seed).choice(data.train_rows, min(a.n, len(data.train_rows)), replace=False))
    loss = per_note_loss(data, rows, lo, hi)
    alpha = 1.0 / (1.0 + np.exp(-data.logits[rows] / a.temperature))
    print(f"{len(rows)} real training notes, quantile {a.quantile}, drop steps {a.drop_steps}: "
          f"{(loss > 0).mean():.0%} pay, mean loss {loss.mean():.4f}")
    print(f"| top {a.top:.0%} by | share paying | mean loss (x all) | Spearman(label, loss) |\n|---|---|---|---|")
    result = {"n": len(rows), "quantile": a.quantile, "drop_steps": a.drop_steps, "share_paying": float((loss > 0).mean()),
              "mean_loss": float(loss.mean()), "attributes": {}}
    for name in names:
        lab = alpha[:, data.attributes.index(name)]
        top = lab >= np.quantile(lab, 1 - a.top)
        r = {"share_paying": float((loss[top] > 0).mean()), "loss_ratio": float(loss[top].mean() / max(loss.mean(), 1e-12)),
             "spearman": float(spearmanr(lab, loss).correlation)}
        result["attributes"][name] = r
        print(f"| {name} | {r['share_paying']:.0%} | {r['loss_ratio']:.2f}x | {r['spearman']:+.3f} |")
    if a.json:
        from darkgan.utils.io import write_json

        write_json(a.json, result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
