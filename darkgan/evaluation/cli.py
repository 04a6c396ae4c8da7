"""``darkgan evaluate``, ``darkgan inception train``, ``darkgan sweep``.

::

    darkgan evaluate [--checkpoint PATH ...] --data DIR [--n N] [--protocol auto|cpu|demo|paper]
                     --out REPORT_DIR [--device D] [--seed S] [--metrics fad,kid,...]
                     [--skip yamnet,ood,...] [--dry-run]
    darkgan inception train --data DIR [--epochs E] [--device D] [--force]
    darkgan sweep --data DIR --temperatures 1,1.5,2,3,5 [--preset P] [--out DIR] [--max-minutes M]

Torch is imported inside the command functions (``darkgan --help`` stays fast).
"""
from __future__ import annotations

import argparse

#: Report metrics (darkgan.evaluation.suite), kept here so that `--help` does not import numpy.
METRICS = ("pis", "iis", "kid", "kad", "fad", "fad_inf", "pitch", "tail", "rho", "ood", "increment", "examples",
           "listening")
SKIPPABLE = ("yamnet",) + METRICS


def register(sub) -> None:
    e = sub.add_parser("evaluate", help="evaluate generators: PIS, IIS, KID, FAD, attribute control; HTML report",
                       description="Evaluate one or more checkpoints against a dataset (real train/valid notes as "
                                   "reference rows) and write REPORT_DIR/report.html, report.md and metrics.json. "
                                   "Generations and embeddings are cached in REPORT_DIR/cache.")
    e.add_argument("--checkpoint", action="append", default=[], metavar="PATH",
                   help="checkpoint or run folder; repeatable (default: the shipped checkpoint)")
    e.add_argument("--name", action="append", default=[], help="display name per --checkpoint (repeatable)")
    e.add_argument("--data", required=True, help="dataset folder (cache, labels/, vocabulary.json)")
    e.add_argument("--out", required=True, help="report folder")
    e.add_argument("--n", type=int, default=None, help="generations per model (default: the protocol's)")
    e.add_argument("--protocol", default="auto", choices=("auto", "cpu", "demo", "paper"),
                   help="sample sizes: paper (10k, 51 increments x 1k ...), cpu (2k), demo (a few CPU minutes), "
                        "auto = paper on GPU")
    e.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    e.add_argument("--seed", type=int, default=0, help="seed of z, attribute draws and subsets")
    e.add_argument("--metrics", default=None,
                   help=f"comma-separated report metrics to run (default: the protocol's, else all): {', '.join(METRICS)}")
    e.add_argument("--skip", default="", help=f"comma-separated metrics to leave out, or yamnet: {', '.join(SKIPPABLE)}")
    e.add_argument("--dry-run", action="store_true", help="print the plan and cost estimate only")
    e.add_argument("--no-progress", action="store_true", help="no progress bars")
    e.set_defaults(func=_evaluate)

    i = sub.add_parser("inception", help="the inception classifier used by PIS, IIS and KID")
    isub = i.add_subparsers(dest="inception_command", metavar="<subcommand>")
    t = isub.add_parser("train", help="train the classifier on DIR (pitch, family, attributes); saved to DIR/inception",
                        description="Train our inception classifier (pitch, instrument family, teacher attributes) "
                                    "on the dataset's training split and report validation accuracies.")
    t.add_argument("--data", required=True, help="dataset folder with cache/ (and labels for the attribute head)")
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--max-train", type=int, default=None, help="use at most this many training notes")
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    t.add_argument("--force", action="store_true", help="retrain even if DIR/inception matches the data")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_inception_train)
    i.set_defaults(func=lambda a: (i.print_help(), 2)[1])

    s = sub.add_parser("sweep", help="train the baseline and one DarkGAN per temperature, evaluate all in one report",
                       description="The paper's temperature study: budget estimate, training runs (resumable) "
                                   "under OUT/runs, one report under OUT/report.")
    s.add_argument("--data", required=True, help="dataset folder (cache, labels/, vocabulary.json)")
    s.add_argument("--temperatures", default="1,1.5,2,3,5",
                   help="comma-separated distillation temperatures T, one DarkGAN each (default: %(default)s)")
    s.add_argument("--preset", default="small", help="paper, small or tiny (default: %(default)s)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a training setting for every run (as `darkgan train --set`); repeatable")
    s.add_argument("--out", default="runs/sweep", help="sweep folder: runs/ and report/ (default: %(default)s)")
    s.add_argument("--no-baseline", action="store_true", help="skip the no-attribute baseline")
    s.add_argument("--max-minutes", type=float, default=None, help="wall-time cap per training run")
    s.add_argument("--n", type=int, default=None, help="generations per model in the evaluation")
    s.add_argument("--protocol", default="auto", choices=("auto", "cpu", "demo", "paper"),
                   help="evaluation sample sizes (as `darkgan evaluate`)")
    s.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    s.add_argument("--seed", type=int, default=0, help="training and evaluation seed")
    s.add_argument("--dry-run", action="store_true", help="print the budget only")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=_sweep)


def _names(text: str | None, known: tuple[str, ...], option: str) -> tuple[str, ...]:
    """Comma-separated names, each in ``known``. Raises DarkGANError naming the unknown ones."""
    from darkgan.errors import DarkGANError

    parts = tuple(p.strip() for p in (text or "").split(",") if p.strip())
    bad = [p for p in parts if p not in known]
    if bad:
        raise DarkGANError(f"{option} {','.join(bad)}: unknown; choose from {', '.join(known)}")
    return parts


def _evaluate(args: argparse.Namespace) -> int:
    from darkgan.evaluation.runner import evaluate

    evaluate(args.checkpoint or None, args.data, args.out, n=args.n, protocol=args.protocol, device=args.device,
             seed=args.seed, names=args.name or None, dry_run=args.dry_run, progress=not args.no_progress,
             skip=_names(args.skip, SKIPPABLE, "--skip"), metrics=_names(args.metrics, METRICS, "--metrics") or None)
    return 0


def _inception_train(args: argparse.Namespace) -> int:
    import torch

    from darkgan.evaluation import inception

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.epochs < 1:
        from darkgan.errors import DarkGANError

        raise DarkGANError(f"--epochs must be >= 1, got {args.epochs}")
    kw = dict(epochs=args.epochs, batch_size=args.batch_size, device=device, max_train=args.max_train,
              progress=not args.no_progress)
    if args.force:
        clf = inception.train(args.data, **kw)
    else:
        clf = inception.load_or_train(args.data, **kw)
        v = clf.meta.get("valid")
        if v:
            print(f"inception: {inception.model_dir(args.data)}: validation pitch accuracy {v['pitch_accuracy']:.3f}, "
                  f"family accuracy {v['family_accuracy']:.3f} on {v['n']} notes")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from darkgan.evaluation.sweep import parse_temperatures, sweep

    sweep(args.data, parse_temperatures(args.temperatures), args.out, preset=args.preset, overrides=args.overrides,
          baseline=not args.no_baseline, device=args.device, max_minutes=args.max_minutes, n=args.n,
          protocol=args.protocol, seed=args.seed, dry_run=args.dry_run, progress=not args.no_progress)
    return 0
