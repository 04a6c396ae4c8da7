"""The end of a note under other synthesis fades: what the fade does to the tail and to the teacher
(issue 15, item 7; docs/generation.md, "The end of a note").

    python benchmarks/tail_fade.py --data DIR [--checkpoint default --checkpoint student ...]
                                   [--n 1100] [--fades 0,256,512,1024] [--rho-notes 2048]
                                   [--rho-fades 1024,512] [--seed 0] [--threads 1] [--json OUT]
                                   [--png docs/img/end_of_note.png]

Every training crop is faded out over its last 64 ms (:data:`darkgan.data.magif.FADE_OUT_SAMPLES`)
before its MAG-IF is taken, and synthesis (:func:`darkgan.data.magif.magif_to_note`) applies the
same fade to generated notes, whose overlapping frames cannot make it through their phases. A
generator also learns the fade's mark on the magnitudes of its last frames, so the two may add
up. Printed per checkpoint, for ``--n`` notes conditioned on validation notes of its attribute
bank (z from ``--seed``) and as many training crops (:func:`darkgan.evaluation.data.real_waves`):

1. **the last frames of the MAG-IF** (before any fade of synthesis): the energy above 5 kHz and
   below 1 kHz of each of the last 6 STFT frames, dB re the mean of frames 16-28 (0.5-0.9 s),
   median over notes: where the generator's notes end darker than the data's;
2. **the tail measures under each of ``--fades``** (raised-cosine fade over the last N samples of
   the inverse; 1024 is the data's fade): :func:`darkgan.evaluation.metrics.tail.tail_burst_db`
   (median and share above +10 dB) and :func:`~darkgan.evaluation.metrics.tail.tail_envelope_db`;
   ``*`` marks the checkpoint's own synthesis (``model.synthesis_fade``; 1,024 before stop 58);
3. **the teacher's rho under each of ``--rho-fades``** (``--rho-notes`` notes, the same draw for
   every fade; :func:`darkgan.evaluation.metrics.control.run_correlation_ci`, as
   ``benchmarks/control.py --stages rho``): the mean over attributes and the Table-2 instruments.
   A generator trained hearing one fade (the training terms hear ``magif_to_note``) is measured
   here under another without retraining: what changing synthesis after training costs.

``--png``: the median energy above 5 kHz over the last 300 ms (50 ms Hann windows, 10 ms hop, dB re
0.5-0.9 s; :func:`darkgan.evaluation.metrics.tail.tail_profile_db`) of the real crops and of every
checkpoint as it synthesises (its own ``model.synthesis_fade``), with the interquartile band.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

#: frames of the MAG-IF profile: the last 6, relative to frames 16-28 (0.5-0.9 s)
LAST_FRAMES, BODY_FRAMES = 6, slice(16, 29)
HF_HZ, LF_HZ = 5000.0, 1000.0


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--checkpoint", action="append", help="repeatable (default: default)")
    ap.add_argument("--n", type=int, default=1100, help="notes per checkpoint for the tail measures")
    ap.add_argument("--fades", default="0,256,512,1024", help="fade lengths (samples) of the tail measures")
    ap.add_argument("--rho-notes", type=int, default=2048, help="0: no rho")
    ap.add_argument("--rho-fades", default="1024,512")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--png", default=None, help="figure of the high band's last 300 ms")
    args = ap.parse_args(argv)
    args.checkpoint = args.checkpoint or ["default"]
    try:
        args.fades = [int(x) for x in args.fades.split(",") if x.strip()]
        args.rho_fades = [int(x) for x in args.rho_fades.split(",") if x.strip()] if args.rho_notes else []
    except ValueError:
        ap.error(f"--fades / --rho-fades: integers (samples) separated by commas, "
                 f"got {args.fades!r} / {args.rho_fades!r}")
    from darkgan.data.constants import N_SAMPLES

    bad = [f for f in args.fades + args.rho_fades if not 0 <= f <= N_SAMPLES]
    if bad or args.n < 2 or args.rho_notes < 0:
        ap.error(f"fades must be in [0, {N_SAMPLES}] samples ({bad}), --n >= 2, --rho-notes >= 0")
    return args


def frame_profile(magif: torch.Tensor) -> dict:
    """``[n, 2, 1024, 32]`` un-normalised MAG-IF -> ``{"hf": [6], "lf": [6]}``: the median over notes
    of the energy above :data:`HF_HZ` and below :data:`LF_HZ` of the last :data:`LAST_FRAMES`
    frames, dB re the mean power of :data:`BODY_FRAMES` (:func:`darkgan.data.magif.frame_energy_db`).

    Raises:
        ValueError: no bin in a band (a MAG-IF of too few bins).
    """
    from darkgan.data.magif import frame_energy_db

    logmag = magif[:, 0].double()
    out = {}
    for name, lo, hi in (("hf", HF_HZ, None), ("lf", 20.0, LF_HZ)):
        e = frame_energy_db(logmag, lo, hi).double()  # [n, 32] dB
        body = 10 * torch.log10((10 ** (e[:, BODY_FRAMES] / 10)).mean(1, keepdim=True))
        out[name] = np.median((e - body)[:, -LAST_FRAMES:].numpy(), axis=0).round(1).tolist()
    return out


def faded(magif: torch.Tensor, n: int) -> np.ndarray:
    """The notes of ``magif [B, 2, 1024, 32]`` (un-normalised) as synthesis makes them, ``[B, 16000]``
    float32 at 16 kHz, with a raised-cosine fade over the last ``n`` samples (0: none) in place of the
    data's (``n = FADE_OUT_SAMPLES``, 1,024 samples = 64 ms, is :func:`magif_to_note`)."""
    from darkgan.data.magif import fade_out, magif_to_wave, without_infrasound

    with torch.inference_mode():
        return fade_out(magif_to_wave(without_infrasound(magif.float())), n).numpy()


