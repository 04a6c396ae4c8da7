"""Teacher commands: ``darkgan label``, ``darkgan tag``, ``darkgan attributes``.

Heavy imports (torch, the taggers) happen inside the command functions.
"""
from __future__ import annotations

import argparse
import json
import math

TEACHER_CHOICES = ("efficientat-mn04", "panns-cnn14", "yamnet")


def _teacher_args(p: argparse.ArgumentParser, weights: bool = True) -> None:
    p.add_argument("--teacher", default="efficientat-mn04", metavar="NAME",
                   help=f"AudioSet tagger: {', '.join(TEACHER_CHOICES)} (default: %(default)s)")
    if weights:
        p.add_argument("--weights", default=None, metavar="PATH",
                       help="weights file (default: $DARKGAN_MODELS_DIR, user cache, ../shared/models, download)")
        p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default: %(default)s)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``label``, ``tag`` and ``attributes`` to the ``darkgan`` sub-parsers."""
    p = sub.add_parser("label", help="teacher soft labels (logits) for every note of a dataset",
                       description="Run an AudioSet tagger over every note (first 1 s, peak -1 dBFS) of DIR "
                                   "and store raw logits in DIR/labels/<teacher>.npz (+ .json). Resumable.")
    p.add_argument("dir", help="dataset folder (examples.json + audio/)")
    _teacher_args(p)
    p.add_argument("--batch-size", type=int, default=64, help="notes per forward pass (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="relabel even if labels are up to date")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("tag", help="top AudioSet classes of audio files",
                       description="Print the teacher's top classes for each file (any rate; stereo is "
                                   "down-mixed; resampled to 16 kHz; peak-normalised to -1 dBFS).")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, flac, ogg)")
    _teacher_args(p)
    p.add_argument("--top", type=int, default=5, help="classes per file (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON: [{file, top: [{name, index, probability}]}]")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("attributes", help="choose the attribute vocabulary from the teacher labels",
                       description="Rank AudioSet classes by sqrt(p_q x AP) over the training split "
                                   "(DarkGAN Sec. 4.2) and write DIR/vocabulary.json.")
    p.add_argument("dir", help="labelled dataset folder")
    p.add_argument("--teacher", default="efficientat-mn04", metavar="NAME", help="whose labels (default: %(default)s)")
    p.add_argument("--n", type=int, default=128, help="attributes to keep (default: %(default)s)")
    p.add_argument("--quantile", type=float, default=0.9,
                   help="quantile q of the training probabilities (paper: 0.9) (default: %(default)s)")
    p.add_argument("--show", type=int, default=None, metavar="K", help="print only the first K rows")
    p.set_defaults(func=cmd_attributes)


def cmd_label(args) -> int:
    from darkgan.errors import DarkGANError

    if args.threads is not None and args.threads < 1:
        raise DarkGANError(f"--threads must be >= 1, got {args.threads}")
    if args.batch_size < 1:
        raise DarkGANError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from darkgan.teacher.labels import label_dataset

    label_dataset(args.dir, teacher=args.teacher, batch_size=args.batch_size, device=args.device,
                  force=args.force, weights=args.weights)
    return 0


def cmd_tag(args) -> int:
    import numpy as np

    from darkgan.teacher import load_teacher
    from darkgan.teacher.resample import load_audio

    from darkgan.errors import DarkGANError, DataError
    from darkgan.utils.io import json_safe

    if args.top < 1:
        raise DarkGANError(f"--top must be >= 1, got {args.top}")
    t = load_teacher(args.teacher, weights=args.weights, device=args.device)
    results = []
    for f in args.files:
        wave = load_audio(f, sr=16000)
        if wave.shape[0] < 1024:
            wave = np.pad(wave, (0, 1024 - wave.shape[0]))
        top = t.top(wave, k=args.top)[0]
        if not all(math.isfinite(p) for _, _, p in top):
            raise DataError(f"{f}: the teacher's output is not finite (NaN); the audio cannot be tagged")
        results.append({"file": f, "top": [{"name": n, "index": i, "probability": round(p, 6)} for i, n, p in top]})
    if args.json:
        print(json.dumps(json_safe(results), indent=2, ensure_ascii=False, allow_nan=False))
    else:
        for r in results:
            print(r["file"])
            for e in r["top"]:
                print(f"  {e['probability']:6.3f}  {e['name']}  [{e['index']}]")
    return 0


def cmd_attributes(args) -> int:
    from darkgan.teacher.vocabulary import build_vocabulary, format_table

    vocab = build_vocabulary(args.dir, teacher=args.teacher, n=args.n, quantile=args.quantile)
    print(format_table(vocab, args.show))
    print(f"{args.dir}/vocabulary.json: {vocab['n']} attributes ({vocab['teacher']}, q={vocab['quantile']}, "
          f"{vocab['n_train_notes']} training notes, AP from {vocab['ap_source']})")
    return 0
