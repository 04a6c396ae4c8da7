"""``darkgan timbre-space train|map|encode|path|synth``: a perceptually regularised timbre space
(Esling et al. 2018). A thin layer over :mod:`darkgan.timbre.train`, :mod:`darkgan.timbre.space`
and :mod:`darkgan.timbre.explore`; see docs/timbre.md."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

SPACE_HELP = "timbre space folder (default: the shipped one, darkgan/assets/timbre-default)"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``timbre-space`` command group to the ``darkgan`` parser."""
    p = sub.add_parser("timbre-space", help="perceptual timbre space (VAE): train, map, encode, path, synth",
                       description="A VAE timbre space whose instrument distances follow listeners' "
                                   "dissimilarity ratings (Esling et al., DAFx 2018). See docs/timbre.md.")
    s = p.add_subparsers(dest="timbre_command", metavar="<timbre command>")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    t = s.add_parser("train", help="render the rated instruments (if needed) and train a space")
    t.add_argument("--data", type=Path, required=True, metavar="DIR", help="data folder (rendered on first use)")
    t.add_argument("--out", type=Path, required=True, metavar="DIR", help="space folder to write")
    t.add_argument("--preset", default="default", help="config preset: default or tiny")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. model.front_end=stft, train.reg_weight=0 (repeatable)")
    t.add_argument("--ratings", type=Path, default=None, help="ratings JSON (default: the shipped reference ratings)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_train)

    m = s.add_parser("map", help="2-D or 3-D map PNG of the instruments and any audio files projected into it")
    m.add_argument("files", nargs="*", type=Path, metavar="FILE.wav")
    m.add_argument("--dims", type=int, choices=(2, 3), default=2,
                   help="principal axes drawn: 2 (one plane) or 3 (three projections and a 3-D view)")
    m.add_argument("--space", default=None, help=SPACE_HELP)
    m.add_argument("--out", type=Path, required=True, metavar="PNG")
    m.set_defaults(func=_map)

    e = s.add_parser("encode", help="latent positions of audio files")
    e.add_argument("files", nargs="+", type=Path, metavar="FILE.wav")
    e.add_argument("--space", default=None, help=SPACE_HELP)
    e.add_argument("--pitch", type=float, default=None, help="MIDI pitch of every file (default: pYIN estimate)")
    e.add_argument("--json", action="store_true", help='print a JSON list of {"file", "latent"}')
    e.set_defaults(func=_encode)

    a = s.add_parser("path", help="audio along the latent path between two instruments")
    a.add_argument("start")
    a.add_argument("end")
    a.add_argument("--space", default=None, help=SPACE_HELP)
    a.add_argument("--pitch", type=float, default=64.0, help="MIDI pitch (default 64)")
    a.add_argument("--steps", type=int, default=5, help="points on the path, 1 s of audio each (default 5)")
    a.add_argument("--out", type=Path, required=True, metavar="WAV")
    a.set_defaults(func=_path)

    y = s.add_parser("synth", help="synthesise a latent point, an instrument, or a descriptor change")
    src = y.add_mutually_exclusive_group()
    src.add_argument("--instrument", help="this instrument's centroid (with --descriptor: its real note, "
                                          "rendered from FluidR3_GM at velocity 100)")
    src.add_argument("--latent", help="comma-separated latent coordinates")
    src.add_argument("--map-xy", help="x,y on the 2-D map (as drawn by `map`)")
    y.add_argument("--note", type=Path, metavar="FILE.wav",
                   help="a real note (its first second) to move to the point, instead of the nearest "
                        "instruments' notes; with --descriptor: the note whose descriptor to change")
    y.add_argument("--descriptor", choices=("centroid", "flatness", "bandwidth", "rolloff"), default=None,
                   help="with --instrument or --note: change this descriptor by --change, keeping the timbre")
    y.add_argument("--change", type=float, default=0.2, help="relative descriptor change (0.2 = +20%%)")
    y.add_argument("--space", default=None, help=SPACE_HELP)
    y.add_argument("--pitch", type=float, default=None,
                   help="MIDI pitch (default 64; with --note: its pYIN estimate)")
    y.add_argument("--out", type=Path, required=True, metavar="WAV")
    y.set_defaults(func=_synth)


def _space(args):
    from darkgan.timbre.space import TimbreSpace

    return TimbreSpace.load(args.space)


def _write_wav(path: Path, wave) -> None:
    from darkgan.data.render import write_wav
    from darkgan.data.synth import quantize

    write_wav(path, quantize(wave))


def _train(args) -> int:
    from darkgan.timbre.ratings import load_ratings
    from darkgan.timbre.train import get_preset, train_space
    from darkgan.utils.config import apply_overrides, config_to_dict

    cfg = apply_overrides(get_preset(args.preset), args.set)
    print(json.dumps(config_to_dict(cfg)))
    metrics = train_space(args.data, args.out, cfg, load_ratings(args.ratings), progress=not args.no_progress)
    metrics.pop("log", None)
    print(json.dumps(metrics))
    return 0


def _map(args) -> int:
    from darkgan.timbre.explore import map_png

    space = _space(args)
    points = {str(f): space.encode_file(f) for f in args.files}
    coords = map_png(space, args.out, points, args.dims)
    print(json.dumps({"png": str(args.out), "coords": coords}))
    return 0


def _encode(args) -> int:
    space = _space(args)
    rows = [{"file": str(f), "latent": [round(float(v), 6) for v in space.encode_file(f, args.pitch)]}
            for f in args.files]
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(r["file"], " ".join(f"{v:.4f}" for v in r["latent"]))
    return 0


def _path(args) -> int:
    space = _space(args)
    wave, zs = space.path(args.start, args.end, args.pitch, args.steps)
    _write_wav(args.out, wave)
    print(json.dumps({"wav": str(args.out), "latents": zs.round(5).tolist()}))
    return 0


def _synth(args) -> int:
    space = _space(args)
    wave, report = (_descriptor_change if args.descriptor else _point)(space, args)
    _write_wav(args.out, wave)
    print(json.dumps({"wav": str(args.out), **report}))
    return 0


def _user_note(args):
    """``(note [<= 16000], MIDI pitch)`` of ``--note`` (pitch: ``--pitch`` or its pYIN estimate)."""
    from darkgan.timbre.space import check_note, estimate_pitch, read_audio

    note = check_note(read_audio(args.note), str(args.note))
    return note, estimate_pitch(note, str(args.note)) if args.pitch is None else args.pitch


def _point(space, args):
    from darkgan.errors import DarkGANError
    from darkgan.timbre.synthesis import point_synth

    if args.instrument:
        z = space.instrument(args.instrument)
    elif args.latent:
        z = _floats(args.latent, "--latent")
    elif args.map_xy:
        z = space.from_plane(_floats(args.map_xy, "--map-xy", 2))
    else:
        raise DarkGANError("synth needs a point (--instrument, --latent or --map-xy) or --note with --descriptor")
    note, pitch = _user_note(args) if args.note else (None, 64.0 if args.pitch is None else args.pitch)
    return point_synth(space, z, pitch, note)


def _descriptor_change(space, args):
    from darkgan.errors import DarkGANError
    from darkgan.timbre.explore import descriptor_synth
    from darkgan.timbre.synthesis import instrument_note

    if args.latent or args.map_xy or (args.note and args.instrument):
        raise DarkGANError("--descriptor changes one note: give --instrument or --note, not a point")
    if args.note:
        note, pitch = _user_note(args)
    elif args.instrument:
        pitch = 64.0 if args.pitch is None else args.pitch
        note = instrument_note(space, args.instrument, round(pitch))
    else:
        raise DarkGANError("--descriptor needs --instrument or --note (the note whose timbre to keep)")
    wave, report = descriptor_synth(space, note, pitch, args.descriptor, args.change)
    report.pop("unmodified")
    return wave, report


def _floats(text: str, flag: str, n: int | None = None) -> list[float]:
    from darkgan.errors import DarkGANError

    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise DarkGANError(f"{flag} {text!r}: expected comma-separated numbers") from None
    if n is not None and len(vals) != n:
        raise DarkGANError(f"{flag} {text!r}: expected {n} numbers")
    return vals
