"""Cost of the generator's share of a ``g_steer`` step: its steered targets in the batch's forward
(the path before stop 42) against a forward of their own without a graph (``train_step_g`` since).

Usage::

    python benchmarks/bench_steer_step.py [--checkpoint default] [--batch 8] [--threads 2] [--repeats 12]

The shipped generator at its last scale, ``--batch`` notes plus ``ceil(batch / 2)`` single edits
and as many steered targets (``train.steer_fraction`` 0.5: ``small-control``'s last-scale batch of
8 gives 16 rows), a stand-in adversarial term (mean square of the batch) plus the real
``steer_distillation_loss`` (projection), forward and backward. The two paths alternate, so the
machine's load falls on both alike; prints the medians (ms) after two warm-up rounds and the
machine's load average before and after. The critic's steps are not included.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from types import SimpleNamespace

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="generator checkpoint (default: the shipped default)")
    ap.add_argument("--batch", type=int, default=8, help="notes of the batch (small-control's last scale: 8)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=12)
    args = ap.parse_args()
    if args.batch < 2 or args.repeats < 3 or args.threads < 1:
        ap.error("--batch >= 2, --repeats >= 3 and --threads >= 1 are needed")

    from darkgan.models.checkpoint import load_generator
    from darkgan.training.loop import _generate_with_targets
    from darkgan.training.losses import steer_distillation_loss

    torch.set_num_threads(args.threads)
    G, _ = load_generator(args.checkpoint)
    G.requires_grad_(True)
    b = args.batch
    s = math.ceil(0.5 * b)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(b + 2 * s, G.cfg.latent_dim, generator=gen)
    pitch = torch.randint(0, G.n_pitches, (b + 2 * s,), generator=gen)
    alpha = 0.1 * torch.rand(b + 2 * s, G.n_attributes, generator=gen)
    st = SimpleNamespace(G=G, G_train=G, scale=G.n_scales - 1, alpha=1.0)

    def step(n_targets: int) -> float:
        t0 = time.perf_counter()
        G.zero_grad(set_to_none=True)
        out = _generate_with_targets(st, z, pitch, alpha, n_targets)
        loss = out[:b].square().mean() + steer_distillation_loss(out[b:b + s], out[b + s:], out[:s].detach(),
                                                                 "projection")
        loss.backward()
        return time.perf_counter() - t0

    load0 = os.getloadavg()[0]
    times: dict[int, list[float]] = {0: [], s: []}
    for _ in range(args.repeats):
        for k in times:
            times[k].append(step(k))
    one, apart = (statistics.median(times[k][2:]) * 1000 for k in (0, s))
    print(f"generator forward + backward, {b} notes + {s} single edits + {s} steered targets, "
          f"{args.threads} thread(s), median of {args.repeats - 2}: targets in the batch's forward {one:.0f} ms, "
          f"apart without a graph {apart:.0f} ms ({one / apart:.2f}x); load average {load0:.2f} -> "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
