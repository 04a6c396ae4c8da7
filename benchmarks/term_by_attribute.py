"""Which real notes a generator loss term penalises, by the teacher's soft labels (issue 15).

    python benchmarks/term_by_attribute.py [--term envelope|f0] [--data DIR] [--n 4096] [--top 0.05]
        [--quantile 0.05] [--drop-steps 31]      # envelope: the train.envelope_* settings
        [--checkpoint C]                         # also the notes C generates with the same labels and pitch
        [--attr NAME ...] [--seed 1] [--json out.json]

``n`` real training notes (drawn with ``--seed``) are scored one by one with the generator's own
term: ``envelope``, :func:`darkgan.training.losses.envelope_range_loss` under the bounds of
:func:`darkgan.training.terms.envelope_bounds` (stop 43); ``f0``, the waveform pitch loss
:func:`darkgan.training.losses.f0_autocorrelation_loss` at the note's own pitch (stop 48). For each
attribute asked, the top ``--top`` share of the notes by that attribute's soft label
``sigmoid(z / T)`` is compared with all notes: the share that pays something (envelope), the mean
loss as a multiple of all notes' mean, and the Spearman correlation of label and loss. A term that
real notes of one kind pay for teaches the generator not to make that kind. With ``--checkpoint``,
the generator's notes asked with the same labels and pitches (one fixed z each) are scored too: a
generated kind that pays far less than its real notes has been pushed by the term.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

DEFAULT_ATTRS = ("Percussion", "Drum", "Marimba, xylophone", "Glockenspiel", "Chime", "Tuning fork",
                 "Brass instrument", "Saxophone", "Piano", "Guitar", "Electronic tuner")


def per_note_loss(term: str, magif: torch.Tensor, midi: torch.Tensor, bounds=None) -> np.ndarray:
    """``[B]`` the term of each note: ``magif [B, 2, 1024, 32]`` un-normalised MAG-IF, ``midi [B]`` its pitch,
    ``bounds`` the envelope's ``(lo, hi)``."""
    from darkgan.data.magif import frame_energy_db, magif_to_note
    from darkgan.training.losses import envelope_range_loss, f0_autocorrelation_loss

    if term == "f0":
        return f0_autocorrelation_loss(magif_to_note(magif.float()), midi.float(), reduction="none").numpy()
    energy = frame_energy_db(magif[:, 0].float())
    return np.asarray([float(envelope_range_loss(e[None], *bounds)) for e in energy])


@torch.no_grad()
def score(term: str, data, rows: np.ndarray, bounds, checkpoint: str | None, temperature: float):
    """``(real [n], generated [n] or None)``: the term of the real notes of ``rows`` and of the notes
    ``checkpoint`` generates with their labels and pitches."""
    model = None
    if checkpoint:
        from darkgan.generation.api import DarkGAN

        model = DarkGAN.load(checkpoint)
    real, fake = [], []
    for i in range(0, len(rows), 256):
        r = rows[i:i + 256]
        midi = torch.from_numpy(data.cache.pitch[r].astype(np.int64))
        real.append(per_note_loss(term, data.cache.load(r, normalize=False), midi, bounds))
        if model is not None:
            z = torch.randn(len(r), model.latent_dim, generator=torch.Generator().manual_seed(i))
            alpha = (1.0 / (1.0 + np.exp(-data.logits[r] / temperature))).astype(np.float32)
            fake.append(per_note_loss(term, model.generate_magif(z, midi.numpy(), alpha), midi, bounds))
    return np.concatenate(real), (np.concatenate(fake) if fake else None)


def row(name: str, lab: np.ndarray, real: np.ndarray, fake: np.ndarray | None, top_share: float) -> dict:
    """One attribute's line: the top ``top_share`` of the notes by ``lab`` against all notes."""
    from scipy.stats import spearmanr

    top = lab >= np.quantile(lab, 1 - top_share)
    r = {"share_paying": float((real[top] > 0).mean()), "mean": float(real[top].mean()),
         "loss_ratio": float(real[top].mean() / max(real.mean(), 1e-12)), "spearman": float(spearmanr(lab, real).correlation)}
    if fake is not None:
        r["generated_mean"] = float(fake[top].mean())
    return r


def main() -> None:
    from darkgan.training.data import load_training_data
    from darkgan.training.terms import envelope_bounds

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--term", choices=("envelope", "f0"), default="envelope")
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--quantile", type=float, default=0.05, help="train.envelope_quantile (the shipped recipe's)")
    ap.add_argument("--drop-steps", type=int, default=31, help="train.envelope_drop_steps")
    ap.add_argument("--checkpoint", help="also score the notes this generator makes with the same labels and pitches")
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
    bounds = envelope_bounds(data, 0, a.quantile, drop_steps=a.drop_steps) if a.term == "envelope" else None
    rows = np.sort(np.random.default_rng(a.seed).choice(data.train_rows, min(a.n, len(data.train_rows)), replace=False))
    real, fake = score(a.term, data, rows, bounds, a.checkpoint, a.temperature)
    alpha = 1.0 / (1.0 + np.exp(-data.logits[rows] / a.temperature))
    setting = f"quantile {a.quantile}, drop steps {a.drop_steps}" if a.term == "envelope" else "at each note's own pitch"
    gen = f"; {a.checkpoint}'s notes with their labels and pitches: mean {fake.mean():.4f}" if fake is not None else ""
    print(f"{len(rows)} real training notes, term {a.term} ({setting}): {(real > 0).mean():.0%} pay, "
          f"mean loss {real.mean():.4f}{gen}")
    print(f"| top {a.top:.0%} by | share paying | mean loss (x all) | Spearman(label, loss) |"
          + (" generated, mean loss |\n|---|---|---|---|---|" if fake is not None else "\n|---|---|---|---|"))
    result = {"term": a.term, "n": len(rows), "share_paying": float((real > 0).mean()), "mean_loss": float(real.mean()),
              "checkpoint": a.checkpoint, "attributes": {}}
    if a.term == "envelope":
        result.update(quantile=a.quantile, drop_steps=a.drop_steps)
    if fake is not None:
        result["generated_mean_loss"] = float(fake.mean())
    for name in names:
        r = result["attributes"][name] = row(name, alpha[:, data.attributes.index(name)], real, fake, a.top)
        extra = f" {r['generated_mean']:.3f} |" if fake is not None else ""
        share = f"{r['share_paying']:.0%}" if a.term == "envelope" else "-"  # every note pays some f0 loss
        print(f"| {name} | {share} | {r['mean']:.3f} ({r['loss_ratio']:.2f}x) | {r['spearman']:+.3f} |{extra}")
    if a.json:
        from darkgan.utils.io import write_json

        write_json(a.json, result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
