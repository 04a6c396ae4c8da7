"""Instrument export and MIDI rendering: timbre consistency, pitch, speed (issue 21).

For each checkpoint (default, student) and each description (``--attr``, one per instrument):

- **consistency**: the mean teacher-embedding distance (EfficientAT mn04, 384-d; cosine distance
  1 - cos, and Euclidean) between neighbouring keys (MIDI p, p+1; 26 pairs) of
  (a) the exported instrument as played (``voice`` at every key, velocity 127, 1 s: the default
      preset, a sample every 3 keys; and ``every-key``, a sample per key), (b) a plain fixed-z
      instrument (preset ``fixed-z``: one z and one base vector, nothing else), (c) independently
      drawn notes (``generate(pitch=p, attributes, seed=p)``: z and the base vector drawn per key,
      what a user gets note by note), against
  (d) real SoundFont instruments: the rendered notes of ``--data`` (first second, velocity 100),
      every instrument that has all 27 pitches, ``--real`` of them drawn with seed 0;
- **pitch**: pYIN (``darkgan.generation.pitch.estimate_f0``, the project's tracker) on every key
  of (a), (b), (c): the fraction within 50 cents;
- **speed** (student): ``build_instrument`` + ``save_instrument`` of 27 keys x 5 velocity layers
  (SFZ + SF2), model and teacher loaded; and the same through the CLI in a fresh process
  (imports included), the default preset (a sample every 3 keys) and ``every-key``; a generated
  1-minute MIDI file (4 voices, 120 bpm, velocities 40-120) rendered with ``render_midi``
  (instrument building included), for both checkpoints.

Run timing under ``flock /work/train.lock taskset -c 0 env OMP_NUM_THREADS=1``; the load
average is printed.

    python benchmarks/instrument.py --data /work/data/default --out runs/instrument-bench.json

Consistency only, on any checkpoints (shipped names, checkpoint folders, run folders: their
LATEST), no pitch tracking, no timings; prints one table (ours vs real vs independent notes):

    python benchmarks/instrument.py --consistency --checkpoints default,student,runs/control/run [--seeds 3]

``--seeds S`` exports every description with S seeds (one export is one draw: the default's
Flute measured 0.077 with seed 0 and 0.091 with seed 1) and adds a mean row (and its standard
deviation over the instruments) per checkpoint.

Instrument settings for every instrument (``--set optimise_steps=80``), only some instruments
(``--kinds exported``), and checks the export never optimises (``--held-out``: YAMNet distances,
and the keys as FluidSynth plays the exported .sf2: teacher, YAMNet, pYIN; real instruments'
YAMNet distance too):

    python benchmarks/instrument.py --skip-speed --kinds exported --held-out --set optimise_steps=80
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DESCRIPTIONS = ("Brass instrument=0.9", "Flute=0.9")


def distances(emb: np.ndarray) -> tuple[float, float]:
    """Mean neighbouring-key (cosine, Euclidean) distance of ``emb [P, D]``."""
    from darkgan.instrument.export import neighbour_distance

    return float(neighbour_distance(emb).mean()), float(np.linalg.norm(emb[1:] - emb[:-1], axis=1).mean())


def embed(teacher, waves) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return teacher.embedding(torch.as_tensor(np.asarray(waves, dtype=np.float32)), grad=False).cpu().numpy()


def pitch_ok(waves, pitches) -> float:
    from darkgan.generation.pitch import estimate_f0

    f0 = estimate_f0(np.asarray(waves, dtype=np.float32))
    cents = 1200 * np.log2(f0 / (440.0 * 2 ** ((np.asarray(pitches) - 69) / 12)))
    return float(np.mean(np.abs(cents) <= 50))


def fluidsynth_keys(inst, pitches) -> np.ndarray:
    """Every key of ``inst`` as FluidSynth plays its exported .sf2 (velocity 127, 1 s each):
    ``[P, 16000]``, the real player's re-pitching (4th-order interpolation) instead of ours."""
    from darkgan.instrument.midi import MidiNote, fluidsynth_render
    from darkgan.instrument.save import save_instrument

    with tempfile.TemporaryDirectory() as tmp:
        save_instrument(inst, Path(tmp) / "i", "sf2")
        notes = [MidiNote(2.0 * i, 2.0 * i + 1.0, int(p), 127, 0) for i, p in enumerate(pitches)]
        audio = fluidsynth_render(Path(tmp) / "i" / f"{inst.name}.sf2", notes)
    return np.stack([audio[32000 * i:32000 * i + 16000] for i in range(len(pitches))])


