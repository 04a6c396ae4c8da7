"""Pitch accuracy of generated and of real validation notes (pYIN, within 50 cents).

    python benchmarks/pitch_accuracy.py [--checkpoint PATH] [--data DIR] [--per-pitch 20]
                                        [--seed 0] [--cents 50] [--json out.json] [--threads 2]

Generated notes (the issue's "Quality, measured"): for every MIDI pitch of the checkpoint's range,
``--per-pitch`` validation attribute vectors of that pitch from the checkpoint's attribute bank
(drawn without replacement when the bank holds enough notes of that pitch, else with
replacement; from all pitches when it holds none), each with its own z ~ N(0, I), generated in
one pass (:meth:`DarkGAN.generate_batch`, limiter off so that clipping is *counted*, not hidden).
Counted: NaN/inf notes, silent notes (RMS < -60 dBFS), notes whose peak exceeds 1.0 (they would be
peak-normalised by ``generate``). Pitch: :func:`darkgan.generation.pitch.pitch_accuracy` (pYIN,
median voiced f0, misses include silent/unvoiced/octave errors).

Real notes (``--data DIR``): up to ``--per-pitch`` validation-split notes per pitch, first second
of ``DIR/audio/<note_str>.wav`` (the training crop), through the same tracker: the ceiling the
tracker itself allows on this data.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def bank_vectors(model, pitch: int, k: int, rng: np.random.Generator) -> np.ndarray:
    pool = model.validation_attributes(pitch)
    if pool is None:
        raise SystemExit("the checkpoint has no attribute bank: build it with `darkgan generate --build-bank --data DIR`")
    if len(pool) == 0:
        pool = model.validation_attributes()
    rows = rng.choice(len(pool), size=k, replace=len(pool) < k)
    return pool[rows]


def real_notes(data: str, lo: int, hi: int, per_pitch: int, rng: np.random.Generator):
    import soundfile as sf

    from darkgan.generation.bank import dataset_split_and_pitch

    split_of, pitch_of = dataset_split_and_pitch(data)
    waves, pitches = [], []
    for p in range(lo, hi + 1):
        names = sorted(n for n, s in split_of.items() if s == "valid" and pitch_of.get(n) == p)
        for n in rng.permutation(names)[:per_pitch]:
            x, sr = sf.read(os.path.join(data, "audio", f"{n}.wav"), dtype="float32", frames=16000, always_2d=True)
            if sr != 16000:
                raise SystemExit(f"{n}.wav: {sr} Hz, expected 16000")
            w = np.zeros(16000, np.float32)
            w[:len(x)] = x.mean(axis=1)
            waves.append(w)
            pitches.append(p)
    return (np.stack(waves) if waves else np.zeros((0, 16000), np.float32)), np.array(pitches, dtype=np.int64)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def per_pitch_table(midi: np.ndarray, hit: np.ndarray) -> dict[int, float]:
    return {int(p): float(hit[midi == p].mean()) for p in np.unique(midi)}


def real_only(args) -> None:
    from darkgan.generation.pitch import pitch_accuracy

    if not args.data:
        raise SystemExit("--real-only needs --data DIR")
    if args.threads:
        torch.set_num_threads(args.threads)
    lo, hi = args.pitches
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    waves, rmidi = real_notes(args.data, lo, hi, args.per_pitch, rng)
    racc, rrep = pitch_accuracy(waves, rmidi, cents=args.cents, return_report=True)
    rs = rrep.summary()
    table = per_pitch_table(rmidi, rrep.hit)
    print(f"# real validation notes of {args.data}, MIDI {lo}..{hi}, up to {args.per_pitch} per pitch, seed {args.seed}")
    print(f"real validation notes: pitch accuracy {100 * racc:.1f} % ({rs['hits']}/{rs['n']}); median |error| "
          f"{_fmt(rs['median_abs_error_cents'])} cents; octave errors {rs['octave_errors']}; no pitch {rs['no_pitch']}; "
          f"silent {rs['silent']}; {time.perf_counter() - t0:.0f} s")
    print("| MIDI | real |")
    print("|---|---|")
    for p in range(lo, hi + 1):
        print(f"| {p} | {100 * table[p]:.0f} % |" if p in table else f"| {p} | - |")
    misses = np.flatnonzero(~rrep.hit)
    if len(misses):
        print("# misses (MIDI: error in cents):", ", ".join(
            f"{rmidi[i]}: {'none' if not np.isfinite(rrep.error_cents[i]) else round(rrep.error_cents[i])}"
            for i in misses[:40]))
    if args.json:
        from darkgan.utils.io import write_json

        write_json(args.json, {"data": args.data, "per_pitch": args.per_pitch, "seed": args.seed,
                               "real": {**rs, "per_pitch": table}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="default: the shipped checkpoint")
    ap.add_argument("--data", default=None, help="labelled dataset: real validation notes (and bank if missing)")
    ap.add_argument("--per-pitch", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cents", type=float, default=50.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    ap.add_argument("--real-only", action="store_true",
                    help="only the real validation notes of --data (no checkpoint needed), over --pitches")
    ap.add_argument("--pitches", type=int, nargs=2, default=[44, 70], metavar=("LO", "HI"),
                    help="MIDI range for --real-only (default: 44 70)")
    args = ap.parse_args()
    if args.real_only:
        return real_only(args)
    if args.threads:
        torch.set_num_threads(args.threads)

    from darkgan.generation.api import DarkGAN
    from darkgan.generation.pitch import pitch_accuracy

    model = DarkGAN.load(args.checkpoint, device=args.device, data=args.data)
    lo, hi = model.pitch_range
    rng = np.random.default_rng(args.seed)
    midi = np.repeat(np.arange(lo, hi + 1), args.per_pitch)
    z = rng.standard_normal((len(midi), model.latent_dim)).astype(np.float32)
    alpha = (np.concatenate([bank_vectors(model, p, args.per_pitch, rng) for p in range(lo, hi + 1)])
             if model.has_attributes else None)
    t0 = time.perf_counter()
    raw, stats = model.generate_batch(z, midi, alpha, limit=False, return_stats=True)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc, rep = pitch_accuracy(raw.numpy(), midi, cents=args.cents, return_report=True)
    t_pyin = time.perf_counter() - t0
    s = rep.summary()
    print(f"# checkpoint {model.checkpoint_path} (step {model.config.step}, preset {model.config.config.preset}), "
          f"MIDI {lo}..{hi}, {args.per_pitch} validation vectors per pitch, seed {args.seed}")
    print(f"generated: pitch accuracy {100 * acc:.1f} % within {args.cents:g} cents ({s['hits']}/{s['n']}); "
          f"median |error| {_fmt(s['median_abs_error_cents'])} cents; octave errors {s['octave_errors']}; "
          f"no pitch {s['no_pitch']}; NaN/inf {stats.nonfinite}; silent {stats.silent}; "
          f"peak > 1 (clipped if not limited) {stats.peak_normalised} (max peak {stats.max_peak:.3g}); "
          f"time: generation {t_gen:.0f} s, pYIN {t_pyin:.0f} s")
    gen_table = per_pitch_table(midi, rep.hit)
    out = {"checkpoint": str(model.checkpoint_path), "step": model.config.step, "per_pitch": args.per_pitch,
           "seed": args.seed, "cents": args.cents, "generated": {**s, "nonfinite_outputs": stats.nonfinite,
                                                                   "silent_outputs": stats.silent,
                                                                   "peak_over_1": stats.peak_normalised,
                                                                   "max_peak": stats.max_peak,
                                                                   "per_pitch": gen_table}}
    real_table = {}
    if args.data:
        waves, rmidi = real_notes(args.data, lo, hi, args.per_pitch, rng)
        if len(waves):
            racc, rrep = pitch_accuracy(waves, rmidi, cents=args.cents, return_report=True)
            rs = rrep.summary()
            real_table = per_pitch_table(rmidi, rrep.hit)
            out["real"] = {**rs, "per_pitch": real_table}
            print(f"real validation notes: pitch accuracy {100 * racc:.1f} % ({rs['hits']}/{rs['n']}); "
                  f"median |error| {_fmt(rs['median_abs_error_cents'])} cents; octave errors {rs['octave_errors']}; "
                  f"no pitch {rs['no_pitch']}")
    print("| MIDI | generated | real |")
    print("|---|---|---|")
    for p in range(lo, hi + 1):
        r = f"{100 * real_table[p]:.0f} %" if p in real_table else "-"
        print(f"| {p} | {100 * gen_table[p]:.0f} % | {r} |")
    if args.json:
        from darkgan.utils.io import write_json

        write_json(args.json, out)


if __name__ == "__main__":
    main()
