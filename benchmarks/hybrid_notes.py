"""Which part of a note carries what the teacher hears? Hybrids of real and generated notes (issue 15, stop 49)

    python benchmarks/hybrid_notes.py --checkpoint C [--data DIR] [--attribute Percussion] [--n 100]
        [--seed 0] [--json out.json]

The ``n`` validation notes most labelled ``--attribute`` (teacher soft labels at the checkpoint's
T) and the checkpoint's notes asked with their labels and pitch (one z each, drawn with ``--seed``)
are turned into hybrids in un-normalised MAG-IF: the real magnitude with the generated
instantaneous frequency and the reverse, the first k frames of one with the rest of the other
(the generated note shifted to the real note's loudest-frame energy), and real notes with one
property of the generated ones imposed (a late ring, a soft attack). Each hybrid is synthesised
(:func:`darkgan.data.magif.magif_to_note`) and labelled again by the teacher; printed: the mean
probability of ``--attribute`` and of the classes most over-heard in the generated notes. Then,
per STFT frame 0-4, the median level below the loudest frame, spectral centroid and share of the
energy above 4 kHz (bins >= 20 Hz only), for those notes and for ``n`` random validation notes,
and the share of the first 6 frames' energy below 20 Hz (:func:`without_infrasound` removes it).
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch

HZ_PER_BIN = 8000.0 / 1024
DB_PER_NEPER = 20.0 / math.log(10.0)  # a natural-log magnitude step in dB


def frame_stats(magif: torch.Tensor) -> dict:
    """``[n, 2, 1024, 32]`` un-normalised MAG-IF -> per frame 0-4: median level (dB below the loudest
    frame), centroid (Hz), share above 4 kHz (dB), over bins >= 20 Hz; and the median share (dB) of
    the first 6 frames' energy in the bins below 20 Hz."""
    from darkgan.data.magif import AUDIBLE_HZ, first_bin_at, frame_energy_db

    first = first_bin_at(AUDIBLE_HZ)
    power = (2.0 * magif[:, 0].double()).exp()
    low = 10 * torch.log10(power[:, :first, :6].sum((1, 2)) / power[:, :, :6].sum((1, 2)))
    p = power[:, first:, :5]
    e = frame_energy_db(magif[:, 0])
    level = (e - e.amax(1, keepdim=True))[:, :5]
    hz = torch.arange(first, 1024, dtype=torch.float64)[None, :, None] * HZ_PER_BIN
    centroid = (p * hz).sum(1) / p.sum(1)
    high = 10 * torch.log10(p[:, hz[0, :, 0] >= 4000].sum(1) / p.sum(1))
    med = lambda x: [round(float(v), 1) for v in x.median(0).values]  # noqa: E731
    return {"level_db": med(level), "centroid_hz": med(centroid), "above_4khz_db": med(high),
            "below_20hz_first6_db": round(float(low.median()), 1)}


def hybrids(real: torch.Tensor, gen: torch.Tensor) -> dict[str, torch.Tensor]:
    """The hybrid notes of the module docstring, by name (all ``[n, 2, 1024, 32]``)."""
    from darkgan.data.magif import frame_energy_db

    gen = gen.clone()
    gen[:, 0] += ((frame_energy_db(real[:, 0]).amax(1) - frame_energy_db(gen[:, 0]).amax(1)) / DB_PER_NEPER)[:, None, None]
    out = {"real": real, "generated": gen,
           "real magnitude + generated IF": torch.stack([real[:, 0], gen[:, 1]], 1),
           "generated magnitude + real IF": torch.stack([gen[:, 0], real[:, 1]], 1)}
    for k in (1, 4, 16):
        out[f"generated frames 0-{k - 1}, real after"] = torch.cat([gen[..., :k], real[..., k:]], -1)
    ring = real.clone()  # frames 12+ held at least 12 dB below each bin's frame-8 level
    ring[:, 0, :, 12:] = torch.maximum(ring[:, 0, :, 12:], ring[:, 0, :, 8:9] - 12 / DB_PER_NEPER)
    out["real, late frames ring (-12 dB)"] = ring
    soft = real.clone()  # the first 4 frames a linear fade-in to frame 4
    for t in range(4):
        soft[:, 0, :, t] = soft[:, 0, :, 4] + float(np.log((t + 1) / 5))
    out["real, soft attack (4 frames)"] = soft
    return out


@torch.no_grad()
def main() -> None:
    from darkgan.data.magif import magif_to_note
    from darkgan.generation.api import DarkGAN
    from darkgan.training.data import load_training_data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="default")
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--attribute", default="Percussion")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()
    data = load_training_data(a.data)
    model = DarkGAN.load(a.checkpoint)
    k = model.attribute_index(a.attribute)
    valid = np.asarray(data.cache.rows("valid"))
    alpha_all = 1 / (1 + np.exp(-np.asarray(data.logits[valid], np.float64) / model.temperature))
    picks = {a.attribute: np.sort(valid[np.argsort(-alpha_all[:, k])[:a.n]]),
             "random": np.sort(np.random.default_rng(a.seed).choice(valid, a.n, replace=False))}
    result = {"checkpoint": a.checkpoint, "attribute": a.attribute, "n": a.n, "seed": a.seed}
    for name, rows in picks.items():
        alpha = (1 / (1 + np.exp(-np.asarray(data.logits[rows], np.float64) / model.temperature))).astype(np.float32)
        z = torch.randn(len(rows), model.latent_dim, generator=torch.Generator().manual_seed(a.seed))
        real = data.cache.load(rows, normalize=False).float()
        gen = model.generate_magif(z, data.cache.pitch[rows], alpha).float()
        result[name] = {"asked": float(alpha[:, k].mean()), "stats_real": frame_stats(real),
                        "stats_generated": frame_stats(gen)}
        if name != a.attribute:
            continue
        heard = {h: model.teacher_attributes(magif_to_note(x).numpy()) for h, x in hybrids(real, gen).items()}
        over = np.argsort(heard["real"].mean(0) - heard["generated"].mean(0))[:3]
        classes = [k] + [int(i) for i in over]
        result[name]["heard"] = {h: {model.attributes[i]: round(float(p[:, i].mean()), 3) for i in classes}
                                 for h, p in heard.items()}
    top = result[a.attribute]
    names = list(next(iter(top["heard"].values())))
    print(f"{a.n} validation notes most labelled {a.attribute} (asked {top['asked']:.3f}); {a.checkpoint}'s notes asked as them")
    print("| notes | " + " | ".join(names) + " |\n|---" + "|---" * len(names) + "|")
    for h, v in top["heard"].items():
        print(f"| {h} | " + " | ".join(f"{v[c]:.3f}" for c in names) + " |")
    print("\nper frame 0-4 (bins >= 20 Hz): level dB below the loudest frame | centroid Hz | share above 4 kHz dB;"
          " share of frames 0-5 below 20 Hz")
    for name in picks:
        for side in ("real", "generated"):
            s = result[name][f"stats_{side}"]
            print(f"{name:12s} {side:9s} {s['level_db']} | {s['centroid_hz']} | {s['above_4khz_db']}; "
                  f"{s['below_20hz_first6_db']} dB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