def held_out(row: dict, waves, pitches, inst=None) -> None:
    """Add to ``row`` the checks the export never optimises: YAMNet's neighbouring-key cosine
    distance (``yamnet_cosine``) and, for an instrument, the teacher's and YAMNet's on the keys
    as FluidSynth plays them, with their pYIN pitch accuracy (``fluidsynth_*``)."""
    from darkgan.teacher import load_teacher

    yam, teacher = load_teacher("yamnet"), load_teacher()
    row["yamnet_cosine"] = distances(embed(yam, waves))[0]
    if inst is not None:
        fs = fluidsynth_keys(inst, pitches)
        row["fluidsynth_cosine"], row["fluidsynth_yamnet_cosine"] = (distances(embed(teacher, fs))[0],
                                                                     distances(embed(yam, fs))[0])
        row["fluidsynth_pitch_within_50c"] = pitch_ok(fs, pitches)


def zone_split(inst, d: np.ndarray, lo: int) -> dict:
    """Neighbouring-key distances ``d [K - 1]`` of ``inst``'s keys ``lo..`` split into pairs played
    from one sample (``within_zone``: a root and its re-pitched copies) and pairs across a change
    of sample (``boundary``): where an instrument's distance comes from."""
    zone = np.array([inst.key_index(lo + k) for k in range(len(d) + 1)])
    same = zone[1:] == zone[:-1]
    return {"within_zone": float(d[same].mean()) if same.any() else None,
            "boundary": float(d[~same].mean()) if (~same).any() else None}


def real_as_sampled(waves: np.ndarray, pitches, spacing: int = 3):
    """Real notes ``[K, N]`` at MIDI ``pitches`` laid out as the export lays out generated roots: a
    root every ``spacing`` keys (and the highest), loops with a baked crossfade, the keys between
    played re-pitched by our sampler: an :class:`~darkgan.instrument.export.Instrument`. Its played
    distance is what the layout alone costs real notes."""
    from darkgan.instrument.config import InstrumentConfig
    from darkgan.instrument.export import Instrument, key_ranges
    from darkgan.instrument.loops import crossfade_loop, find_loop

    cfg, lo, hi = InstrumentConfig(), int(pitches[0]), int(pitches[-1])
    roots = np.unique(np.r_[np.arange(lo, hi + 1, spacing), hi])
    s = np.stack([waves[r - lo] for r in roots])[None].astype(np.float32)
    loops = np.array([find_loop(w, 440 * 2 ** ((r - 69) / 12), cfg.loop_min_s, cfg.loop_max_s, cfg.loop_end_s,
                                cfg.crossfade_s) for w, r in zip(s[0], roots)])
    xf = int(round(cfg.crossfade_s * 16000))
    for i, (a, b) in enumerate(loops):
        s[:, i] = crossfade_loop(s[:, i], int(a), int(b), min(xf, int(a)))
    return Instrument("real", roots, s, [(1, 127)], key_ranges(roots, 0, lo, hi), loops, cfg.release_s, 16000, {})


