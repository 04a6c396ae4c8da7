"""``darkgan generate``: notes from pitch + attributes as 16 kHz WAV files.

::

    darkgan generate [--checkpoint PATH] --pitch 60 [--attr "Tuning fork=0.8" ...]
                     [--like NOTE_STR|FILE.wav] [--data DIR] [--seed S] [-n N] [--plot] --out DIR
    darkgan generate --list-attributes [--checkpoint PATH]
    darkgan generate --build-bank --data DIR [--checkpoint PATH] [--out COPY] [--split valid] [--max-notes 4096]

Attribute values are on the user scale (0 = the data's typical note, 1 = its 99th percentile,
> 1 beyond the data; :mod:`darkgan.generation.scale`); ``--raw`` takes teacher probabilities.

Output: ``DIR/note_<i>_p<pitch>.wav`` (16 kHz mono PCM-16), with ``--plot``
``DIR/note_<i>_p<pitch>.png`` (log-magnitude spectrogram), and ``DIR/generate.json`` (checkpoint,
seed, scale, attributes given, where every note's other attributes came from, output counts).
Notes are generated and written chunk by chunk, so memory stays bounded for any ``-n``. The
folder is written as a whole (:func:`darkgan.generation.outdir.replace_folder`): locked against
a second job, staged beside it, then swapped in, so it never mixes two runs or keeps stale notes;
a bad argument or a failed run leaves it as it was. ``--build-bank`` never writes into a shipped
checkpoint: ``--out DIR`` writes a copy of the checkpoint with its new bank.
Torch is imported inside the command function (``darkgan --help`` stays fast).
"""
from __future__ import annotations

import argparse
import sys

#: Most notes one ``darkgan generate`` call writes.
CLI_MAX_NOTES = 100_000


def register(sub) -> None:
    p = sub.add_parser(
        "generate", help="generate notes from pitch + AudioSet attributes (16 kHz WAV files)",
        description="Generate 1 s notes with a DarkGAN checkpoint (default: the shipped one). Attributes are "
                    "AudioSet display names (case-insensitive); those not given take the values of a random "
                    "validation note, or of --like (a dataset note with --data, or any audio file: labelled "
                    "by the teacher on the fly).")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint or run folder, or a shipped one by name: default (the default) or student "
                        "(the fast distilled student)")
    p.add_argument("--pitch", type=str, nargs="+", default=["60"], metavar="MIDI",
                   help="MIDI pitch(es) within the checkpoint's range; -n notes for each (default: 60)")
    p.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE",
                   help='set an attribute, e.g. --attr "Tuning fork=0.8" (repeatable): 0 = the typical note of the '
                        'data, 1 = as much as its 1 %% most extreme notes, > 1 beyond the data (warns)')
    p.add_argument("--raw", action="store_true",
                   help="--attr values are raw teacher probabilities (the generator's input) instead")
    p.add_argument("--steer", choices=("data", "none"), default="data",
                   help="data (default): the attributes not given move with the given ones as they do in the "
                        "data (docs/generation.md, Steering); none: they keep the drawn note's or --like's values")
    p.add_argument("--like", default=None, metavar="NOTE_STR|FILE",
                   help="take the other attributes from this audio file or dataset note (with --data)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="labelled dataset folder: for --like NOTE_STR, --build-bank, or as attribute bank")
    p.add_argument("--seed", type=str, default=None, help="random seed (default: random; recorded in generate.json)")
    p.add_argument("-n", type=str, default="1", help="notes per pitch (default: 1)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder for the WAV files (replaced as a whole); with --build-bank: where a copy "
                        "of the checkpoint with the new bank goes")
    p.add_argument("--plot", action="store_true", help="also write a spectrogram PNG per note")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default: %(default)s)")
    p.add_argument("--batch-size", type=str, default=None, help="notes per generator call (memory bound)")
    p.add_argument("--list-attributes", action="store_true", help="print the checkpoint's attributes and exit")
    p.add_argument("--build-bank", action="store_true",
                   help="build the checkpoint's attribute bank from --data's validation notes and exit (into "
                        "the checkpoint folder, or into a copy of it with --out; never into a shipped one)")
    p.add_argument("--split", default="valid", help="split for --build-bank (default: %(default)s)")
    p.add_argument("--max-notes", type=str, default="4096", help="notes kept by --build-bank (default: %(default)s)")
    g = p.add_argument_group("SING checkpoints (e.g. --checkpoint sing-default; docs/sing.md)")
    g.add_argument("--instrument", nargs="+", default=None, metavar="NAME", help="instrument name(s), one note each")
    g.add_argument("--velocity", type=str, default="100", help="MIDI velocity (default: %(default)s)")
    g.add_argument("--list-instruments", action="store_true", help="print the checkpoint's instruments, one a line")
    p.set_defaults(func=_generate)


