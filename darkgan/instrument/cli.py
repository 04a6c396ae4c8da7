"""``darkgan export-instrument`` and ``darkgan render``: sample instruments and MIDI rendering.

::

    darkgan export-instrument [--checkpoint P] [--attr "Brass instrument=0.9" ...] [--raw] [--like FILE.wav]
                              [--velocities 5] [--candidates 24] [--format sfz|sf2|both] [--name NAME]
                              [--seed 0] [--preset default|fixed-z|one-shot] [--set key=value] --out DIR [--overwrite]
    darkgan render SONG.mid [--checkpoint P] [--attr ...] [--like FILE.wav] [--program-attr "0:NAME=VALUE"]
                   [--out-of-range octave|skip|error] [--ignore-pedal] [--sample-rate HZ] [--seed 0] [--set key=value]
                   --out SONG.wav [--overwrite]

Thin wrappers over :func:`darkgan.instrument.export.build_instrument`,
:func:`darkgan.instrument.save.save_instrument` and :func:`darkgan.instrument.midi.render_midi`.
Torch is imported inside the command functions.
"""
from __future__ import annotations

import argparse
import sys


def _common(p) -> None:
    p.add_argument("--checkpoint", default=None, help="checkpoint/run folder, or default | student")
    p.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE",
                   help='describe the instrument, e.g. --attr "Brass instrument=0.9" (user scale; repeatable)')
    p.add_argument("--raw", action="store_true", help="--attr values are raw teacher probabilities")
    p.add_argument("--like", default=None, metavar="FILE|NOTE_STR", help="take the timbre of this audio file")
    p.add_argument("--data", default=None, metavar="DIR", help="labelled dataset (for --like NOTE_STR)")
    p.add_argument("--seed", default="0", help="seed of the instrument (default: 0)")
    p.add_argument("--preset", default="default", help="instrument preset: default, fixed-z, one-shot")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override an instrument setting, e.g. --set release_s=0.5 (see docs/instrument.md)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def register(sub) -> None:
    """Add ``export-instrument`` and ``render`` to the ``darkgan`` parser."""
    p = sub.add_parser("export-instrument", help="export a described instrument as SFZ and/or SoundFont 2",
                       description="Build one consistent instrument over the checkpoint's pitch range (loops, "
                                   "velocity layers) and write it for any sampler.")
    _common(p)
    p.add_argument("--velocities", default=None, help="velocity layers (brightness; default 5)")
    p.add_argument("--candidates", default=None, help="latent candidates searched for consistency (default 24)")
    p.add_argument("--format", default="both", choices=("sfz", "sf2", "both"))
    p.add_argument("--name", default="darkgan", help="instrument name (letters, digits, - and _)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (written as a whole)")
    p.set_defaults(func=_export)
    r = sub.add_parser("render", help="render a MIDI file with a described instrument (WAV; 16 kHz or --sample-rate)",
                       description="Play a MIDI file polyphonically with DarkGAN instruments (velocity, note "
                                   "lengths with loops and release). Drum notes are skipped.")
    r.add_argument("midi", metavar="SONG.mid")
    _common(r)
    r.add_argument("--program-attr", action="append", default=[], metavar="PROGRAM:NAME=VALUE",
                   help="a separate instrument for a GM program 0..127 (repeatable; the others use --attr)")
    r.add_argument("--out-of-range", default="octave", choices=("octave", "skip", "error"),
                   help="notes outside the instrument's keys: transpose by octaves (default), skip, or error")
    r.add_argument("--ignore-pedal", action="store_true",
                   help="ignore the sustain pedal (CC 64); by default it holds notes as a player does")
    r.add_argument("--sample-rate", default=None, metavar="HZ",
                   help="output rate, e.g. 44100 or 48000 (resampled with soxr; default: the model's 16000)")
    r.add_argument("--out", required=True, metavar="SONG.wav")
    r.set_defaults(func=_render)


def _config(args, **fields):
    from darkgan.generation.cli import _int
    from darkgan.instrument.config import get_config

    extra = [f"{k}={_int(v, '--' + k)}" for k, v in fields.items() if v is not None]
    return get_config(args.preset, list(args.set) + extra)