def real_instruments(data: Path, n: int, teacher, pitches=range(44, 71)) -> dict:
    """``n`` real SoundFont instruments of ``data`` (seed 0), every key: their mean neighbouring-key
    distances (``cosine``, ``euclidean``) and, laid out as an export (:func:`real_as_sampled`, a
    root every 3 keys), ``as_sampled_cosine`` with its ``within_zone`` / ``boundary`` split."""
    import soundfile as sf

    from darkgan.instrument.export import neighbour_distance, played_keys

    ex = json.load(open(data / "examples.json"))
    by = {}
    for k, r in ex.items():
        if r["velocity"] == 100:
            by.setdefault(r["instrument_str"], {})[r["pitch"]] = k
    full = sorted(i for i, d in by.items() if all(p in d for p in pitches))
    pick = np.random.default_rng(0).choice(full, size=min(n, len(full)), replace=False)
    cos, euc, samp = [], [], []
    for ins in pick:
        waves = np.stack([sf.read(data / "audio" / f"{by[ins][p]}.wav", dtype="float32")[0][:16000] for p in pitches])
        c, e = distances(embed(teacher, waves))
        cos.append(c)
        euc.append(e)
        inst = real_as_sampled(waves, list(pitches))
        d = neighbour_distance(embed(teacher, played_keys(inst, pitches[0], pitches[-1])))
        samp.append({"cosine": float(d.mean()), **zone_split(inst, d, pitches[0])})
    return {"instruments": len(pick), "of": len(full), "cosine": float(np.mean(cos)), "euclidean": float(np.mean(euc)),
            "cosine_per_instrument": cos,
            **{f"as_sampled_{k}": float(np.mean([r[k] for r in samp])) for k in ("cosine", "within_zone", "boundary")}}


#: The instruments measured: (row name, instrument preset); ``independent`` is drawn note by note.
FULL_KINDS = (("exported", "default"), ("every_key", "every-key"), ("fixed_z", "fixed-z"))
CONSISTENCY_KINDS = (("exported", "default"), ("fixed_z", "fixed-z"))


def one_model(name: str, descriptions, kinds=FULL_KINDS, pitch: bool = True, overrides=(),
              extra: bool = False, seeds: int = 1) -> dict:
    """The rows of one checkpoint (``name``: shipped name, checkpoint or run folder): for each
    description and each of ``seeds`` seeds, the instruments of ``kinds`` and independent notes;
    pYIN only with ``pitch``; ``overrides`` (``key=value``) apply to every instrument; ``extra``:
    the :func:`held_out` checks. Description ``d`` (0-based) with repetition ``s`` uses seed
    ``d + s * len(descriptions)`` (with ``seeds=1``: the description's index, as always)."""
    import darkgan
    from darkgan.generation.cli import parse_attr
    from darkgan.instrument.config import get_config
    from darkgan.instrument.export import build_instrument, neighbour_distance, played_keys

    g = darkgan.DarkGAN.load(name)
    pitches = np.arange(g.pitch_range[0], g.pitch_range[1] + 1)
    rows = []
    jobs = [(d + s * len(descriptions), desc) for s in range(seeds) for d, desc in enumerate(descriptions)]
    for seed, desc in jobs:
        attrs = dict([parse_attr(desc)])
        row = {"description": desc, "seed": seed}
        for kind, preset in kinds:
            t = time.process_time()
            inst = build_instrument(g, attrs, config=get_config(preset, overrides), seed=seed, progress=False)
            row[kind] = {"build_cpu_s": time.process_time() - t}
            top = played_keys(inst, int(pitches[0]), int(pitches[-1]))  # the keys as played
            emb = embed(g.teacher, top)
            row[kind].update(zip(("cosine", "euclidean"), distances(emb)))
            row[kind].update(zone_split(inst, neighbour_distance(emb), int(pitches[0])))
            if pitch:
                row[kind]["pitch_within_50c"] = pitch_ok(top, pitches)
            if extra:
                held_out(row[kind], top, pitches, inst)
        ind = np.concatenate([g.generate(int(p), attrs, seed=int(p)) for p in pitches])
        row["independent"] = dict(zip(("cosine", "euclidean"), distances(embed(g.teacher, ind))))
        if pitch:
            row["independent"]["pitch_within_50c"] = pitch_ok(ind, pitches)
        if extra:
            held_out(row["independent"], ind, pitches)
        print(name, json.dumps(row), flush=True)
        rows.append(row)
    names = [k for k, _ in kinds] + ["independent"]
    return {"rows": rows, "pitch_range": [int(pitches[0]), int(pitches[-1])],
            **{f"mean_{k}_{m}": float(np.mean([r[k][m] for r in rows])) for k in names for m in rows[0][k]
               if m != "euclidean" and rows[0][k][m] is not None},
            **{f"sd_{k}_cosine": float(np.std([r[k]["cosine"] for r in rows], ddof=1)) if len(rows) > 1 else None
               for k in names}}


