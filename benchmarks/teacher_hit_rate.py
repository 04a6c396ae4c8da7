"""Instrument hit rate of the taggers on FluidR3_GM notes: proof that the preprocessing is right.

    python benchmarks/teacher_hit_rate.py [--teachers efficientat-mn04 yamnet] [--pitch-step 1]
                                          [--velocity 100] [--broken]

Renders the first second of every (program, pitch) for the GM programs of
:data:`darkgan.teacher.sanity.PROGRAM_CLASSES` (35 programs whose instrument has its own
AudioSet class) at MIDI pitches 44..70 (``--pitch-step`` thins them) with
:func:`darkgan.data.render.render_note` (reverb/chorus off, the datasets' renderer),
peak-normalises to -1 dBFS and prints per-program and overall top-1 / top-5 hit rates
(own class or its ontology parents, see sanity.py) for each teacher. ``--broken`` adds
deliberately wrong EfficientAT front ends (no 16 -> 32 kHz resampling, magnitude instead of
power, no pre-emphasis, no level normalisation at -31 dBFS) to show the test's power.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teachers", nargs="+", default=["efficientat-mn04", "yamnet"])
    ap.add_argument("--pitch-step", type=int, default=1)
    ap.add_argument("--velocity", type=int, default=100)
    ap.add_argument("--broken", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is safest on a shared machine)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    from darkgan.data.render import render_note
    from darkgan.paths import find_soundfont
    from darkgan.teacher import load_teacher
    from darkgan.teacher.sanity import PITCHES, PROGRAM_CLASSES, hit_rates, render_notes

    sf2 = find_soundfont("FluidR3_GM.sf2")
    if sf2 is None:
        raise SystemExit("FluidR3_GM.sf2 not installed (apt install fluid-soundfont-gm)")
    pitches = PITCHES[:: args.pitch_step]
    t0 = time.time()
    waves, progs = render_notes(lambda p, q: render_note(sf2, p, q, args.velocity)[:16000],
                                list(PROGRAM_CLASSES), pitches)
    print(f"rendered {len(waves)} notes ({len(PROGRAM_CLASSES)} programs x pitches {pitches[0]}..{pitches[-1]} "
          f"step {args.pitch_step}, velocity {args.velocity}) in {time.time() - t0:.0f} s\n")
    results = {}
    for name in args.teachers:
        t = load_teacher(name)
        r = hit_rates(t, waves, progs)
        results[name] = r
        print(f"## {name}\n\n{r.table()}\n")
    if args.broken:
        quiet = waves * np.float32(10 ** (-30 / 20))
        variants = {
            "no 16->32 kHz resampling": dict(resample=False),
            "magnitude instead of power": dict(power=False),
            "no pre-emphasis": dict(preemphasis=False),
        }
        print("| EfficientAT variant | top-1 specific | top-5 |\n|---|---|---|")
        r = results.get("efficientat-mn04") or hit_rates(load_teacher(), waves, progs)
        print(f"| correct | {r.top1_specific:.3f} | {r.top5:.3f} |")
        for label, kw in variants.items():
            r = hit_rates(load_teacher("efficientat-mn04", **kw), waves, progs)
            print(f"| {label} | {r.top1_specific:.3f} | {r.top5:.3f} |")
        r = hit_rates(load_teacher("efficientat-mn04", normalize=False), quiet, progs)
        print(f"| notes at -31 dBFS, no level normalisation | {r.top1_specific:.3f} | {r.top5:.3f} |")
    print("\nsummary: " + ", ".join(f"{k} top-1 {r.top1:.3f} top-1 specific {r.top1_specific:.3f} top-5 {r.top5:.3f}" for k, r in results.items()))


if __name__ == "__main__":
    main()