def tail_measures(waves: np.ndarray) -> dict:
    """Median burst (dB), share above +10 dB, median last-10-ms envelope (dB) of ``waves [n, 16000]``
    (:func:`~darkgan.evaluation.metrics.tail.tail_burst_db`,
    :func:`~darkgan.evaluation.metrics.tail.tail_envelope_db`).

    Raises:
        ValueError: not ``[n, N]`` or notes shorter than 0.95 s.
    """
    from darkgan.evaluation.metrics.tail import tail_burst_db, tail_envelope_db

    b = tail_burst_db(waves)
    return {"burst_median_db": round(float(np.median(b)), 2), "burst_share_above_10db": round(float((b > 10).mean()), 3),
            "envelope_median_db": round(float(np.median(tail_envelope_db(waves))), 2)}


def fade_generator(model, n: int):
    """``generate(pitch, attrs, seed)`` as :func:`darkgan.evaluation.taggers.generator_fn` (z from
    ``seed``, the peak limiter), with a fade over the last ``n`` samples in place of the data's."""
    from darkgan.generation.synthesis import limit_peaks

    def generate(pitch, attrs, seed):
        z = np.random.default_rng(seed).standard_normal((len(pitch), model.latent_dim)).astype(np.float32)
        return limit_peaks(torch.from_numpy(faded(model.generate_magif(z, pitch, attrs), n)))[0].numpy()

    return generate


def measure(args, name: str) -> dict:
    """Section 1-3 of the docstring for checkpoint ``name``."""
    from darkgan import DarkGAN
    from darkgan.evaluation.metrics import control as C
    from darkgan.evaluation.taggers import TABLE2_INSTRUMENTS, vocabulary_predictor

    model = DarkGAN.load(name, data=args.data)
    if model.bank is None:
        raise SystemExit(f"tail_fade.py: {name} has no attribute bank; run `darkgan generate --checkpoint {name} "
                         f"--build-bank --data DIR`")
    T, bank = model.temperature, model.bank
    rng = np.random.default_rng(args.seed)
    rows = rng.integers(0, len(bank), args.n)
    z = rng.standard_normal((args.n, model.latent_dim)).astype(np.float32)
    magif = model.generate_magif(z, bank.pitch[rows], bank.alpha(rows, T))
    own = int(model.generator.cfg.synthesis_fade)
    out = {"frames": frame_profile(magif), "fades": {str(f): tail_measures(faded(magif, f)) for f in args.fades},
           "rho": {}, "synthesis_fade": own, "profile": profile(faded(magif, own))}
    teacher = {"teacher": vocabulary_predictor(model.teacher, model.config.class_indices)}
    rows = np.random.default_rng(args.seed).integers(0, len(bank), args.rho_notes)
    for f in args.rho_fades:
        r = C.run_correlation_ci(fade_generator(model, f), teacher, bank.pitch[rows], bank.alpha(rows, T),
                                 seed=args.seed, names=model.attributes, n_boot=200)["teacher"]
        rho = [np.nan if v is None else v for v in r["rho"]]
        out["rho"][str(f)] = {"mean": round(r["mean_rho"], 3), "low": round(r["mean_rho_low"], 3),
                              "high": round(r["mean_rho_high"], 3),
                              "table2": {t: round(rho[model.attributes.index(t)], 3)
                                         for t in TABLE2_INSTRUMENTS if t in model.attributes}}
    return out