def consistency_table(res: dict, names) -> str:
    """The consistency table: per checkpoint and description, the mean neighbouring-key cosine
    distance of the exported instrument, a plain fixed z and independent notes, and the ratios
    to real instruments (target <= 1.5x) and of independent to exported (target: clearly > 1)."""
    real, rs = res["real"]["cosine"], res["real"]
    head = (f"{'checkpoint':28} {'description':24} {'exported':>8} {'fixed_z':>8} {'independ.':>9} {'real':>6}"
            f" {'exp/real':>8} {'fz/real':>8} {'ind/exp':>8} {'within':>7} {'boundary':>8}")
    lines = [f"neighbouring-key cosine distance, EfficientAT mn04 embedding; real: {rs['instruments']} "
             f"SoundFont instruments of {rs['of']}; real notes laid out as an export (a root every 3 keys, "
             f"re-pitched by our sampler): {rs['as_sampled_cosine']:.3f} ({rs['as_sampled_cosine'] / real:.2f}x; "
             f"within a zone {rs['as_sampled_within_zone']:.3f}, across a boundary {rs['as_sampled_boundary']:.3f})",
             head]
    for name in names:
        rows = res[name]["rows"]
        for r in rows:
            e, i = r["exported"]["cosine"], r["independent"]["cosine"]
            f = r.get("fixed_z", {}).get("cosine", float("nan"))
            lines.append(f"{str(name)[-28:]:28} {r['description'][:24]:24} {e:8.3f} {f:8.3f} {i:9.3f} {real:6.3f}"
                         f" {e / real:7.2f}x {f / real:7.2f}x {i / e:7.2f}x"
                         f" {r['exported']['within_zone']:7.3f} {r['exported']['boundary']:8.3f}")
        if len(rows) > 1:
            r = res[name]
            e, f, i = (r.get(f"mean_{k}_cosine", float("nan")) for k in ("exported", "fixed_z", "independent"))
            label = f"mean of {len(rows)} (sd {r['sd_exported_cosine']:.3f})"
            lines.append(f"{str(name)[-28:]:28} {label:24} {e:8.3f} {f:8.3f} {i:9.3f} {real:6.3f}"
                         f" {e / real:7.2f}x {f / real:7.2f}x {i / e:7.2f}x"
                         f" {r['mean_exported_within_zone']:7.3f} {r['mean_exported_boundary']:8.3f}")
    return "\n".join(lines)


def one_minute_midi(path: Path) -> Path:
    """4 voices at 120 bpm for 60 s: a bass (quarter notes), chords (whole notes, 3 voices held
    2 s) and a melody (eighth notes), velocities 40-120, MIDI 36-84 (some outside 44..70)."""
    import pretty_midi

    rng = np.random.default_rng(0)
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    ins = pretty_midi.Instrument(program=0)
    for beat in range(120):
        ins.notes.append(pretty_midi.Note(int(rng.integers(40, 121)), int(rng.integers(36, 49)), beat * 0.5,
                                          beat * 0.5 + 0.45))
    for bar in range(30):
        root = int(rng.integers(48, 60))
        for iv in (0, 4, 7):
            ins.notes.append(pretty_midi.Note(int(rng.integers(40, 121)), root + iv, bar * 2.0, bar * 2.0 + 1.95))
    for e in range(240):
        ins.notes.append(pretty_midi.Note(int(rng.integers(40, 121)), int(rng.integers(60, 85)), e * 0.25,
                                          e * 0.25 + 0.2))
    pm.instruments.append(ins)
    pm.write(str(path))
    return path


