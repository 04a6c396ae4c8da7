"""``darkgan train`` and ``darkgan export-generator``.

::

    darkgan train --data DIR --preset small --temperature 2 --out runs/NAME [--resume]
                  [--max-minutes M] [--teacher efficientat-mn04] [--set key=value ...]
                  [--no-attributes] [--device cpu|cuda|auto] [--threads N] [--print-config]
    torchrun --nproc_per_node N -m darkgan train ...      # DistributedDataParallel
    darkgan export-generator runs/NAME --out darkgan/assets/darkgan-default [--half] [--weights default|raw]
                             [--synthesis-fade SAMPLES]
                             [--with-critic]

Torch is imported inside the command functions (``darkgan --help`` stays fast).
"""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train DarkGAN (progressive WGAN-GP with attribute distillation)",
        description="Train DarkGAN on a prepared, teacher-labelled dataset. Checkpoints go to --out "
                    "(periodically, at the end, on Ctrl-C/SIGTERM and when --max-minutes runs out); "
                    "--resume continues exactly where the run stopped. Under torchrun, trains with "
                    "DistributedDataParallel (NCCL on GPU, gloo on CPU).")
    p.add_argument("--data", help="dataset folder (cache, labels/, vocabulary.json)")
    p.add_argument("--out", help="run folder for checkpoints and TensorBoard logs (runs/NAME)")
    p.add_argument("--preset", default=None,
                   help="paper, small, small-control or tiny (default: small; with --resume, the run's own)")
    p.add_argument("--temperature", "-T", type=float, default=None,
                   help="distillation temperature T (default: the preset's, 2)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set train.lr=5e-4 --set train.batch_size=[8,8,8,8,8,8] "
                        "(see --print-config for the keys); repeatable")
    p.add_argument("--teacher", default=None, help="teacher id of the labels (default: the vocabulary's)")
    p.add_argument("--no-attributes", action="store_true",
                   help="train the paper's baseline without attribute conditioning (K = 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint (with --set train.iterations=[...] "
                        "it trains longer; only the schedule, logging and loss-weight settings can change)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop cleanly with a checkpoint after M minutes")
    p.add_argument("--init-generator", default=None, metavar="CHECKPOINT",
                   help="fine-tune: start the generator (and its EMA) from this generator checkpoint folder "
                        "(same architecture and data; a fresh critic: see train.critic_warmup)")
    p.add_argument("--init-critic", default=None, metavar="CHECKPOINT",
                   help="with --init-generator: start the critic from this training checkpoint, run folder "
                        "or export with its critic (e.g. default; same architecture and data; a critic without the projection may start one with "
                        "model.critic_projection=true, its projection at zero) instead of a fresh one")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores / local processes)")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    e = sub.add_parser("export-generator", help="export a checkpoint's generator for shipping (optionally float16)",
                       description="Copy config + generator weights (EMA when trained with EMA) of a checkpoint or "
                                   "run folder into a new inference-only checkpoint folder.")
    e.add_argument("checkpoint", help="checkpoint folder or run folder (its latest checkpoint)")
    e.add_argument("--out", required=True, help="destination folder (replaced atomically)")
    e.add_argument("--half", action="store_true", help="store weights in float16 (half the size)")
    e.add_argument("--weights", choices=("default", "raw"), default="default",
                   help="default: the EMA weights when training kept an EMA; raw: the trained generator's own")
    e.add_argument("--with-critic", action="store_true",
                   help="also copy the critic, so that others can fine-tune from the export with --init-critic")
    e.add_argument("--synthesis-fade", type=int, default=None, metavar="SAMPLES",
                   help="play the export with another end-of-note fade (model.synthesis_fade, 0-2048 samples; "
                        "the taggers hear the change: measure before shipping)")
    e.set_defaults(func=_export)


def _train(args: argparse.Namespace) -> int:
    from darkgan.errors import DarkGANError

    if args.max_minutes is not None and args.max_minutes <= 0:
        raise DarkGANError(f"--max-minutes must be > 0, got {args.max_minutes}")
    if args.temperature is not None and not 0 < args.temperature < float("inf"):
        raise DarkGANError(f"--temperature must be a finite number > 0, got {args.temperature}")
    if args.threads is not None and args.threads < 1:
        raise DarkGANError(f"--threads must be >= 1, got {args.threads}")
    from darkgan.training.loop import resolve_config

    if args.resume and args.out:
        _check_resume_args(args)
    if args.print_config:
        if args.resume and args.out:
            from darkgan.models.checkpoint import read_checkpoint_config

            print(read_checkpoint_config(args.out).config.format())
        else:
            print(resolve_config(args.preset or "small", args.overrides, args.temperature).format())
        return 0
    if not args.data:
        raise DarkGANError("--data DIR is required (a prepared, teacher-labelled dataset)")
    if not args.out:
        raise DarkGANError("--out DIR is required (the run folder, e.g. runs/NAME)")
    from darkgan.training.loop import train

    config = None
    if not args.resume:
        config = resolve_config(args.preset or "small", args.overrides, args.temperature)
    elif args.init_generator:
        raise DarkGANError("--init-generator starts a new run; with --resume the run's own weights are used")
    elif args.temperature is not None:
        raise DarkGANError("--resume continues the run's saved configuration; --temperature cannot change")
    res = train(args.data, args.out, config=config, overrides=args.overrides if args.resume else (),
                teacher=args.teacher, attributes=not args.no_attributes,
                resume=args.resume, max_minutes=args.max_minutes, device=args.device, threads=args.threads,
                progress=not args.no_progress, init_generator=args.init_generator, init_critic=args.init_critic)
    if res.finished or res.reason in ("max-minutes", "stop-at-step"):
        return 0
    return 128 + (res.signal or 2)  # 130 after Ctrl-C (SIGINT), 143 after SIGTERM


def _check_resume_args(args: argparse.Namespace) -> None:
    """``--resume`` continues the run's saved configuration: a ``--preset`` or
    ``--no-attributes`` that contradicts it is an error, not silently ignored."""
    from pathlib import Path

    from darkgan.errors import DarkGANError
    from darkgan.models.checkpoint import read_checkpoint_config
    from darkgan.training.loop import run_has_checkpoint

    if not (Path(args.out).is_dir() and run_has_checkpoint(Path(args.out))):
        return  # train() says there is nothing to resume
    cfg = read_checkpoint_config(args.out)
    if args.preset is not None and args.preset != cfg.config.preset:
        raise DarkGANError(f"--resume: {args.out} is a {cfg.config.preset!r} run, --preset {args.preset} cannot "
                           f"change it (drop --preset, or start a new run in another --out)")
    if args.no_attributes and cfg.attributes_enabled:
        raise DarkGANError(f"--resume: {args.out} was trained with attributes; --no-attributes cannot change it")


def _export(args: argparse.Namespace) -> int:
    from darkgan.models.checkpoint import export_generator

    out = export_generator(args.checkpoint, args.out, half=args.half, weights=args.weights, critic=args.with_critic,
                           synthesis_fade=args.synthesis_fade)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"exported {out} ({size / 1e6:.1f} MB{', float16' if args.half else ''})")
    return 0
