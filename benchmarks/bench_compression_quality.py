"""Quality of pruned and quantized versions of one trained generator (issue 6, items 3-4).

Usage:
    python benchmarks/bench_compression_quality.py --teacher CKPT --data DIR --out runs/quality
        [--ratios 0.25,0.5,0.75] [--importance l2] [--recovery-steps 500]
        [--recovery-losses output,features] [--quantize fp32,int8,int8-static,fp16] [--n 400] [--seed 0]
        [--variant RATIO:CONVS:STEPS ...] [--threads 1] [--json FILE]

For every pruning ratio it runs ``darkgan prune`` twice (no recovery; recovery by distillation
from the unpruned model for ``--recovery-steps``); every ``--variant 0.5:1:8000`` adds a model
pruned by that ratio *and* to that many convolutions per block (``darkgan prune
--convs-per-block``), recovered for that many steps; and for every ``--quantize`` entry
``darkgan export --format onnx [--quantize ...]``. Every model, and the unpruned generator, then
synthesises the *same* ``n`` notes (:class:`darkgan.compression.quality.QualityStudy`: validation
conditioning, fixed z): FAD against real validation notes, FAD against the unpruned model's
notes, pitch accuracy (pYIN, 50 cents). Params and MACs per note come from
:func:`darkgan.compression.bench.count_macs` (ONNX rows: the source generator's; the in-graph
inverse adds 134 M MACs). Finished models and each model's measured row (``OUT/rows/``) are
reused; an interrupted recovery distillation resumes, so a rerun goes on where it stopped.
Prints a Markdown table and writes JSON (``--json``, default ``OUT/quality.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _run(cmd: list[str], threads: int) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)


def _pruned_done(folder: Path, steps: int) -> bool:
    """The pruned model exists and had its ``steps`` recovery steps. (``COMPLETE`` alone only says the
    last checkpoint write finished: an interrupted recovery writes one too.)"""
    if not (folder / "COMPLETE").is_file():
        return False
    if steps == 0:
        return True
    try:
        return int(json.loads((folder / "train_state.json").read_text())["step"]) >= steps
    except (OSError, ValueError, KeyError):
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", required=True, help="the trained (unpruned, float32) checkpoint")
    ap.add_argument("--data", required=True, help="prepared, labelled dataset (conditioning + real reference)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ratios", default="0.25,0.5,0.75")
    ap.add_argument("--importance", default="l2")
    ap.add_argument("--recovery-steps", type=int, default=500)
    ap.add_argument("--recovery-losses", default="output,features")
    ap.add_argument("--quantize", default="fp32,int8,int8-static,fp16", help="ONNX exports to measure ('' for none)")
    ap.add_argument("--n", type=int, default=400, help="notes per model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch / ONNX Runtime threads")
    ap.add_argument("--variant", action="append", default=[], metavar="RATIO:CONVS:STEPS",
                    help="also a ratio + depth pruned model (convolutions per block) with its recovery steps")
    ap.add_argument("--json")
    args = ap.parse_args()
    try:
        variants = [(float(r), int(c), int(st)) for r, c, st in (v.split(":") for v in args.variant)]
    except ValueError:
        ap.error(f"--variant {args.variant}: expected RATIO:CONVS:STEPS, e.g. 0.5:1:8000")

    import torch

    torch.set_num_threads(args.threads)
    from darkgan.compression.bench import count_macs
    from darkgan.compression.quality import QualityStudy, onnx_synth, torch_synth
    from darkgan.models.checkpoint import load_generator
    from darkgan.utils.io import write_json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ratios = [float(r) for r in args.ratios.split(",") if r]
    quants = [q for q in args.quantize.split(",") if q]

    models: list[tuple[str, str, Path]] = []  # (row name, kind, path)
    for r in ratios:
        for steps in (0, args.recovery_steps):
            folder = out / f"pruned-{r:g}-{args.importance}-{steps}"
            if not _pruned_done(folder, steps):  # an interrupted recovery resumes (darkgan prune, same --out)
                _run([sys.executable, "-m", "darkgan", "prune", "--checkpoint", args.teacher, "--ratio", str(r),
                      "--importance", args.importance, "--out", str(folder), "--steps", str(steps),
                      "--losses", args.recovery_losses, "--data", args.data] + (["--force"] if steps == 0 else []),
                     args.threads)
            models.append((f"pruned {r:.0%}" + (f" + {steps} recovery steps" if steps else ", no recovery"),
                           "torch", folder))
    for r, convs, steps in variants:
        folder = out / f"pruned-{r:g}-{args.importance}-c{convs}-{steps}"
        if not _pruned_done(folder, steps):
            _run([sys.executable, "-m", "darkgan", "prune", "--checkpoint", args.teacher, "--ratio", str(r),
                  "--importance", args.importance, "--convs-per-block", str(convs), "--out", str(folder),
                  "--steps", str(steps), "--losses", args.recovery_losses, "--data", args.data], args.threads)
        models.append((f"pruned {r:.0%}, {convs} conv/block + {steps} recovery steps", "torch", folder))
    for q in quants:
        path = out / f"teacher-{q}.onnx"
        if not path.exists():
            _run([sys.executable, "-m", "darkgan", "export", "--checkpoint", args.teacher, "--format", "onnx",
                  "--out", str(path)] + ([] if q == "fp32" else ["--quantize", q])
                 + (["--data", args.data] if q == "int8-static" else []), args.threads)
        models.append((f"ONNX {q}", "onnx", path))

    study = QualityStudy(args.teacher, args.data, n=args.n, seed=args.seed)
    t_gen, t_cfg = load_generator(args.teacher)
    k = t_cfg.n_attributes if t_cfg.attributes_enabled else 0
    t_macs, t_params = count_macs(t_gen, k)
    rows = [{"row": "unpruned float32", "path": args.teacher, "params": t_params, "macs": t_macs,
             "channels": list(t_gen.cfg.channels), **study.evaluate(None, is_teacher=True)}]
    for name, kind, path in models:
        done = out / "rows" / f"{path.name}-n{args.n}-seed{args.seed}.json"
        if done.is_file() and done.stat().st_mtime > path.stat().st_mtime:  # measured since the model was written
            rows.append(json.loads(done.read_text()))
            continue
        t0 = time.perf_counter()
        if kind == "torch":
            g, c = load_generator(path)
            macs, params = count_macs(g, k)
            q = study.evaluate(torch_synth(g, c))
            extra = {"channels": list(g.cfg.channels)}
        else:
            macs, params = t_macs, t_params
            q = study.evaluate(onnx_synth(path, args.threads))
            extra = {"file_mb": round(path.stat().st_size / 2**20, 2)}
        rows.append({"row": name, "path": str(path), "params": params, "macs": macs, **extra, **q,
                     "seconds": round(time.perf_counter() - t0, 1)})
        write_json(done, rows[-1])
        print(f"{name}: FAD {q['fad']:.2f}, vs unpruned {q['fad_teacher']:.2f}, pitch {q['pitch_accuracy']:.3f}",
              flush=True)

    print(f"\n| model (teacher {Path(args.teacher).name}, n={args.n}) | channels | params (M) | GMAC/note | FAD | "
          "FAD vs unpruned | pitch acc. |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ch = "-".join(map(str, r["channels"])) if "channels" in r else "(same)"
        print(f"| {r['row']} | {ch} | {r['params'] / 1e6:.2f} | {r['macs'] / 1e9:.3f} | {r['fad']:.2f} | "
              f"{r['fad_teacher']:.2f} | {r['pitch_accuracy']:.3f} |")
    path = Path(args.json) if args.json else out / "quality.json"
    write_json(path, {"teacher": args.teacher, "data": args.data, "n": args.n, "seed": args.seed,
                      "importance": args.importance, "recovery_steps": args.recovery_steps,
                      "recovery_losses": args.recovery_losses, "conditioning": study.inputs.source, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
