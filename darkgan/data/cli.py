"""``darkgan data ...``: render note datasets from SoundFonts, inspect them, build caches.

Sub-commands: ``render`` (:func:`darkgan.data.render.render_dataset`), ``info``, and
``prepare`` (registered by :func:`darkgan.data.prepare.add_prepare_parser` when that module
exists).
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from darkgan.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group to the top-level ``darkgan`` parser."""
    p = subparsers.add_parser("data", help="render, inspect and prepare note datasets")
    sub = p.add_subparsers(dest="data_command", metavar="<data command>")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    r = sub.add_parser(
        "render", help="render an NSynth-layout dataset from General MIDI SoundFonts",
        description="Render every melodic preset of the SoundFonts at a grid of pitches and "
                    "velocities (4 s notes, 16 kHz mono) into DIR/examples.json + DIR/audio/. "
                    "An interrupted render resumes when run again with the same settings.")
    r.add_argument("--soundfont", action="append", type=Path, default=None, metavar="SF2",
                   help="SoundFont file (.sf2/.sf3); repeat for several, earlier ones win "
                        "duplicates (default: the installed FluidR3_GM, MuseScore_General, "
                        "TimGM6mb and OPL-3_FM_128M)")
    r.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset folder")
    r.add_argument("--programs", default=None, help="GM programs, e.g. 0,40,56 or 0-31 (default: all pitched)")
    r.add_argument("--banks", default=None, help="banks, e.g. 0 or 0,8 (default: all melodic banks 0-127)")
    r.add_argument("--pitches", default="44-70", help="MIDI pitches (default 44-70)")
    r.add_argument("--velocities", default="25,50,75,100,127", help="MIDI velocities (default 25,50,75,100,127)")
    r.add_argument("--split", choices=("instrument", "random"), default="instrument",
                   help="instrument: 80/10/10 of instruments by family (NSynth); random: 90/10 of notes (paper)")
    r.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    r.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    r.add_argument("--force", action="store_true",
                   help="delete a dataset already in DIR (or an interrupted render with other settings) first")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.set_defaults(func=_render)

    i = sub.add_parser("info", help="summarise a note dataset (ours or the NSynth release)")
    i.add_argument("dir", type=Path, help="dataset folder")
    i.set_defaults(func=_info)

    # ---- hook: `darkgan data prepare` lives in darkgan/data/prepare.py (owned by the lead)
    try:
        prepare = importlib.import_module("darkgan.data.prepare")
    except ModuleNotFoundError as e:
        if e.name != "darkgan.data.prepare":
            raise
    else:
        prepare.add_prepare_parser(sub)


def parse_int_list(text: str | None, what: str, lo: int, hi: int) -> list[int] | None:
    """``"0,40,56"`` / ``"44-70"`` / ``"0-7,40"`` -> sorted unique ints in [lo, hi] (None -> None).

    Raises:
        DataError: malformed text or a value outside [lo, hi].
    """
    if text is None:
        return None
    out: set[int] = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                a, b = int(a), int(b)
                if a > b:
                    raise ValueError
                out.update(range(a, b + 1))
            else:
                out.add(int(part))
    except ValueError:
        raise DataError(f"--{what} {text!r}: expected numbers and ranges like 0,40,56 or 44-70") from None
    if not out:
        raise DataError(f"--{what} {text!r}: empty")
    bad = [v for v in out if not lo <= v <= hi]
    if bad:
        raise DataError(f"--{what} {text!r}: {bad[0]} is outside {lo}-{hi}")
    return sorted(out)


def _render(args) -> int:
    from darkgan.data.render import render_dataset

    if args.jobs < 1:
        raise DataError(f"--jobs {args.jobs}: need at least 1")
    render_dataset(
        args.out, soundfonts=args.soundfont,
        programs=parse_int_list(args.programs, "programs", 0, 127),
        banks=parse_int_list(args.banks, "banks", 0, 127),
        pitches=parse_int_list(args.pitches, "pitches", 0, 127),
        velocities=parse_int_list(args.velocities, "velocities", 1, 127),
        split=args.split, seed=args.seed, jobs=args.jobs, force=args.force,
        progress=not args.no_progress)
    return 0


def dataset_info(root: str | Path) -> dict:
    """Counts of a dataset: notes, instruments, per family/source/pitch/velocity, per split.

    Raises:
        DataError: not a readable dataset folder.
    """
    from darkgan.data.nsynth import NoteDataset

    ds = NoteDataset(root, crop=16000)

    def count(key):
        c: dict = {}
        for r in ds.records:
            c[r[key]] = c.get(r[key], 0) + 1
        return dict(sorted(c.items(), key=lambda kv: (kv[0] is None, kv[0])))

    return {
        "root": str(root), "notes": len(ds), "instruments": len({r["instrument_str"] for r in ds.records}),
        "per_family": count("instrument_family_str"), "per_source": count("instrument_source_str"),
        "per_pitch": count("pitch"), "per_velocity": count("velocity"),
        "splits": {str(k): v for k, v in count("split").items()},
        "instruments_per_split": {
            str(s): len({r["instrument_str"] for r in ds.records if r["split"] == s})
            for s in sorted({r["split"] for r in ds.records}, key=str)},
    }


def _info(args) -> int:
    info = dataset_info(args.dir)
    print(f"{info['root']}: {info['notes']} notes, {info['instruments']} instruments")
    for title, key in (("family", "per_family"), ("source", "per_source"), ("velocity", "per_velocity")):
        print(f"  per {title}: " + ", ".join(f"{k} {v}" for k, v in info[key].items()))
    pitches = info["per_pitch"]
    print(f"  pitches {min(pitches)}-{max(pitches)}: " + ", ".join(f"{k}:{v}" for k, v in pitches.items()))
    print("  splits: " + ", ".join(f"{k} {v} notes / {info['instruments_per_split'][k]} instruments"
                                   for k, v in info["splits"].items()))
    return 0