def _int(text, what: str) -> int:
    from darkgan.errors import DarkGANError

    try:
        return int(str(text).strip())
    except ValueError:
        raise DarkGANError(f"{what}: expected an integer, got {text!r}") from None


def parse_attr(item: str) -> tuple[str, float]:
    """``"Tuning fork=0.8"`` -> ``("Tuning fork", 0.8)``. Raises DarkGANError on bad syntax or value."""
    import math

    from darkgan.errors import DarkGANError

    if "=" not in item:
        raise DarkGANError(f'--attr {item!r}: expected NAME=VALUE, e.g. --attr "Tuning fork=0.8"')
    name, text = item.rsplit("=", 1)
    name = name.strip()
    if not name:
        raise DarkGANError(f"--attr {item!r}: empty attribute name")
    try:
        value = float(text)
    except ValueError:
        raise DarkGANError(f"--attr {item!r}: value {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise DarkGANError(f"--attr {item!r}: value must be finite")
    return name, value


def write_wav(path, wave, sr: int = 16000) -> None:
    """Write ``wave [T]`` float in [-1, 1] as mono PCM-16 WAV, atomically."""
    import soundfile as sf

    from darkgan.utils.io import atomic_write

    with atomic_write(path, "wb") as f:
        sf.write(f, wave, sr, subtype="PCM_16", format="WAV")


def write_spectrogram_png(path, wave, title: str = "") -> None:
    """Log-magnitude spectrogram (the MAG-IF magnitude channel, dB) of ``wave [16000]`` as a PNG."""
    import numpy as np
    import torch
    from matplotlib.figure import Figure

    from darkgan.data.magif import HOP, N_SAMPLES, SAMPLE_RATE, wave_to_magif
    from darkgan.utils.io import atomic_write

    x = torch.as_tensor(np.asarray(wave, dtype=np.float32)[:N_SAMPLES])
    if x.shape[0] < N_SAMPLES:
        x = torch.nn.functional.pad(x, (0, N_SAMPLES - x.shape[0]))
    logmag = wave_to_magif(x[None])[0, 0].numpy()
    db = 20 / np.log(10) * logmag
    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.subplots()
    im = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 90, vmax=db.max(),
                   extent=(0, db.shape[1] * HOP / SAMPLE_RATE, 0, SAMPLE_RATE / 2))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="dB")
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")


#: Names of the files ``darkgan generate`` writes into ``--out`` (the folder may hold only these).
OUTPUT_FILES = ("note_*.wav", "note_*.png", "generate.json")


def _parse_args(args: argparse.Namespace) -> tuple[int, list[int], int | None, int | None, dict[str, float]]:
    """``(n, pitches, seed, batch_size, attributes)`` from the command line, validated."""
    from darkgan.errors import DarkGANError

    n = _int(args.n, "-n")
    if n < 1:
        raise DarkGANError(f"-n must be >= 1, got {n}")
    pitches = [_int(p, "--pitch") for p in args.pitch]
    if n * len(pitches) > CLI_MAX_NOTES:
        raise DarkGANError(f"{n * len(pitches)} notes requested; one call writes at most {CLI_MAX_NOTES}")
    seed = None if args.seed is None else _int(args.seed, "--seed")
    if seed is not None and seed < 0:
        raise DarkGANError(f"--seed must be >= 0, got {seed}")
    batch_size = None if args.batch_size is None else _int(args.batch_size, "--batch-size")
    attrs = dict(parse_attr(item) for item in args.attr)
    return n, pitches, seed, batch_size, attrs


