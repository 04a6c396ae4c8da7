"""Render throughput: 4 s notes per second, split into synthesis, analysis and WAV writing.

    python benchmarks/bench_render.py [--soundfont SF2] [--notes 200] [--jobs 1 2]

Per note, as ``darkgan data render`` does it: a fresh fluidsynth synth sharing the parsed font
(``LoadedFont.render_stereo``), mono mix + gain/peak limit, silence check, int16 quantisation and a
WAV write (temporary file + rename, no per-file fsync, as ``render_dataset``). Then the end-to-end ``render_dataset`` rate (probe + render + json)
with 1 and 2 worker processes on a few presets. Font parsing (once per process) is reported apart.
On a shared machine, run it when the machine is quiet.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from darkgan.data import quality
    from darkgan.data.render import _render_float, render_dataset, write_wav
    from darkgan.data.synth import load_font, quantize
    from darkgan.paths import find_soundfont

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--soundfont", type=Path, default=find_soundfont("FluidR3_GM.sf2"))
    ap.add_argument("--notes", type=int, default=200)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    t = time.perf_counter()
    font = load_font(args.soundfont)
    print(f"{font.name}: parsed in {time.perf_counter() - t:.2f} s, {len(font.presets)} presets")
    programs = [p for b, p, _ in font.presets if b == 0 and p < 112][:20]
    grid = [(programs[i % len(programs)], 44 + i % 27, (25, 50, 75, 100, 127)[i % 5]) for i in range(args.notes)]

    t_syn = t_ana = t_wav = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (prog, pitch, vel) in enumerate(grid):
            t0 = time.perf_counter()
            wave, _ = _render_float(font, 0, prog, pitch, vel, 1.0)
            t1 = time.perf_counter()
            quality.rms(wave)
            q = quantize(wave)
            t2 = time.perf_counter()
            write_wav(Path(tmp) / f"{i}.wav", q, fsync=False)  # as render_dataset does
            t3 = time.perf_counter()
            t_syn += t1 - t0
            t_ana += t2 - t1
            t_wav += t3 - t2
    n = len(grid)
    total = t_syn + t_ana + t_wav
    print(f"per note: synthesis {1e3 * t_syn / n:.2f} ms, mix/check/quantise {1e3 * t_ana / n:.2f} ms, "
          f"WAV write {1e3 * t_wav / n:.2f} ms -> {n / total:.0f} notes/s on one core "
          f"({4 * n / total:.0f}x real time)")

    for jobs in args.jobs:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            rep = render_dataset(Path(tmp) / "ds", soundfonts=[args.soundfont], programs=programs[:8], banks=[0],
                                 pitches=range(44, 71), velocities=(25, 50, 75, 100, 127), jobs=jobs,
                                 progress=False, verbose=False)
            dt = time.perf_counter() - t
            c = rep["counts"]
            print(f"render_dataset jobs={jobs}: {c['notes']} notes of {c['instruments']} presets in {dt:.1f} s "
                  f"= {c['notes'] / dt:.0f} notes/s end to end (probe {rep['wall_time_s']['probe']} s, "
                  f"render {rep['wall_time_s']['render']} s)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