def real_reference(args) -> dict:
    """The measures of ``--n`` training crops of ``--data`` (as :func:`real_waves` rebuilds them)."""
    from darkgan.data.cache import NoteCache
    from darkgan.evaluation.data import real_waves

    cache = NoteCache(args.data)
    train = cache.rows("train")
    rows = np.sort(np.random.default_rng(args.seed + 1).choice(train, min(args.n, len(train)), replace=False))
    waves = real_waves(cache, rows)
    return {"frames": frame_profile(cache.load(rows, normalize=False).float()),
            "fades": {"data": tail_measures(waves)}, "profile": profile(waves)}


def profile(waves: np.ndarray) -> dict:
    """``{"t": [W] s before the end, "q25", "median", "q75": [W] dB}`` of
    :func:`~darkgan.evaluation.metrics.tail.tail_profile_db` over ``waves [n, 16000]``."""
    from darkgan.evaluation.metrics.tail import tail_profile_db

    t, db = tail_profile_db(waves)
    q = np.percentile(db, [25, 50, 75], axis=0).round(2)
    return {"t": t.round(3).tolist(), "q25": q[0].tolist(), "median": q[1].tolist(), "q75": q[2].tolist()}


def plot(out: dict, path: str) -> None:
    """The median high-band profile of every row of ``out`` (interquartile band shaded), to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in out.items():
        p = r["profile"]
        t = 1000 * np.asarray(p["t"])
        fade = f" (fade {r['synthesis_fade']} samples)" if "synthesis_fade" in r else ""
        style = dict(color="black", lw=2.5) if "synthesis_fade" not in r else dict(lw=1.6)
        label = os.path.basename(name.rstrip("/")) if os.sep in name else name
        line, = ax.plot(t, p["median"], label=f"{label}{fade}", **style)
        ax.fill_between(t, p["q25"], p["q75"], color=line.get_color(), alpha=0.12)
    ax.set_xlabel("end of the 50 ms window, ms before the note's end")
    ax.set_ylabel("energy above 5 kHz, dB re 0.5-0.9 s")
    ax.set_title("How the high band of a note dies away (median, interquartile band)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from darkgan.utils.io import atomic_write

    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    print(f"figure: {path}")


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.set_num_threads(args.threads)
    out = {"real training crops": real_reference(args)}
    for name in args.checkpoint:
        out[name] = measure(args, name)
    for name, r in out.items():
        print(f"## {name}")
        print("  last frames, dB re 0.5-0.9 s: >5 kHz", r["frames"]["hf"], " <1 kHz", r["frames"]["lf"])
        own = str(r.get("synthesis_fade", "data"))
        for f, m in r["fades"].items():
            print(f"  fade {f:>5}{'*' if f == own else ' '}: burst median {m['burst_median_db']:6.1f} dB, > +10 dB {m['burst_share_above_10db']:.1%},"
                  f" last 10 ms {m['envelope_median_db']:6.1f} dB")
        for f, m in r.get("rho", {}).items():
            print(f"  fade {f:>5}{'*' if f == own else ' '}: teacher mean rho {m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}]; Table-2 >= 0.35: "
                  f"{sum(v >= 0.35 for v in m['table2'].values())} of {len(m['table2'])}; {m['table2']}")
    if args.json:
        from darkgan.utils.io import write_json

        write_json(args.json, out)
    if args.png:
        plot(out, args.png)


if __name__ == "__main__":
    main()
