"""Structured channel pruning of a DarkGAN generator with Torch-Pruning (issue 6, item 3).

After "Diet deep generative audio models with structured lottery" (Esling et al., 2020): whole
feature maps are removed, so the pruned generator is an ordinary, narrower generator (smaller
``model.channels``) that every tool loads, and then recovers quality by distillation from the
unpruned model (:mod:`darkgan.compression.distill`).

How (``prune_generator``):

1. a plain ``torch.nn`` *mirror* of the generator is built for Torch-Pruning's dependency graph:
   the format layer as the reference's ``H0 x W0`` convolution over a ``[B, in, 1, 1]`` column
   (:meth:`FormatLayer.conv_weight`, the formulation Torch-Pruning understands), each 3x3
   equalized convolution as an ``nn.Conv2d`` holding its *effective* (scaled) weight, nearest
   up-sampling, leaky ReLU, and every scale's 1x1 to-MAG-IF output (ignored: their 2 output
   channels stay). Pixel norm is left out of the mirror: it rescales whole pixels and couples no
   channel indices, so the dependency groups are the same;
2. Torch-Pruning's ``MetaPruner`` (``interactive``) proposes, per dependency group (a layer's
   output channels + the next layer's input channels + the to-MAG-IF input channels), the
   indices to remove by the chosen importance (``l1``/``l2`` magnitude, ``fpgm``, ``random``;
   Torch-Pruning's group importances), the same ratio in every layer, so all convolutions of a
   scale keep the same width (expressible as ``model.channels``);
3. the indices are applied to the *equalized* generator: output rows (and biases) removed;
   input columns removed *and rescaled* by ``scale_old / scale_new`` because the equalized-LR
   constant ``sqrt(2 / fan_in)`` changes with the fan-in (so the kept connections compute
   exactly what they computed before); the format layer's rows ``(c, i, j)`` of removed maps c
   are dropped explicitly.

Depth (``drop_convs``, ``darkgan prune --convs-per-block 1``): on a CPU at batch 1 a narrow
generator's latency is set by the *number* of layers more than by their MACs (oneDNN runs a
4-map 3x3 convolution on a 1024x32 map at ~9 GFLOP/s, a fixed cost per layer; measured in
docs/compression.md), so the second convolution of every scale block can be removed as well.
The kept layers are the first convolution of each block (at scale 0 the one after the format
layer; above it the up-sampling convolution, the only one that changes the width): their
weights are copied, the dropped convolutions' function is relearnt by the recovery
distillation. This is "layer dropping" initialisation (as DistilBERT initialises its student
from every other teacher layer; Sanh et al., 2019), applied per scale.

Shapes are unchanged at the interface: ``(z [B, Z], pitch [B], attributes [B, K]) ->
[B, 2, 1024, 32]``.
"""
from __future__ import annotations

import copy
import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from darkgan.errors import DarkGANError
from darkgan.models.generator import scale_blocks

IMPORTANCES = ("l1", "l2", "fpgm", "random")


def check_ratio(ratio: float) -> float:
    """Validate a pruning ratio (share of channels removed per layer).

    Raises:
        DarkGANError: ``ratio`` not strictly between 0 and 1 (or not a number).
    """
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        raise DarkGANError(f"--ratio {ratio!r}: not a number; give a share of channels in (0, 1), e.g. 0.5") from None
    if not (0.0 < r < 1.0) or math.isnan(r):
        raise DarkGANError(f"--ratio {ratio}: must be strictly between 0 and 1 (the share of channels removed)")
    return r