def speed(tmp: Path) -> dict:
    import darkgan
    from darkgan.instrument.config import get_config
    from darkgan.instrument.export import build_instrument
    from darkgan.instrument.midi import render_midi
    from darkgan.instrument.save import save_instrument

    out = {}
    g = darkgan.DarkGAN.load("student")
    cfg = get_config("default", ["velocities=5"])
    build_instrument(g, {"Brass instrument": 0.9}, config=get_config("fixed-z"))  # warm-up: teacher, librosa
    t = time.perf_counter()
    inst = build_instrument(g, {"Brass instrument": 0.9}, config=cfg, seed=0)
    save_instrument(inst, tmp / "speed", "both", cfg)
    out["export_student_27x5_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cfg1 = get_config("every-key", ["velocities=5"])
    save_instrument(build_instrument(g, {"Brass instrument": 0.9}, config=cfg1, seed=0), tmp / "speed1", "both", cfg1)
    out["export_student_every_key_27x5_s"] = time.perf_counter() - t
    cmd = [sys.executable, "-m", "darkgan", "export-instrument", "--checkpoint", "student", "--attr",
           "Brass instrument=0.9", "--velocities", "5", "--out", str(tmp / "speed-cli")]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    out["export_student_27x5_cli_s"] = time.perf_counter() - t
    midi = one_minute_midi(tmp / "minute.mid")
    for name in ("student", "default"):
        m = darkgan.DarkGAN.load(name)
        t = time.perf_counter()
        audio, rep = render_midi(midi, m, {"Brass instrument": 0.9})
        dt = time.perf_counter() - t
        out[f"render_1min_{name}_s"] = dt
        out[f"render_1min_{name}_x_realtime"] = rep["seconds"] / dt
        out["render_notes"], out["render_transposed"] = rep["notes"], rep["transposed"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/work/data/default")
    ap.add_argument("--real", type=int, default=30, help="real instruments drawn (seed 0)")
    ap.add_argument("--checkpoints", default="default,student")
    ap.add_argument("--attr", action="append", default=None, help="descriptions (one instrument each)")
    ap.add_argument("--seeds", type=int, default=1,
                    help="instruments per description (seeds differ); > 1 adds a mean row per checkpoint")
    ap.add_argument("--consistency", action="store_true",
                    help="consistency only (exported, fixed z, independent vs real; no pitch, no timings), as a table")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="instrument setting for every instrument measured, e.g. optimise_steps=80")
    ap.add_argument("--kinds", default=None, help="only these instruments, e.g. exported (default: all)")
    ap.add_argument("--held-out", action="store_true",
                    help="also YAMNet distances and the keys as FluidSynth plays the .sf2 (teacher, YAMNet, pYIN)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true", help="only the timings (run them under flock)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from darkgan.teacher import load_teacher

    res = {"loadavg_start": open("/proc/loadavg").read().split()[:3]}
    names = [] if args.speed_only else args.checkpoints.split(",")
    kinds = CONSISTENCY_KINDS if args.consistency else FULL_KINDS
    kinds = [k for k in kinds if args.kinds is None or k[0] in args.kinds.split(",")]
    res["settings"] = args.set
    for name in names:
        res[name] = one_model(name, args.attr or DESCRIPTIONS, kinds, not args.consistency, args.set, args.held_out,
                              args.seeds)
    if names:
        lo, hi = res[names[0]]["pitch_range"]
        res["real"] = real_instruments(Path(args.data), args.real, load_teacher(), range(lo, hi + 1))
        if args.held_out:
            res["real_yamnet"] = real_instruments(Path(args.data), args.real, load_teacher("yamnet"), range(lo, hi + 1))
        print("real", json.dumps({k: v for k, v in res["real"].items() if k != "cosine_per_instrument"}), flush=True)
    if args.consistency:
        print(consistency_table(res, names))
    if not (args.skip_speed or args.consistency):
        with tempfile.TemporaryDirectory() as tmp:
            res["speed"] = speed(Path(tmp))
        print("speed", json.dumps(res["speed"]), flush=True)
    res["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    summary = {k: v for name in names for k, v in
               ((f"{name}.{m}", res[name][m]) for m in res[name] if m.startswith("mean_"))}
    print(json.dumps({"real_cosine": res.get("real", {}).get("cosine"),
                      "real_yamnet_cosine": res.get("real_yamnet", {}).get("cosine"), **summary, **res.get("speed", {}),
                      "loadavg": [res["loadavg_start"], res["loadavg_end"]]}, indent=1))
    if args.out:
        from darkgan.utils.io import write_json

        write_json(args.out, res)


if __name__ == "__main__":
    main()
