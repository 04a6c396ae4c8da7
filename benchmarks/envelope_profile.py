"""Do generated notes decay as real notes with their labels and pitch do? (issue 15, stop 48)

    python benchmarks/envelope_profile.py --checkpoint C [--checkpoint C2 ...] [--data DIR] [--n 600]
        [--ridge 0.01] [--band 1.0] [--seed 2] [--json out.json]

The envelope model of ``g_profile`` (:func:`darkgan.training.terms.envelope_profile_model`: every
frame of the training notes' temporal envelope, in dB below the loudest frame, regressed on their
labels and pitch) predicts the envelope of ``n`` validation notes (unseen instruments) from their
labels and pitch. Each checkpoint generates a note from each of those labels and pitches (one fixed
z each), and both real and generated envelopes are scored against the prediction: the
``g_profile`` loss, the share of frames outside the band (the real notes' residual spread), R^2
(1 - residual / total variance over notes and frames; below 0: farther from the prediction than
from the notes' own mean) and, per frame, the correlation across notes with the prediction.
Also the median envelope of the notes whose labels are among the top 5 % for Percussion.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

FRAMES = (2, 4, 8, 16, 24, 28)


def scores(profile: torch.Tensor, target: torch.Tensor, band: torch.Tensor) -> dict:
    """``profile, target [n, W]`` dB, ``band [W]`` -> the measures of the module docstring."""
    from darkgan.training.losses import envelope_profile_loss

    res = profile - target
    r2 = 1.0 - float(res.square().sum() / (profile - profile.mean(0)).square().sum())
    corr = {f: float(np.corrcoef(profile[:, f].numpy(), target[:, f].numpy())[0, 1]) for f in FRAMES}
    return {"loss": float(envelope_profile_loss(profile, target, band)),
            "outside_band": float((res.abs() > band).float().mean()), "r2": r2, "corr_by_frame": corr}


@torch.no_grad()
def main() -> None:
    from darkgan.generation.api import DarkGAN
    from darkgan.models.generator import attribute_logits
    from darkgan.training.data import load_training_data
    from darkgan.training.terms import envelope_profile, envelope_profile_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", required=True)
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--ridge", type=float, default=0.01, help="train.profile_ridge")
    ap.add_argument("--band", type=float, default=1.0, help="train.profile_band")
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    data = load_training_data(a.data)
    model = envelope_profile_model(data, a.temperature, a.ridge)
    band = a.band * model.band
    valid = np.asarray(data.cache.rows("valid"))
    rows = np.sort(np.random.default_rng(a.seed).choice(valid, min(a.n, len(valid)), replace=False))
    alpha = torch.sigmoid(torch.from_numpy(np.asarray(data.logits[rows], np.float32)) / a.temperature)
    target = model.predict(attribute_logits(alpha), torch.from_numpy(data.pitch_index(rows).astype(np.int64)))
    perc = data.attributes.index("Percussion") if "Percussion" in data.attributes else None
    top = (alpha[:, perc] >= alpha[:, perc].quantile(0.95)).numpy() if perc is not None else None
    result = {"n": len(rows), "ridge": a.ridge, "band": a.band, "notes": {}}
    profiles = {"real validation notes": envelope_profile(data.cache.load(rows, normalize=False)[:, 0].float())}
    for ck in a.checkpoint:
        m = DarkGAN.load(ck)
        z = torch.randn(len(rows), m.latent_dim, generator=torch.Generator().manual_seed(0))
        profiles[ck] = envelope_profile(m.generate_magif(z, data.cache.pitch[rows], alpha.numpy())[:, 0].float())
    print(f"{len(rows)} validation notes' labels and pitches; envelope model ridge {a.ridge}, band {a.band} x residual sd")
    print("| notes | g_profile loss | frames outside band | R^2 | corr. with prediction, frames "
          + " / ".join(map(str, FRAMES)) + " | top-5 % Percussion, median dB at frames " + " / ".join(map(str, FRAMES)) + " |")
    print("|---|---|---|---|---|---|")
    for name, p in profiles.items():
        r = result["notes"][name] = scores(p, target, band)
        if top is not None:
            r["percussion_median_db"] = {f: float(p[top, f].median()) for f in FRAMES}
        perc_txt = " / ".join(f"{r['percussion_median_db'][f]:.1f}" for f in FRAMES) if top is not None else "-"
        print(f"| {name} | {r['loss']:.3f} | {r['outside_band']:.0%} | {r['r2']:+.2f} | "
              + " / ".join(f"{r['corr_by_frame'][f]:+.2f}" for f in FRAMES) + f" | {perc_txt} |")
    if a.json:
        from darkgan.utils.io import write_json

        write_json(a.json, result)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