def _generate(args: argparse.Namespace) -> int:
    import warnings

    from darkgan.errors import DarkGANError
    from darkgan.generation.outdir import check_target

    from darkgan.sing.checkpoint import is_sing_checkpoint

    if is_sing_checkpoint(args.checkpoint):
        from darkgan.sing.cli import generate as sing_generate

        return sing_generate(args)
    if args.instrument or args.list_instruments:
        raise DarkGANError("--instrument/--list-instruments need a SING checkpoint (e.g. --checkpoint sing-default)")
    if args.build_bank:
        return _build_bank(args)
    n, pitches, seed, batch_size, attrs = _parse_args(args)
    if not args.list_attributes and not args.out:
        raise DarkGANError("--out DIR is required (where the WAV files go)")
    if not args.list_attributes:
        check_target(args.out, OUTPUT_FILES)  # before the model loads; nothing is created here

    from darkgan.generation.api import DarkGAN, GenerationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GenerationWarning)
        try:
            model = DarkGAN.load(args.checkpoint, device=args.device, data=args.data)
            if args.list_attributes:
                try:
                    _list(model)
                except BrokenPipeError:  # `darkgan generate --list-attributes | head`
                    import os

                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
            import numpy as np

            all_p = np.repeat(np.asarray(pitches, dtype=np.int64), n)
            scale = "raw" if args.raw else "user"
            stream = model.iter_generate(all_p, attrs or None, len(all_p), seed, args.like, args.data, batch_size,
                                         scale=scale, steer=args.steer)  # validates every argument before anything is written
            return _write_notes(model, stream, args.out, all_p, args.plot)
        finally:
            for w in caught:
                if issubclass(w.category, GenerationWarning):
                    print(f"darkgan: warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _list(model) -> None:
    lo, hi = model.pitch_range
    print(f"# {model.checkpoint_path}: pitch MIDI {lo}..{hi}, T={model.temperature:g}, "
          f"{len(model.attributes)} attributes, attribute bank: "
          f"{len(model.bank) if model.bank is not None else 'none'} notes")
    for i, name in enumerate(model.attributes):
        print(f"{i:4d}  {name}")


def _write_notes(model, stream, out, all_p, plot: bool) -> int:
    from darkgan.generation.outdir import replace_folder
    from darkgan.utils.io import write_json

    files = []
    from tqdm import tqdm

    with replace_folder(out, OUTPUT_FILES) as stage, \
            tqdm(total=len(all_p), unit="note", disable=len(all_p) < 64 or not sys.stderr.isatty()) as bar:
        for chunk in stream:
            for wave in chunk:
                i = len(files)
                stem = f"note_{i:05d}_p{int(all_p[i]):03d}"
                write_wav(stage / f"{stem}.wav", wave)
                if plot:
                    write_spectrogram_png(stage / f"{stem}.png", wave, f"{stem} (seed {model.last_report['seed']})")
                files.append(f"{stem}.wav")
            bar.update(len(chunk))
        rep = model.last_report
        write_json(stage / "generate.json", {
            "checkpoint": rep["checkpoint"], "seed": rep["seed"], "scale": rep["scale"], "steer": rep["steer"],
            "attributes": rep["attributes"], "like": rep["like"], "stats": rep["stats"],
            "notes": [{"file": f, "pitch": int(p), "attributes_from": s}
                      for f, p, s in zip(files, all_p.tolist(), rep["sources"])],
        })
    st = rep["stats"]
    print(f"wrote {len(files)} notes to {out} (seed {rep['seed']}; peak-normalised {st['peak_normalised']}, "
          f"silent {st['silent']})")
    return 0


def _build_bank(args: argparse.Namespace) -> int:
    from darkgan.errors import DarkGANError
    from darkgan.generation.bank import build_bank, load_bank
    from darkgan.models.checkpoint import read_checkpoint_config

    if not args.data:
        raise DarkGANError("--build-bank needs --data DIR (a labelled dataset with a validation split)")
    max_notes = _int(args.max_notes, "--max-notes")
    if max_notes < 1:
        raise DarkGANError(f"--max-notes must be >= 1, got {max_notes}")
    path = build_bank(args.checkpoint, args.data, split=args.split, max_notes=max_notes, out=args.out)
    cfg = read_checkpoint_config(path.parent)
    bank = load_bank(cfg.path, cfg.attributes)
    print(f"wrote {path} ({len(bank)} notes of split {args.split!r}, "
          f"MIDI {int(bank.pitch.min())}..{int(bank.pitch.max())})")
    return 0
