"""``darkgan sing ...``: train SING, run the paper's Table 1, list a checkpoint's instruments.

::

    darkgan sing train --data DIR --out RUN [--preset cpu] [--set train.loss=wav ...]
                       [--n-instruments 32 | --instruments A,B] [--init-ae RUN] [--max-minutes M] [--resume]
    darkgan sing table1 --runs spectral=RUN wav=RUN notime=RUN [--n 200] [--out table1.json]
    darkgan sing export --checkpoint RUN --out darkgan/assets/sing-default

Generation goes through ``darkgan generate --checkpoint <SING checkpoint> --instrument NAME
--pitch 60 --velocity 100`` (the generation command dispatches on the checkpoint's kind).
Torch is imported inside the command functions.
"""
from __future__ import annotations

import argparse


def register(sub) -> None:
    """Add ``sing train|table1|export`` to the ``darkgan`` parser."""
    p = sub.add_parser("sing", help="SING (Défossez et al. 2018): train, Table 1",
                       description="SING, the symbol-to-instrument neural generator: 4 s notes from "
                                   "(instrument, pitch, velocity). See docs/sing.md.")
    ss = p.add_subparsers(dest="sing_command", metavar="<sing command>")
    t = ss.add_parser("train", help="train SING in three stages (autoencoder, LSTM, end to end)")
    t.add_argument("--data", default=None, help="NSynth-layout dataset with whole 4 s notes")
    t.add_argument("--out", required=True, help="run folder (checkpoints, split.json, tb/)")
    t.add_argument("--preset", default="cpu", help="paper, cpu or tiny (default: %(default)s)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set train.loss=wav --set model.time_embedding=false")
    t.add_argument("--n-instruments", type=int, default=32, help="instruments drawn over the families (0 = all)")
    t.add_argument("--instruments", default=None, help="comma-separated instrument_str names instead")
    t.add_argument("--init-ae", default=None, metavar="RUN", help="start from this run's finished autoencoder")
    t.add_argument("--max-minutes", type=float, default=None, help="stop with a checkpoint after this wall time")
    t.add_argument("--max-steps", type=int, default=None, help="stop with a checkpoint after this many steps")
    t.add_argument("--until-step", type=int, default=None, help="stop with a checkpoint at this global step")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.set_defaults(func=_train)
    b = ss.add_parser("table1", help="the paper's Table 1 on the pitch-completion train/test notes")
    b.add_argument("--runs", nargs="+", required=True, metavar="NAME=RUN",
                   help="trained runs by row name, e.g. spectral=RUN wav=RUN notime=RUN")
    b.add_argument("--n", type=int, default=200, help="notes per split (default: %(default)s; 0 = all)")
    b.add_argument("--out", default=None, help="write the table as JSON here")
    b.set_defaults(func=_table1)
    e = ss.add_parser("export", help="copy a checkpoint's weights (float16) and config for shipping")
    e.add_argument("--checkpoint", required=True, help="run or checkpoint folder")
    e.add_argument("--out", required=True, help="destination folder (replaced atomically)")
    e.add_argument("--float32", action="store_true", help="keep float32 weights")
    e.set_defaults(func=_export)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _export(args: argparse.Namespace) -> int:
    from darkgan.sing.checkpoint import export

    out = export(args.checkpoint, args.out, half=not args.float32)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.1f} MB)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from darkgan.sing.train import train

    inst = [s.strip() for s in args.instruments.split(",") if s.strip()] if args.instruments else None
    r = train(args.data, args.out, preset=args.preset, overrides=args.set, resume=args.resume,
              n_instruments=args.n_instruments, instruments=inst, init_ae=args.init_ae,
              max_minutes=args.max_minutes, threads=args.threads, max_steps=args.max_steps,
              until_step=args.until_step)
    m = ", ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items())
    print(f"{r['stopped']} at step {r['step']} (stage {r['stage']}): {r['checkpoint']}; {m}")
    return 0


def _table1(args: argparse.Namespace) -> int:
    from darkgan.errors import DarkGANError
    from darkgan.sing.evaluate import format_table1, table1
    from darkgan.utils.io import write_json

    runs = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise DarkGANError(f"--runs {item!r}: expected NAME=RUN")
        runs[name] = path
    rows = table1(runs, n=args.n)
    print(format_table1(rows))
    if args.out:
        write_json(args.out, {"rows": rows})
    return 0


def generate(args: argparse.Namespace) -> int:
    """``darkgan generate`` with a SING checkpoint: one 4 s note per (instrument, pitch) at
    ``--velocity``; ``--list-instruments`` prints the names, one a line. Writes
    ``OUT/note_<i>_p<pitch>.wav`` + ``generate.json`` as the DarkGAN path does (folder replaced
    as a whole, validated before anything is written).

    Raises:
        DarkGANError: DarkGAN-only options, a missing --instrument/--out, or arguments the
            checkpoint does not know (one line; exit 2).
    """
    import sys

    from darkgan.errors import DarkGANError
    from darkgan.generation.cli import OUTPUT_FILES, _int
    from darkgan.generation.outdir import check_target
    from darkgan.sing.api import SingSynth

    if args.attr or args.like or args.raw or args.build_bank or args.list_attributes:
        raise DarkGANError("SING checkpoints take --instrument, --pitch and --velocity (not --attr, --like, --raw, "
                           "--build-bank or --list-attributes)")
    if not args.list_instruments:
        if not args.instrument:
            raise DarkGANError("--instrument NAME is required with a SING checkpoint (--list-instruments lists them)")
        if not args.out:
            raise DarkGANError("--out DIR is required (where the WAV files go)")
        check_target(args.out, OUTPUT_FILES)
    synth = SingSynth.load(args.checkpoint, device=args.device)
    if args.list_instruments:
        try:
            print("\n".join(synth.instruments))
        except BrokenPipeError:
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    pitches = [_int(p, "--pitch") for p in args.pitch]
    velocity = _int(args.velocity, "--velocity")
    notes = [(i, p) for i in args.instrument for p in pitches]
    synth.indices([i for i, _ in notes], [p for _, p in notes], [velocity] * len(notes))  # validate first
    waves = synth.generate_batch([i for i, _ in notes], [p for _, p in notes], [velocity] * len(notes))
    _write(args.out, synth, notes, velocity, waves, args.plot)
    print(f"wrote {len(notes)} notes to {args.out} ({synth.n_samples / synth.sample_rate:g} s each, SING)")
    return 0


def _write(out, synth, notes, velocity: int, waves, plot: bool) -> None:
    from darkgan.generation.cli import OUTPUT_FILES, write_spectrogram_png, write_wav
    from darkgan.generation.outdir import replace_folder
    from darkgan.utils.io import write_json

    files = []
    with replace_folder(out, OUTPUT_FILES) as stage:
        for k, ((inst, p), wave) in enumerate(zip(notes, waves)):
            stem = f"note_{k:05d}_p{p:03d}"
            write_wav(stage / f"{stem}.wav", wave)
            if plot:
                write_spectrogram_png(stage / f"{stem}.png", wave, f"SING {inst} p{p} v{velocity} (first second)")
            files.append({"file": f"{stem}.wav", "instrument": inst, "pitch": p, "velocity": velocity})
        write_json(stage / "generate.json", {"checkpoint": synth.checkpoint_path, "family": "sing", "notes": files})
