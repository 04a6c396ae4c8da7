"""The listening page of the report (issue 15 item 6): hear what each strong attribute does.

For the ``listening_attributes`` (12) attributes of a model with the highest teacher rho_i
(validation conditioning), notes at user values 0 / 0.5 / 1 of that attribute
(:class:`darkgan.generation.scale.AttributeScale`: 0 = the typical note, 1 = the 99th
percentile of the reference notes, linear in logit space at the model's temperature; fitted on
the model's attribute bank, else on the dataset's validation labels), every other attribute at
its typical value (user value 0), at three pitches, one fixed noise vector per pitch: WAVs and
log-magnitude spectrogram PNGs under ``REPORT_DIR/listening/<model>/``, shown as audio players
with images in ``report.html``.
"""
from __future__ import annotations

import numpy as np

#: User values of the page's columns.
VALUES = (0.0, 0.5, 1.0)
#: Preferred pitches (clipped into the model's range).
PITCHES = (48, 60, 67)


def listening_pitches(pitch_range: tuple[int, int]) -> list[int]:
    """Three pitches inside ``pitch_range`` (MIDI, inclusive): C3, C4, G4 when possible, else
    the range's quartiles."""
    lo, hi = pitch_range
    got = sorted({int(np.clip(p, lo, hi)) for p in PITCHES})
    if len(got) < 3:
        got = sorted({int(round(lo + q * (hi - lo))) for q in (0.25, 0.5, 0.75)})
    return got


def listening_inputs(scale, K: int, attributes: list[int], pitches: list[int], latent_dim: int, seed: int):
    """Inputs of the page: ``(z [N, Z], pitch [N], alpha [N, K], meta [N] dicts)``, N = attributes
    x pitches x values; the base vector is every attribute at user value 0."""
    base = scale.to_raw(np.zeros(K, np.float32))
    zs = np.random.default_rng([seed, 11]).standard_normal((len(pitches), latent_dim)).astype(np.float32)
    z, pitch, alpha, meta = [], [], [], []
    for i in attributes:
        for pj, p in enumerate(pitches):
            for v in VALUES:
                a = base.copy()
                a[i] = scale.to_raw(v, index=i)
                z.append(zs[pj])
                pitch.append(p)
                alpha.append(a)
                meta.append({"index": int(i), "pitch": int(p), "value": float(v), "raw": float(a[i])})
    return np.stack(z), np.asarray(pitch, np.int64), np.stack(alpha).astype(np.float32), meta


def write_listening(ctx, model) -> list[dict]:
    """Generate and write the page's notes for ``model``; returns ``[{"attribute", "rho", "pitch",
    "value", "raw", "wav", "png"}]`` (paths relative to the report folder).

    Raises:
        ValueError: the user scale cannot be fitted (from AttributeScale); DarkGANError: generation.
    """
    from darkgan.evaluation.report import _slug
    from darkgan.generation.cli import write_spectrogram_png, write_wav
    from darkgan.generation.scale import AttributeScale

    logits = model.scale_logits
    if logits is None:
        logits = ctx.data.note_logits(ctx.plan.va_rows)[:, ctx.data.class_idx]
    scale = AttributeScale.from_logits(np.asarray(logits), model.temperature)
    rho = ctx.teacher_rho(model)
    best = [i for i in ctx.order_by_rho(model) if np.isfinite(rho[i])][:ctx.proto.listening_attributes]
    z, pitch, alpha, meta = listening_inputs(scale, ctx.data.K, best, listening_pitches(model.pitch_range),
                                             model.latent_dim, ctx.seed)
    waves = np.concatenate([model.generate(z[s:s + 64], pitch[s:s + 64], alpha[s:s + 64])
                            for s in range(0, len(z), 64)])
    folder = ctx.out_dir / "listening" / _slug(model.name)
    out = []
    for w, e in zip(waves, meta):
        stem = f"{_slug(ctx.data.names[e['index']])}-midi{e['pitch']}-v{e['value']:g}"
        write_wav(folder / f"{stem}.wav", w)
        write_spectrogram_png(folder / f"{stem}.png", w, f"{ctx.data.names[e['index']]} = {e['value']:g}, "
                              f"MIDI {e['pitch']}")
        out.append({"attribute": ctx.data.names[e["index"]], "rho": float(rho[e["index"]]), "pitch": e["pitch"],
                    "value": e["value"], "raw": e["raw"], "wav": str((folder / f"{stem}.wav").relative_to(ctx.out_dir)),
                    "png": str((folder / f"{stem}.png").relative_to(ctx.out_dir))})
    return out
