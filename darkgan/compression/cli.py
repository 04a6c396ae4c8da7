"""Commands of the compression stage: ``distill``, ``prune``, ``export``, ``bench`` (issue 6).

Heavy imports happen inside the command functions (``darkgan --help`` stays fast). Every
user error is a :class:`darkgan.errors.DarkGANError` (one line, exit status 2).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _add_distill_options(p: argparse.ArgumentParser, steps_default: int) -> None:
    p.add_argument("--losses", default="output,features,adversarial",
                   help="comma-separated subset of output,features,adversarial,f0,consistency,tagger (default: the "
                        "first three; f0: the waveform pitch loss on the student's notes; consistency: the student's "
                        "timbre across neighbouring pitches, judged by the tagger; tagger: the student's notes "
                        "against the teacher's in the tagger's embedding)")
    p.add_argument("--steps", type=int, default=steps_default, help=f"distillation steps (default {steps_default})")
    p.add_argument("--batch-size", type=int, default=16, help="notes per step (default 16)")
    p.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default 5e-4)")
    p.add_argument("--if-weight", type=float, default=1.0,
                   help="weight of the IF term in the output loss (0: log magnitude only; default 1)")
    p.add_argument("--if-weighting", default="magnitude", choices=["magnitude", "uniform"],
                   help="IF error weighted by the teacher's magnitude (default) or plain MSE")
    p.add_argument("--w-features", type=float, default=1.0, help="feature loss weight (default 1)")
    p.add_argument("--w-adversarial", type=float, default=0.01, help="adversarial loss weight (default 0.01)")
    p.add_argument("--w-f0", type=float, default=1.0, help="f0 (waveform pitch) loss weight (default 1)")
    p.add_argument("--w-consistency", type=float, default=1.0,
                   help="consistency (timbre across neighbouring pitches) loss weight (default 1)")
    p.add_argument("--w-tagger", type=float, default=1.0,
                   help="tagger (student against teacher in the tagger's embedding) loss weight (default 1)")
    p.add_argument("--data", help="labelled dataset folder: conditioning from its real (pitch, attribute) "
                                  "distribution (default: the checkpoint's attribute bank)")
    p.add_argument("--conditioning", default="auto", choices=["auto", "dataset", "bank", "uniform"],
                   help="conditioning source (default auto: --data, else the attribute bank)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--device", default="cpu")


def _distill_config(args):
    from darkgan.compression.distill import DistillConfig, parse_losses

    return DistillConfig(losses=parse_losses(args.losses), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         if_weight=args.if_weight, if_weighting=args.if_weighting, w_features=args.w_features,
                         w_adversarial=args.w_adversarial, w_f0=args.w_f0, w_consistency=args.w_consistency,
                         w_tagger=args.w_tagger, seed=args.seed, conditioning=args.conditioning,
                         checkpoint_every=max(1, args.checkpoint_every)).validate()


def cmd_distill(args) -> int:
    from darkgan.compression.presets import list_student_presets

    if args.list_presets:
        print(list_student_presets())
        return 0
    from darkgan.errors import DarkGANError

    if not args.checkpoint or not args.out:
        raise DarkGANError("distill needs --checkpoint TEACHER and --out DIR (or --list-presets)")
    from darkgan.compression.distill import distill
    from darkgan.paths import provenance

    student, extra = None, None
    if args.init:
        from darkgan.models.checkpoint import load_generator

        if args.override:
            raise DarkGANError("--override refines a preset; it cannot change an --init student's architecture")
        student, s_cfg = load_generator(args.init)
        student.preset = s_cfg.config.preset
        extra = {"initialised_from": provenance(s_cfg.path),
                 **{k: v for k, v in (s_cfg.extra or {}).items() if k == "pruning"}}
    res = distill(args.checkpoint, args.out, student_preset=args.student_preset, student=student,
                  student_overrides=args.override or [], config=_distill_config(args), data=args.data,
                  device=args.device, extra=extra)
    last = res.history[-1] if res.history else {}
    print(f"student written to {res.path} (step {res.step}, {res.seconds:.0f} s; last losses: "
          + ", ".join(f"{k}={v:.4g}" for k, v in last.items() if k != "step") + ")")
    return 0


def _interrupted_prune(out: Path, ratio: float, importance: str, convs_per_block: int | None) -> bool:
    """True when ``out`` holds a recovery distillation of the same pruning (it then resumes or extends)."""
    import json

    from darkgan.compression.distill import STATE_KIND

    try:
        state = json.loads((out / "train_state.json").read_text(encoding="utf-8"))
        pruning = json.loads((out / "config.json").read_text(encoding="utf-8"))["extra"]["pruning"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (state.get("kind") == STATE_KIND and pruning.get("ratio") == ratio and pruning.get("importance") == importance
            and pruning.get("convs_per_block") == convs_per_block)


def cmd_prune(args) -> int:
    import dataclasses

    from darkgan.compression.bench import count_macs
    from darkgan.compression.distill import DistillConfig, distill, student_checkpoint_config
    from darkgan.compression.prune import check_ratio, drop_convs, prune_generator
    from darkgan.errors import DarkGANError
    from darkgan.models.checkpoint import load_generator, save_checkpoint
    from darkgan.paths import provenance

    ratio = check_ratio(args.ratio)
    out = Path(args.out)
    resume = False
    if out.exists() and any(out.iterdir()) and not args.force:
        resume = args.steps > 0 and _interrupted_prune(out, ratio, args.importance, args.convs_per_block)
        if not resume:
            raise DarkGANError(f"{out}: exists; choose another --out or pass --force")
    gen, cfg = load_generator(args.checkpoint)
    k = cfg.n_attributes if cfg.attributes_enabled else 0
    pruned = prune_generator(gen, ratio, args.importance)
    preset = f"pruned-{ratio:g}-{args.importance}"
    if args.convs_per_block is not None:
        pruned = drop_convs(pruned, args.convs_per_block)
        preset += f"-c{args.convs_per_block}"
    pruned.preset = preset
    macs0, params0 = count_macs(gen, k)
    macs1, params1 = count_macs(pruned, k)
    info = {"pruning": {"source": provenance(cfg.path), "ratio": ratio, "importance": args.importance,
                        "convs_per_block": args.convs_per_block, "params_before": params0, "params_after": params1,
                        "macs_before": macs0, "macs_after": macs1,
                        "channels_before": list(gen.cfg.channels), "channels_after": list(pruned.cfg.channels),
                        "recovery_steps": args.steps}}
    if out.exists() and args.force and not resume:
        import shutil

        shutil.rmtree(out)
    if args.steps > 0:
        res = distill(args.checkpoint, out, student=pruned, config=_distill_config(args), data=args.data,
                      device=args.device, extra=info)
        path = res.path
    else:
        s_config = dataclasses.replace(cfg.config, model=pruned.cfg, preset=pruned.preset, overrides=[])
        from darkgan.compression.distill import copy_bank

        path = save_checkpoint(out, pruned, student_checkpoint_config(cfg, s_config, 0, info))
        copy_bank(cfg.path, path)
    depth = f", {args.convs_per_block} conv(s) per block" if args.convs_per_block is not None else ""
    print(f"pruned {ratio:.0%} of the channels ({args.importance}){depth}: "
          f"params {params0 / 1e6:.2f} M -> {params1 / 1e6:.2f} M, "
          f"MACs/note {macs0 / 1e9:.3f} G -> {macs1 / 1e9:.3f} G, channels {list(gen.cfg.channels)} -> "
          f"{list(pruned.cfg.channels)}; written to {path}" + (f" after {args.steps} recovery steps" if args.steps else ""))
    return 0


def cmd_export(args) -> int:
    from darkgan.compression.export import export

    path = export(args.checkpoint, args.out, args.format, args.quantize, force=args.force,
                  calibration_data=args.data, calibration_notes=args.calibration_notes)
    print(f"exported {args.format}{' ' + args.quantize if args.quantize else ''} graph "
          f"(z, pitch, attributes) -> wave [B, 16000] to {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


def cmd_bench(args) -> int:
    from darkgan.compression.bench import bench
    from darkgan.errors import DarkGANError

    try:
        threads = tuple(int(t) for t in str(args.threads).split(",") if t.strip())
    except ValueError:
        raise DarkGANError(f"--threads {args.threads!r}: expected e.g. 1,2") from None
    if not threads or min(threads) < 1:
        raise DarkGANError(f"--threads {args.threads!r}: expected positive thread counts, e.g. 1,2")
    if args.json and Path(args.json).is_dir():
        raise DarkGANError(f"{args.json}: is a folder; --json names a file")
    bench(args.checkpoint or [], args.onnx or [], args.torchscript or [], json_out=args.json, eager=not args.no_eager,
          threads=threads, runs=args.runs, batch=args.batch, batch_runs=args.batch_runs, max_seconds=args.max_seconds,
          data=args.data, quality_n=args.quality_n, teacher=args.teacher)
    if args.json:
        print(f"wrote {args.json}")
    return 0


def cmd_graft(args) -> int:
    from darkgan.compression.graft import graft_mapping

    out = graft_mapping(args.student, args.source, args.out)
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    """Add ``distill``, ``prune``, ``graft-mapping``, ``export`` and ``bench`` to the ``darkgan`` parser."""
    _register_distill(subparsers)
    _register_prune(subparsers)
    _register_graft(subparsers)
    _register_export(subparsers)
    _register_bench(subparsers)


def _register_distill(subparsers) -> None:
    p = subparsers.add_parser("distill", help="distil a generator into a smaller student (knowledge distillation)",
                              description="Train a smaller generator to imitate a trained one for the same "
                                          "(z, pitch, attributes); the student is a normal checkpoint.")
    p.add_argument("--checkpoint", help="the teacher checkpoint (or run folder)")
    p.add_argument("--student-preset", default="student-s", help="student preset (see --list-presets)")
    p.add_argument("--init", metavar="STUDENT", default=None,
                   help="start from this student checkpoint (its architecture and weights; a path or a shipped "
                        "name such as 'student') instead of a preset, e.g. to follow a fine-tuned teacher")
    p.add_argument("--list-presets", action="store_true", help="print the student presets and exit")
    p.add_argument("--override", action="append", metavar="model.KEY=VALUE",
                   help="refine the student preset, e.g. model.channels=[64,64,32,32,16,8] (repeatable)")
    p.add_argument("--out", help="the student checkpoint folder (an interrupted run resumes from it)")
    _add_distill_options(p, 2000)
    p.set_defaults(func=cmd_distill)


def _register_prune(subparsers) -> None:
    p = subparsers.add_parser("prune", help="structured channel pruning (Torch-Pruning) + recovery by distillation",
                              description="Remove a share of every layer's channels, then recover by distillation "
                                          "from the unpruned model (--steps 0: no recovery).")
    p.add_argument("--checkpoint", required=True, help="the checkpoint to prune")
    p.add_argument("--ratio", required=True, help="share of channels removed per layer, in (0, 1)")
    p.add_argument("--importance", default="l2", help="channel importance: l1, l2, fpgm or random (default l2)")
    p.add_argument("--out", required=True, help="the pruned checkpoint folder")
    p.add_argument("--convs-per-block", type=int,
                   help="also keep only the first N 3x3 convolutions of every scale block (depth pruning; "
                        "fewer layers is what lowers CPU latency of narrow generators)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    _add_distill_options(p, 500)
    p.set_defaults(func=cmd_prune)


def _register_graft(subparsers) -> None:
    p = subparsers.add_parser("graft-mapping", help="give a distilled student its teacher's attribute mapping",
                              description="Copy the attribute mapping (model.mapping_layers) of --source into a "
                                          "student distilled from it (they share their latent space).")
    p.add_argument("--student", required=True, help="student checkpoint folder (or 'student')")
    p.add_argument("--source", required=True, help="generator checkpoint with a mapping (or 'default')")
    p.add_argument("--out", required=True, help="new checkpoint folder (written atomically)")
    p.set_defaults(func=cmd_graft)


def _register_export(subparsers) -> None:
    p = subparsers.add_parser("export", help="export (z, pitch, attributes) -> waveform as ONNX or TorchScript",
                              description="One graph from the inputs to the 16 kHz waveform, with the inverse STFT "
                                          "written as matrix products (ONNX has no inverse-STFT operator).")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"])
    p.add_argument("--quantize", choices=["int8", "int8-static", "fp16"],
                   help="int8 (ONNX Runtime dynamic), int8-static (calibrated QDQ) or fp16")
    p.add_argument("--data", help="int8-static: labelled dataset whose conditioning calibrates the activation "
                                  "ranges (default: the checkpoint's attribute bank)")
    p.add_argument("--calibration-notes", type=int, default=256, help="int8-static: notes generated to calibrate")
    p.add_argument("--out", required=True, help="the file to write (atomically)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_export)


def _register_bench(subparsers) -> None:
    p = subparsers.add_parser("bench", help="params, MACs, latency, throughput, memory, quality of generators",
                              description="Measure generators end to end (inputs -> waveform) on this machine, "
                                          "with the convolution ceiling measured in the same run.")
    p.add_argument("--checkpoint", action="append", help="a checkpoint to measure (repeatable; default: a "
                                                         "random-weight paper generator)")
    p.add_argument("--onnx", action="append", help="an exported ONNX file (repeatable)")
    p.add_argument("--torchscript", action="append", help="an exported TorchScript file (repeatable)")
    p.add_argument("--json", help="also write the numbers to this JSON file")
    p.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default 1,2)")
    p.add_argument("--runs", type=int, default=30, help="timed single-note runs (median; default 30)")
    p.add_argument("--max-seconds", type=float, default=60.0, help="time cap per latency measurement (>= 5 runs)")
    p.add_argument("--batch", type=int, default=64, help="throughput batch size (default 64)")
    p.add_argument("--batch-runs", type=int, default=2, help="timed batches (default 2)")
    p.add_argument("--no-eager", action="store_true", help="measure checkpoints through the fast path only")
    p.add_argument("--data", help="prepared, labelled dataset: adds FAD vs real notes and pitch accuracy")
    p.add_argument("--teacher", help="teacher checkpoint for fad_teacher (default: the first --checkpoint)")
    p.add_argument("--quality-n", type=int, default=256, help="notes per model for the quality metrics")
    p.set_defaults(func=cmd_bench)
