"""Distillation loss ablation, like the DrumGAN compression study's Table 5 (issue 6, item 2).

Usage:
    python benchmarks/bench_compression_ablation.py --teacher CKPT --data DIR --out runs/ablation
        [--student-preset student-s | --init-pruned RATIO:CONVS] [--steps 2000] [--batch-size 16]
        [--n 256] [--seed 0] [--json runs/ablation/ablation.json] [--device cpu]

Trains one student per row with the same preset, steps, seed (same initial weights, same z and
conditioning streams) and the losses: ``output``; ``output,features``;
``output,features,adversarial``; then measures every student and the teacher on the same
``n`` inputs (:class:`darkgan.compression.quality.QualityStudy`): FAD against real validation
notes, FAD against the teacher's notes, pitch accuracy. Runs resume (each student folder is a
distillation run). Prints a Markdown table and writes the numbers as JSON.

``--init-pruned 0.5:1`` starts every row from the same pruned teacher instead of a randomly
initialised preset: l2 channel pruning by the ratio, then only the first CONVS convolutions per
block (:func:`darkgan.compression.prune.prune_generator`, :func:`~darkgan.compression.prune.drop_convs`;
the shipped student's recipe), so the rows compare the losses from a warm start.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROWS = (("output", ("output",)), ("+ features", ("output", "features")),
        ("+ adversarial", ("output", "features", "adversarial")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--data", help="prepared, labelled dataset (conditioning + real reference)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--student-preset", default="student-s")
    ap.add_argument("--init-pruned", metavar="RATIO:CONVS",
                    help="start every row from the teacher pruned by RATIO with CONVS convolutions per block")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--n", type=int, default=256, help="notes per model for FAD / pitch accuracy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--conditioning", default="auto")
    ap.add_argument("--json")
    args = ap.parse_args()

    from darkgan.compression.bench import count_macs
    from darkgan.compression.distill import DistillConfig, distill
    from darkgan.compression.quality import QualityStudy, torch_synth
    from darkgan.models.checkpoint import load_generator
    from darkgan.utils.io import write_json

    out = Path(args.out)
    init, label = None, args.student_preset
    if args.init_pruned:
        import copy

        from darkgan.compression.prune import drop_convs, prune_generator

        try:
            r_text, c_text = args.init_pruned.split(":")
            ratio, convs = float(r_text), int(c_text)
        except ValueError:
            ap.error(f"--init-pruned {args.init_pruned!r}: expected RATIO:CONVS, e.g. 0.5:1")
        init = drop_convs(prune_generator(load_generator(args.teacher)[0], ratio, "l2"), convs)
        label = f"pruned-{ratio:g}-l2-c{convs}"
    results = []
    study = QualityStudy(args.teacher, args.data, n=args.n, seed=args.seed)
    t_gen, t_cfg = load_generator(args.teacher)
    k = t_cfg.n_attributes if t_cfg.attributes_enabled else 0
    macs, params = count_macs(t_gen, k)
    results.append({"row": "teacher", "losses": [], "params": params, "macs": macs, **study.evaluate(None, is_teacher=True)})
    for name, losses in ROWS:
        cfg = DistillConfig(losses=losses, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                            conditioning=args.conditioning)
        folder = out / ("distill-" + "-".join(losses))
        student = None
        if init is not None:
            student = copy.deepcopy(init)
            student.preset = label
        res = distill(args.teacher, folder, student_preset=args.student_preset, student=student, config=cfg,
                      data=args.data, device=args.device)
        g, c = load_generator(folder)
        m, p = count_macs(g, k)
        q = study.evaluate(torch_synth(g, c))
        results.append({"row": name, "losses": list(losses), "params": p, "macs": m, "seconds": round(res.seconds, 1),
                        "final_losses": res.history[-1] if res.history else {}, **q})
    print(f"| losses ({label}, {args.steps} steps) | params (M) | GMAC/note | FAD | FAD vs teacher | pitch acc |")
    print("|---|---|---|---|---|---|")
    for r in results:
        fad = "-" if r.get("fad") is None else f"{r['fad']:.3f}"
        print(f"| {r['row']} | {r['params'] / 1e6:.2f} | {r['macs'] / 1e9:.3f} | {fad} | {r['fad_teacher']:.3f} | "
              f"{r['pitch_accuracy']:.2f} |")
    path = Path(args.json) if args.json else out / "ablation.json"
    write_json(path, {"teacher": args.teacher, "data": args.data,
                      "student_preset": args.student_preset if init is None else None, "init_pruned": args.init_pruned,
                      "steps": args.steps, "n": args.n, "seed": args.seed, "conditioning": study.inputs.source,
                      "rows": results})
    print(f"wrote {path}")
    print(json.dumps({"rows": len(results)}))


if __name__ == "__main__":
    main()
