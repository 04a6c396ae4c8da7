"""Would Winograd convolutions bring the `paper` generator under 80 ms per note? (issue 6)

Usage::

    python benchmarks/bench_winograd.py [--threads 2] [--runs 20] [--json FILE]

PyTorch ships NNPACK, whose 3x3 convolutions use Winograd F(6x6, 3x3) tiles (about 5x fewer
multiplies than direct convolution in theory) on AVX2 CPUs. This script measures, at batch 1
on this machine:

1. per layer: each plain 3x3 convolution of the `paper` generator (the second convolution of
   each block; the first ones are the polyphase up-sampling convolutions of
   :mod:`darkgan.compression.fast`) through oneDNN (channels-last, what the fast path runs)
   and through NNPACK (NCHW, the layout it takes), with their max abs difference;
2. end to end (inputs -> normalised MAG-IF ``[1, 2, 1024, 32]``): the fast path as shipped
   against the same fast path with those plain convolutions run by NNPACK (inputs converted
   to NCHW, outputs back to channels-last for the next polyphase layer).

Random weights (speed does not depend on them). Medians of ``--runs`` after 3 warm-up calls.
Exits with status 1 with a clear message where this PyTorch build has no NNPACK.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn as nn
from tqdm import tqdm


def _median_ms(fn, runs: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


class _NNPACKConv(nn.Module):
    """A folded 3x3 (padding 1) convolution of :mod:`darkgan.compression.fast` run by NNPACK:
    ``[B, C, H, W]`` (any memory format) -> ``[B, O, H, W]`` channels-last."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.weight = conv.weight.detach().contiguous()
        self.bias = conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch._nnpack_spatial_convolution(x.contiguous(), self.weight, self.bias, [1, 1, 1, 1])
        return y.contiguous(memory_format=torch.channels_last)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args()

    if not torch._nnpack_available():  # also initialises NNPACK (the convolution fails before)
        sys.exit("bench_winograd: this PyTorch build has no NNPACK; nothing to compare")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from darkgan.compression.fast import _Conv, fast_generator
    from darkgan.models.config import get_preset
    from darkgan.models.generator import Generator

    cfg = get_preset("paper").model
    gen = Generator(cfg, n_pitches=27, n_attributes=128).eval()
    fast = fast_generator(gen)
    hybrid = fast_generator(gen)
    scale_of = [s for s, convs in enumerate(gen.blocks) for _ in convs]  # fast.layers order

    rows = []
    plain = [(i, layer) for i, layer in enumerate(fast.layers) if isinstance(layer, _Conv)]  # 3x3, no up-sampling
    with torch.inference_mode():
        for i, layer in tqdm(plain, desc="per layer", unit="conv"):
            scale, c = scale_of[i], layer.weight.shape[1]
            h, w = cfg.scale_shape(scale)
            x = torch.randn(1, c, h, w)
            x_cl = x.contiguous(memory_format=torch.channels_last)
            nnp = _NNPACKConv(layer)
            err = (nnp(x) - layer(x_cl)).abs().max().item()
            ms_dnnl = _median_ms(lambda: layer(x_cl), args.runs)
            ms_nnp = _median_ms(lambda: nnp(x), args.runs)
            ms_raw = _median_ms(lambda: torch._nnpack_spatial_convolution(x, nnp.weight, nnp.bias, [1, 1, 1, 1]),
                                args.runs)
            gmac = h * w * 9 * c * layer.weight.shape[0] / 1e9
            rows.append({"scale": scale, "shape": [c, h, w], "gmac": round(gmac, 3),
                         "onednn_ms": round(ms_dnnl, 2), "nnpack_ms": round(ms_nnp, 2),
                         "nnpack_nchw_only_ms": round(ms_raw, 2),
                         "speedup": round(ms_dnnl / ms_nnp, 2), "max_abs_diff": err})
            if h * w >= 4096:  # the large maps; NNPACK's tiles do not pay on the smallest ones
                hybrid.layers[i] = nnp

        z = torch.randn(1, cfg.latent_dim)
        pitch, attrs = torch.tensor([10]), torch.rand(1, 128)
        ref = gen(z, pitch, attrs)
        e2e = {}
        for name, model in tqdm([("fast", fast), ("fast + NNPACK", hybrid)], desc="end to end", unit="model"):
            e2e[name] = {"ms": round(_median_ms(lambda: model(z, pitch, attrs), args.runs), 1),
                         "max_abs_err_vs_eager": (model(z, pitch, attrs) - ref).abs().max().item()}

    print(f"\n`paper` generator, batch 1, {args.threads} thread(s), median of {args.runs} runs")
    print("| scale | map [C, H, W] | GMAC | oneDNN ms | NNPACK ms (+ layout) | NNPACK ms (NCHW only) | speed-up incl. layout "
          "| max abs diff |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scale']} | {r['shape']} | {r['gmac']} | {r['onednn_ms']} | {r['nnpack_ms']} | "
              f"{r['nnpack_nchw_only_ms']} | {r['speedup']}x | {r['max_abs_diff']:.1e} |")
    print("\n| end to end (to MAG-IF) | ms/note | max abs err vs eager |")
    print("|---|---|---|")
    for name, r in e2e.items():
        print(f"| {name} | {r['ms']} | {r['max_abs_err_vs_eager']:.1e} |")
    if args.json:
        from darkgan.utils.io import write_json
        write_json(args.json, {"threads": args.threads, "runs": args.runs, "layers": rows, "end_to_end": e2e})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