class _Mirror(nn.Module):
    """Plain-``nn`` copy of a generator's final-scale graph for Torch-Pruning (see module doc).

    Call: ``x [B, in, 1, 1] -> tuple of S outputs [B, 2, H_s, W_s]``.
    """

    def __init__(self, gen: nn.Module):
        super().__init__()
        from darkgan.models.generator import require_unmodulated

        require_unmodulated(gen, "pruning")
        cfg = gen.cfg
        self.slope = cfg.leaky_slope
        self.ups = [cfg.up_factor(s) if s else (1, 1) for s in range(cfg.n_scales)]
        fmt = gen.format
        h0, w0 = fmt.shape
        self.format = nn.Conv2d(fmt.in_features, fmt.out_channels, (h0, w0), padding=(h0 - 1, w0 - 1))
        with torch.no_grad():
            self.format.weight.copy_(fmt.conv_weight() * (1.0 if fmt.folded else fmt.scale))
            self.format.bias.copy_(fmt.bias)
        self.blocks = nn.ModuleList()
        for convs in gen.blocks:
            self.blocks.append(nn.ModuleList(self._plain(c) for c in convs))
        self.to_magif = nn.ModuleList(self._plain(c) for c in gen.to_magif)

    @staticmethod
    def _plain(c) -> nn.Conv2d:
        conv = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, padding=c.padding, bias=c.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(c.weight * (1.0 if c.folded else c.scale))
            if c.bias is not None:
                conv.bias.copy_(c.bias)
        return conv

    def forward(self, x: torch.Tensor):
        def act(h):
            return F.leaky_relu(h, self.slope)

        def up(h, s):
            return F.interpolate(h, scale_factor=tuple(float(f) for f in self.ups[s]), mode="nearest")

        feats = scale_blocks(self.blocks, act(self.format(x)), len(self.blocks) - 1, act, up)
        return tuple(self.to_magif[s](h) for s, h in enumerate(feats))


def _importance(name: str):
    import torch_pruning as tp

    if name == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "fpgm":
        return tp.importance.FPGMImportance()
    if name == "random":
        return tp.importance.RandomImportance()
    raise DarkGANError(f"--importance {name!r}: choose one of {', '.join(IMPORTANCES)}")


def pruning_plan(gen: nn.Module, ratio: float, importance: str = "l2") -> dict[str, dict[str, list[int]]]:
    """Channels Torch-Pruning removes: ``{mirror_layer_name: {"out": [idx...], "in": [idx...]}}``.

    Layer names are the mirror's (``format``, ``blocks.s.i``, ``to_magif.s``), which map 1:1
    to the generator's modules.

    Raises:
        DarkGANError: bad ratio or importance; a ratio that would remove every channel of a layer.
    """
    import torch_pruning as tp

    ratio = check_ratio(ratio)
    imp = _importance(importance)
    mirror = _Mirror(gen).eval()
    names = {m: n for n, m in mirror.named_modules()}
    example = torch.randn(1, gen.format.in_features, 1, 1)
    pruner = tp.pruner.MetaPruner(mirror, example, importance=imp, pruning_ratio=ratio, global_pruning=False,
                                  ignored_layers=list(mirror.to_magif))
    plan: dict[str, dict[str, list[int]]] = {}
    torch.manual_seed(0)  # the random importance
    for group in pruner.step(interactive=True):
        for dep, idxs in group:
            mod = dep.target.module
            if mod not in names:
                continue
            fn = getattr(dep.handler, "__name__", str(dep.handler))
            kind = "out" if "out_channels" in fn else "in" if "in_channels" in fn else None
            if kind is None:
                continue
            entry = plan.setdefault(names[mod], {"out": [], "in": []})
            entry[kind] = sorted(set(entry[kind]) | {int(i) for i in idxs})
    return plan


