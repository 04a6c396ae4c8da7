"""Training speed: steps/s of one D+G step at every scale of a preset, and the projected time.

Usage::

    python benchmarks/bench_train.py --preset small --device cpu [--threads 2] [--seconds 8]
    python benchmarks/bench_train.py --preset paper --device cuda        # on a GPU machine
    python benchmarks/bench_train.py --preset small --scales 4,5 \
        --variant paper-recipe: --variant lazy-gp:train.gp_every=4        # settings side by side

Random (normalised) MAG-IF batches of the preset's per-scale batch size, K = 128 attributes and
27 pitches (the paper's setting), the real step functions (:func:`train_step_d`,
:func:`train_step_g`: WGAN-GP with double backward, distillation, pitch, EMA). The data loader
is not included (see ``bench_loader.py``; the trainer prefetches on a background thread). For
each scale the first steps are warm-up; the rest are timed for ``--seconds`` (at least
``--min-steps``). Prints a table and a JSON line with steps/s per scale and the projected total
training time of the preset (sum over scales of iterations / steps/s).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per scale")
    ap.add_argument("--min-steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--scales", default=None, help="comma-separated scales to time (default: all)")
    ap.add_argument("--attributes", type=int, default=128)
    ap.add_argument("--pitches", type=int, default=27)
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[;KEY=VALUE]",
                    help="time these settings one after another in this run (repeatable), e.g. "
                         "'lazy-gp:train.gp_every=4'; a speed-up column compares each with the first")
    ap.add_argument("--channels-last", action="store_true", help="NHWC layout on the CPU too")
    args = ap.parse_args()
    variants = [(v.split(":", 1)[0], [o for o in v.split(":", 1)[1].split(";") if o]) for v in args.variant] or [("", [])]
    results = [run_variant(args, name, extra) for name, extra in variants]
    if len(results) > 1:
        base = {r["scale"]: r["steps_per_s"] for r in results[0]["per_scale"]}
        print(f"\n{'variant':<20}" + "".join(f"  scale {s}: steps/s (x)" for s in sorted(base)))
        for res in results:
            print(f"{res['variant']:<20}" + "".join(
                f"  {r['steps_per_s']:8.2f} ({r['steps_per_s'] / base[r['scale']]:.2f}x)  " for r in res["per_scale"]))
    print(json.dumps(results if len(results) > 1 else results[0]))


def run_variant(args, name: str, extra: list[str]) -> dict:
    """Time one configuration (preset + ``--set`` + the variant's overrides) at every scale."""

    from darkgan.models.config import apply_overrides, get_preset
    from darkgan.training.data import real_at_scale
    from darkgan.training.distributed import resolve_device
    from darkgan.training.loop import build_state, step_generator, train_step_d, train_step_g

    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    cfg = get_preset(args.preset)
    layout = ["train.memory_format=channels_last"] if args.channels_last else []
    if args.overrides or extra or layout:
        cfg = apply_overrides(cfg, layout + list(args.overrides) + list(extra))
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    st = build_state(cfg, args.pitches, args.attributes, dev)
    if args.attributes:  # the per-attribute spread the standardised losses divide by (training sets it from the labels)
        st.attr_std = torch.full((args.attributes,), 0.023, device=dev)
    tc = cfg.train
    scales = [int(s) for s in args.scales.split(",")] if args.scales else list(range(cfg.model.n_scales))
    rows = []
    for s in scales:
        b = tc.batch_size[s]
        st.scale, st.alpha = s, 1.0
        full = torch.randn(b, 2, *cfg.model.output_shape, device=dev)
        real = real_at_scale(full, cfg.model, s, 1.0)
        if st.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        pitch = torch.randint(0, args.pitches, (b,), device=dev)
        soft = torch.rand(b, args.attributes, device=dev)

        def one(step: int) -> None:
            g = step_generator(0, step)
            st.step = step
            train_step_d(st, real, pitch, soft, tc, g)
            train_step_g(st, pitch, soft, tc, g)

        for i in range(args.warmup):
            one(i)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while n < args.min_steps or time.perf_counter() - t0 < args.seconds:
            one(n)
            n += 1
            if dev.type == "cuda" and n % 10 == 0:
                torch.cuda.synchronize()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        sps = n / dt
        rows.append({"scale": s, "shape": list(cfg.model.scale_shape(s)), "batch": b, "steps_per_s": round(sps, 3),
                     "notes_per_s": round(sps * b, 1), "iterations": tc.iterations[s],
                     "projected_hours": round(tc.iterations[s] / sps / 3600, 3)})
        print(f"scale {s} {cfg.model.scale_shape(s)[0]:>4}x{cfg.model.scale_shape(s)[1]:<3} batch {b:>3}: "
              f"{sps:8.2f} steps/s  {sps * b:9.1f} notes/s  -> {tc.iterations[s]:>7} iterations in "
              f"{tc.iterations[s] / sps / 3600:7.2f} h", flush=True)
    total_h = sum(r["projected_hours"] for r in rows)
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu x{args.threads} threads"
    return {"variant": name or "default", "preset": args.preset, "overrides": list(args.overrides) + list(extra),
            "device": dev_name, "load_average": list(os.getloadavg()), "per_scale": rows,
            "projected_total_hours": round(total_h, 2)}


if __name__ == "__main__":
    main()
