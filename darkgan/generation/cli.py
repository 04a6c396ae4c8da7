"""``darkgan generate``: notes from pitch + attributes as 16 kHz WAV files.

::

    darkgan generate [--checkpoint PATH] --pitch 60 [--attr "Tuning fork=0.8" ...]
                     [--like NOTE_STR|FILE.wav] [--data DIR] [--seed S] [-n N] [--plot] --out DIR
    darkgan generate --list-attributes [--checkpoint PATH]
    darkgan generate --build-bank --data DIR [--checkpoint PATH] [--split valid] [--max-notes 4096]

Output: ``DIR/note_<i>_p<pitch>.wav`` (16 kHz mono PCM-16, written atomically), with ``--plot``
``DIR/note_<i>_p<pitch>.png`` (log-magnitude spectrogram), and ``DIR/generate.json`` (checkpoint,
seed, pitches, attributes given, where every note's other attributes came from, output counts).
Notes are generated and written chunk by chunk, so memory stays bounded for any ``-n``.
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
                   help='set an attribute, e.g. --attr "Tuning fork=0.8" (repeatable; values outside [0, 1] warn)')
    p.add_argument("--like", default=None, metavar="NOTE_STR|FILE",
                   help="take the other attributes from this audio file or dataset note (with --data)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="labelled dataset folder: for --like NOTE_STR, --build-bank, or as attribute bank")
    p.add_argument("--seed", type=str, default=None, help="random seed (default: random; recorded in generate.json)")
    p.add_argument("-n", type=str, default="1", help="notes per pitch (default: 1)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder for the WAV files")
    p.add_argument("--plot", action="store_true", help="also write a spectrogram PNG per note")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default: %(default)s)")
    p.add_argument("--batch-size", type=str, default=None, help="notes per generator call (memory bound)")
    p.add_argument("--list-attributes", action="store_true", help="print the checkpoint's attributes and exit")
    p.add_argument("--build-bank", action="store_true",
                   help="build the checkpoint's attribute bank from --data's validation notes and exit")
    p.add_argument("--split", default="valid", help="split for --build-bank (default: %(default)s)")
    p.add_argument("--max-notes", type=str, default="4096", help="notes kept by --build-bank (default: %(default)s)")
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


def ensure_writable_dir(path) -> "Path":  # noqa: F821
    """Create folder ``path`` if needed and check that files can be written in it.

    Raises:
        DarkGANError: ``path`` is a file, cannot be created, or is not writable.
    """
    import os
    import tempfile
    from pathlib import Path

    from darkgan.errors import DarkGANError

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise DarkGANError(f"{out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".darkgan-write-test.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DarkGANError(f"{out}: output folder is not writable ({e.strerror or e})") from None
    return out


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


def _generate(args: argparse.Namespace) -> int:
    import warnings

    from darkgan.errors import DarkGANError

    if args.build_bank:
        return _build_bank(args)
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
    attrs: dict[str, float] = {}
    for item in args.attr:
        name, value = parse_attr(item)
        attrs[name] = value
    if not args.list_attributes and not args.out:
        raise DarkGANError("--out DIR is required (where the WAV files go)")
    out = None if args.list_attributes else ensure_writable_dir(args.out)

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
            return _write_notes(model, out, pitches, n, attrs, seed, args, batch_size)
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


def _write_notes(model, out, pitches, n, attrs, seed, args, batch_size) -> int:
    import numpy as np

    from darkgan.utils.io import write_json

    all_p = np.repeat(np.asarray(pitches, dtype=np.int64), n)
    stream = model.iter_generate(all_p, attrs or None, len(all_p), seed, args.like, args.data, batch_size)
    files, i = [], 0
    try:
        from tqdm import tqdm

        bar = tqdm(total=len(all_p), unit="note", disable=len(all_p) < 64 or not sys.stderr.isatty())
    except ImportError:  # pragma: no cover
        bar = None
    for chunk in stream:
        for wave in chunk:
            stem = f"note_{i:05d}_p{int(all_p[i]):03d}"
            write_wav(out / f"{stem}.wav", wave)
            if args.plot:
                write_spectrogram_png(out / f"{stem}.png", wave, f"{stem} (seed {model.last_report['seed']})")
            files.append(f"{stem}.wav")
            i += 1
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    rep = model.last_report
    write_json(out / "generate.json", {
        "checkpoint": rep["checkpoint"], "seed": rep["seed"], "attributes": rep["attributes"], "like": rep["like"],
        "stats": rep["stats"],
        "notes": [{"file": f, "pitch": int(p), "attributes_from": s}
                  for f, p, s in zip(files, all_p.tolist(), rep["sources"])],
    })
    st = rep["stats"]
    print(f"wrote {len(files)} notes to {out} (seed {rep['seed']}; peak-normalised {st['peak_normalised']}, "
          f"silent {st['silent']})")
    return 0


def _build_bank(args: argparse.Namespace) -> int:
    from darkgan.errors import DarkGANError
    from darkgan.generation.bank import build_bank

    if not args.data:
        raise DarkGANError("--build-bank needs --data DIR (a labelled dataset with a validation split)")
    max_notes = _int(args.max_notes, "--max-notes")
    if max_notes < 1:
        raise DarkGANError(f"--max-notes must be >= 1, got {max_notes}")
    path = build_bank(args.checkpoint, args.data, split=args.split, max_notes=max_notes)
    from darkgan.generation.bank import load_bank
    from darkgan.models.checkpoint import read_checkpoint_config

    cfg = read_checkpoint_config(path.parent)
    bank = load_bank(cfg.path, cfg.attributes)
    print(f"wrote {path} ({len(bank)} notes of split {args.split!r}, "
          f"MIDI {int(bank.pitch.min())}..{int(bank.pitch.max())})")
    return 0