@torch.no_grad()
def apply_plan(gen: nn.Module, plan: dict[str, dict[str, list[int]]]) -> nn.Module:
    """A new, narrower :class:`Generator` with the plan's channels removed (see module doc, 3).

    Raises:
        DarkGANError: the plan leaves convolutions of one scale with different widths, or an
            inconsistent plan (a layer's output pruned without its consumers).
    """
    from darkgan.models.generator import Generator

    if any(m.folded for m in gen.modules() if hasattr(m, "folded")):
        raise DarkGANError("cannot prune a generator whose equalized-LR scales are folded; load it from the checkpoint")
    cfg = gen.cfg
    ch = list(cfg.channels)

    def keep(n: int, removed: list[int]) -> torch.Tensor:
        rm = set(removed)
        return torch.tensor([i for i in range(n) if i not in rm], dtype=torch.long)

    # kept output channels of each producer
    fmt_keep = keep(gen.format.out_channels, plan.get("format", {}).get("out", []))
    block_keep = [[keep(c.out_channels, plan.get(f"blocks.{s}.{i}", {}).get("out", [])) for i, c in enumerate(convs)]
                  for s, convs in enumerate(gen.blocks)]
    widths = []
    for s, ks in enumerate(block_keep):
        w = {len(k) for k in ks}
        if s == 0:
            w.add(len(fmt_keep))
        if len(w) != 1:
            raise DarkGANError(f"pruning left scale {s} with unequal widths {sorted(w)}")
        widths.append(w.pop())
        if widths[-1] < 1:
            raise DarkGANError(f"pruning removed every channel of scale {s}; use a smaller ratio")
    new_cfg = dataclasses.replace(cfg, channels=tuple(widths),
                                  critic_channels=cfg.critic_channels or tuple(ch))
    new = Generator(new_cfg, gen.n_pitches, gen.n_attributes)
    new.copy_conditioning_from(gen)  # the same statistics; the mapping is not pruned

    # format layer: rows (c, i, j) of kept maps c
    h0, w0 = gen.format.shape
    rows = (fmt_keep[:, None] * (h0 * w0) + torch.arange(h0 * w0)[None]).reshape(-1)
    new.format.weight.copy_(gen.format.weight[rows])  # fan-in (input vector) unchanged: same scale
    new.format.bias.copy_(gen.format.bias[fmt_keep])

    def copy_conv(dst, src, in_keep: torch.Tensor, out_keep: torch.Tensor) -> None:
        w = src.weight[out_keep][:, in_keep]
        dst.weight.copy_(w * (src.scale / dst.scale))  # same effective weight after the fan-in change
        if src.bias is not None:
            dst.bias.copy_(src.bias[out_keep])

    prev = fmt_keep
    for s, convs in enumerate(gen.blocks):
        for i, conv in enumerate(convs):
            copy_conv(new.blocks[s][i], conv, prev, block_keep[s][i])
            prev = block_keep[s][i]
        out = gen.to_magif[s]
        copy_conv(new.to_magif[s], out, prev, torch.arange(out.out_channels))
    return new.eval()


@torch.no_grad()
def drop_convs(gen: nn.Module, convs_per_block: int) -> nn.Module:
    """A new :class:`Generator` keeping the first ``convs_per_block`` 3x3 convolutions of every
    scale block of ``gen`` (depth pruning; see the module doc). Widths are unchanged.

    Args:
        gen: a :class:`~darkgan.models.generator.Generator` (not folded).
        convs_per_block: convolutions kept per block, ``1 <= convs_per_block <= gen.cfg.convs_per_block``.

    Returns:
        the shallower Generator (``cfg.convs_per_block`` updated), same interface
        ``(z [B, Z], pitch [B], attributes [B, K]) -> [B, 2, 1024, 32]``; the format layer, the
        kept convolutions and every scale's to-MAG-IF output carry ``gen``'s weights, so it
        computes ``gen`` with each dropped convolution and its activation replaced by the identity.

    Raises:
        DarkGANError: ``convs_per_block`` outside ``[1, gen.cfg.convs_per_block]``, or folded weights.
    """
    from darkgan.models.generator import Generator

    n = int(convs_per_block)
    if not 1 <= n <= gen.cfg.convs_per_block:
        raise DarkGANError(f"--convs-per-block {convs_per_block}: must be between 1 and the source's "
                           f"{gen.cfg.convs_per_block}")
    if any(m.folded for m in gen.modules() if hasattr(m, "folded")):
        raise DarkGANError("cannot drop layers of a generator whose equalized-LR scales are folded; load it "
                           "from the checkpoint")
    new = Generator(dataclasses.replace(gen.cfg, convs_per_block=n), gen.n_pitches, gen.n_attributes)
    kept = {name: p for name, p in gen.state_dict().items()
            if not (name.startswith("blocks.") and int(name.split(".")[2]) >= n)}
    new.load_state_dict(kept, strict=True)
    return new.eval()


def prune_generator(gen: nn.Module, ratio: float, importance: str = "l2") -> nn.Module:
    """Remove ``ratio`` of the channels of every layer of ``gen`` (a new generator; ``gen`` is kept).

    Args:
        gen: a :class:`~darkgan.models.generator.Generator` (not folded).
        ratio: share of channels removed per layer, in (0, 1).
        importance: ``l1``, ``l2``, ``fpgm`` or ``random`` (Torch-Pruning importances).

    Returns:
        the pruned Generator; its ``cfg.channels`` hold the new widths.

    Raises:
        DarkGANError: ratio outside (0, 1), unknown importance, or a ratio that empties a layer.
    """
    gen = copy.deepcopy(gen).float().cpu().eval()
    return apply_plan(gen, pruning_plan(gen, ratio, importance))
