"""Commands of the FRAMI family: ``train-tagger`` and ``distill-tagger`` (issue 19).

Thin over :mod:`darkgan.frami.run`; heavy imports inside the command functions.
"""
from __future__ import annotations

import argparse


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="/work/data/default", help="prepared dataset folder (with cache/)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, config.json, results)")
    p.add_argument("--preset", default="small", help="FRAMI preset: small (default) or tiny")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set inversion.steps=100 (repeatable)")
    p.add_argument("--seed", type=int, help="run seed (default: the preset's)")
    p.add_argument("--max-minutes", type=float, help="stop training after this wall time (resume continues)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")


def _config(args):
    from darkgan.frami.config import get_preset
    from darkgan.utils.config import apply_overrides

    cfg = apply_overrides(get_preset(args.preset), list(args.overrides))
    if args.seed is not None:
        cfg.seed = args.seed
    if args.max_minutes is not None:
        cfg.train.max_minutes = args.max_minutes
    return cfg.validate()


def cmd_train(args) -> int:
    """``darkgan train-tagger``: a thin wrapper over :func:`darkgan.frami.run.train_teacher`."""
    from darkgan.frami.run import train_teacher

    res = train_teacher(args.data, args.out, _config(args), resume=args.resume)
    print(f"teacher: {res['epochs']} epochs, done={res['done']}, test acc {res.get('teacher_test_acc', float('nan')):.4f}")
    return 0


def cmd_distill(args) -> int:
    """``darkgan distill-tagger``: a thin wrapper over :func:`darkgan.frami.run.distill_tagger`."""
    from darkgan.frami.run import distill_tagger

    res = distill_tagger(args.teacher, args.data, args.out, args.method, _config(args), resume=args.resume)
    acc = f"student test acc {res['student_test_acc']:.4f}, " if "student_test_acc" in res else ""
    rho = f", mean rho (vocabulary) {res['mean_rho_vocab']:.4f}" if "mean_rho_vocab" in res else ""
    print(f"{args.method}: done={res['done']}, {acc}agreement with teacher {res.get('agreement', float('nan')):.4f}"
          f"{rho}; {args.out}/results.md")
    return 0


def register(sub) -> None:
    """Add ``train-tagger`` and ``distill-tagger`` to the ``darkgan`` parser."""
    p = sub.add_parser("train-tagger", help="train a sound classifier with statistics pooling (FRAMI teacher)")
    _common(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("distill-tagger", help="distil a smaller tagger: data-free (FRAMI, ADI) or data-driven KD")
    p.add_argument("--teacher", required=True,
                   help="teacher run folder (darkgan train-tagger), or the AudioSet teacher: efficientat (mn04, 527 classes)")
    p.add_argument("--method", required=True, choices=["frami", "adi", "kd", "data"],
                   help="frami / adi: data-free on synthesized samples; kd: KD on real notes; data: no teacher")
    _common(p)
    p.set_defaults(func=cmd_distill)
