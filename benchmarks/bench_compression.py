"""Speed (and, with --data, quality) of the teacher, students, pruned and exported generators.

Usage:
    python benchmarks/bench_compression.py [--out runs/bench] [--json runs/bench/bench.json]
        [--threads 1,2] [--runs 30] [--quick]

With no trained checkpoints at hand this measures the reference case of the facts file: the
``paper`` generator with random weights (speed does not depend on the weights), eagerly and
through the fast path, the students' architectures (random weights), a 50 %-pruned paper
generator, and ONNX exports of student-xs (fp32, int8, fp16). ``darkgan bench`` measures given
checkpoints the same way (and adds FAD / pitch accuracy with ``--data``).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--json")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--max-seconds", type=float, default=30.0)
    ap.add_argument("--batch-runs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="paper eager/fast + student-s/xs fast only")
    args = ap.parse_args()

    from darkgan.compression.bench import bench
    from darkgan.compression.export import export
    from darkgan.compression.presets import STUDENT_PRESETS
    from darkgan.compression.prune import prune_generator
    from darkgan.compression.synthetic import random_checkpoint
    from darkgan.models.checkpoint import load_generator, save_checkpoint

    out = Path(args.out)
    paper = random_checkpoint(out / "paper-random", "paper", 128, critic=False)
    cks = [str(paper)]
    students = ["student-s", "student-xs"] if args.quick else ["student-m", "student-s", "student-xs"]
    for name in students:
        ch = STUDENT_PRESETS[name][1]
        cks.append(str(random_checkpoint(out / f"{name}-random", "paper", 128, critic=False,
                                         overrides=[f"model.channels={list(ch['channels'])}",
                                                    f"model.convs_per_block={ch['convs_per_block']}"])))
    onnx = []
    if not args.quick:
        try:
            import torch_pruning  # noqa: F401
        except ImportError:
            print("torch_pruning not installed: no pruned row")
        else:
            import dataclasses

            g, cfg = load_generator(paper)
            pruned = prune_generator(g, 0.5, "l2")
            pcfg = dataclasses.replace(cfg, config=dataclasses.replace(cfg.config, model=pruned.cfg, preset="pruned-0.5"),
                                       path=None)
            pcfg.extra = {"pruned": 0.5}
            cks.append(str(save_checkpoint(out / "paper-pruned-0.5", pruned, pcfg)))
        for q in (None, "int8", "fp16"):
            f = out / f"student-xs{'-' + q if q else ''}.onnx"
            export(cks[len(students)], f, "onnx", q, force=True)
            onnx.append(str(f))
    threads = tuple(int(t) for t in args.threads.split(","))
    bench(cks, onnx, [], json_out=args.json or str(out / "bench.json"), eager=True, threads=threads,
          runs=args.runs, max_seconds=args.max_seconds, batch_runs=args.batch_runs)


if __name__ == "__main__":
    main()