def _program_attrs(items: list[str]) -> dict[int, dict[str, float]]:
    from darkgan.errors import DarkGANError
    from darkgan.generation.cli import _int, parse_attr

    out: dict[int, dict[str, float]] = {}
    for item in items:
        prog, sep, attr = item.partition(":")
        if not sep:
            raise DarkGANError(f'--program-attr {item!r}: expected PROGRAM:NAME=VALUE, e.g. "0:Piano=0.9"')
        p = _int(prog, "--program-attr program")
        if not 0 <= p <= 127:
            raise DarkGANError(f"--program-attr {item!r}: program must be 0..127")
        name, value = parse_attr(attr)
        out.setdefault(p, {})[name] = value
    return out


def _run(fn):
    """Call ``fn()`` printing GenerationWarning/RenderWarning as ``darkgan: warning: ...``."""
    import warnings

    from darkgan.generation.conditioning import GenerationWarning
    from darkgan.instrument.midi import RenderWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GenerationWarning)
        warnings.simplefilter("always", RenderWarning)
        try:
            return fn()
        finally:
            for w in caught:
                if issubclass(w.category, (GenerationWarning, RenderWarning)):
                    print(f"darkgan: warning: {w.message}", file=sys.stderr)


def _export(args: argparse.Namespace) -> int:
    from darkgan.generation.cli import _int, parse_attr
    from darkgan.instrument.save import check_out

    cfg = _config(args, velocities=args.velocities, candidates=args.candidates)
    attrs = dict(parse_attr(a) for a in args.attr) or None
    seed = _int(args.seed, "--seed")
    check_out(args.out, args.overwrite)  # before the model loads

    def work():
        from darkgan.generation.api import DarkGAN
        from darkgan.instrument.export import build_instrument
        from darkgan.instrument.save import save_instrument

        model = DarkGAN.load(args.checkpoint, data=args.data)
        inst = build_instrument(model, attrs, args.like, args.data, cfg, seed, "raw" if args.raw else "user",
                                args.name, progress=sys.stderr.isatty())
        files = save_instrument(inst, args.out, args.format, cfg, args.overwrite)
        print(f"wrote {', '.join(str(f) for f in files)}: {len(inst.pitches)} keys x {len(inst.vel_ranges)} "
              f"velocity layers, keys MIDI {inst.playable[0]}..{inst.playable[1]}, candidate {inst.info['chosen']} "
              f"of {cfg.candidates} (neighbour distance {_distance(inst.info):.3f})")
        return 0
    return _run(work)


def _distance(info: dict) -> float:
    """The chosen candidate's neighbouring-key distance: as played when the export measured it."""
    played = info.get("played_consistency_final")
    return info["consistency_final"] if played is None else played


def _render(args: argparse.Namespace) -> int:
    from pathlib import Path

    from darkgan.errors import DarkGANError
    from darkgan.generation.cli import _int, parse_attr

    cfg = _config(args)
    attrs = dict(parse_attr(a) for a in args.attr) or None
    progs = _program_attrs(args.program_attr)
    seed = _int(args.seed, "--seed")
    rate = None if args.sample_rate is None else _int(args.sample_rate, "--sample-rate")
    from darkgan.instrument.midi import OUTPUT_RATES

    if rate is not None and not OUTPUT_RATES[0] <= rate <= OUTPUT_RATES[1]:
        raise DarkGANError(f"--sample-rate {rate}: choose one in {OUTPUT_RATES[0]}..{OUTPUT_RATES[1]} Hz")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise DarkGANError(f"{out}: exists; pass --overwrite to replace it")
    if out.suffix.lower() != ".wav":
        raise DarkGANError(f"{out}: the output must be a .wav file")

    def work():
        from darkgan.generation.api import DarkGAN
        from darkgan.generation.cli import write_wav
        from darkgan.instrument.midi import render_midi

        model = DarkGAN.load(args.checkpoint, data=args.data)
        audio, rep = render_midi(args.midi, model, attrs, args.like, args.data, progs, cfg, seed,
                                 "raw" if args.raw else "user", args.out_of_range, progress=sys.stderr.isatty(),
                                 sustain_pedal=not args.ignore_pedal, sample_rate=rate)
        write_wav(out, audio, rep["sample_rate"])
        print(f"wrote {out}: {rep['seconds']:.1f} s, {rep['notes']} notes ({rep['transposed']} transposed, "
              f"{rep['skipped']} skipped, {rep['sustained']} held by the pedal, "
              f"{rep['drum_notes_skipped']} drum notes skipped)")
        return 0
    return _run(work)
