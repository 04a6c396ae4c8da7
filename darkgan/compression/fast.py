"""Inference-optimised copy of a trained DarkGAN generator (issue 6, item 1).

:func:`fast_generator` turns a :class:`darkgan.models.generator.Generator` into a
:class:`FastGenerator` that computes the same function at the final scale (``alpha = 1``) with
less memory traffic and fewer multiply-adds. What the facts file lists as the reference's waste
("Inference cost of the reference generator") and what is done about it here:

- *format layer*: a linear layer (already so in :class:`~darkgan.models.generator.FormatLayer`);
  here its rows are permuted to ``(i, j, c)`` order so the product lands directly in
  channels-last memory, and the pitch one-hot product is a column gather;
- *equalized-LR scales*: folded into the weights once (one element-wise pass less per layer);
- *leaky ReLU + pixel norm*: leaky ReLU in place, then the pixel norm as one channel reduction
  (``vector_norm``, no squared temporary) and one in-place multiply;
- *layout*: channels-last (NHWC) throughout, so oneDNN runs its blocked direct convolutions and
  the pixel norm reduces over contiguous memory;
- *up-sampling*: never materialised. A 3x3 convolution (padding 1) of a nearest-up-sampled map is
  rewritten per output phase: for a factor 2 along an axis, output row ``2i`` sees input rows
  ``(i - 1, i, i)`` and row ``2i + 1`` sees ``(i, i, i + 1)``, so each phase is a 2-tap
  convolution of the *low-resolution* map with summed kernel taps. For the (2, 2) up-samplings
  this is 4 x (2x2) instead of 4 x (3x3) taps per low-resolution pixel (2.25x fewer MACs), for
  (2, 1) 2 x (2x3) instead of 2 x (3x3) (1.5x fewer). The phase outputs are interleaved with
  one reshape copy. Exact up to float summation order (zero padding of the up-sampled map is
  zero padding of the low-resolution map).
- *batching*: on the CPU a batch is run in chunks of at most :attr:`FastGenerator.micro_batch`
  notes (largest feature map per chunk ~256 MiB: 32 notes for ``paper``), which bounds peak
  memory (eager ``paper`` at batch 64: 2.9 GB). Smaller, cache-sized chunks were measured
  slower on the 2-core machine (1 note per chunk: 4x slower than 64), so chunks are large;
- *waveform*: :class:`FastSynth` adds the de-normalisation and the batched fp32 ``torch.istft``
  (:func:`darkgan.data.magif.magif_to_wave`) instead of per-note float64 post-processing.

Shapes: ``FastGenerator(z [B, Z], pitch_index [B] long, attributes [B, K]) -> [B, 2, 1024, 32]``
normalised MAG-IF (channels-last memory), ``FastSynth(...) -> [B, 16000]`` float32 waveform.
Parity with the eager generator: float32 rounding only (max abs error on normalised MAG-IF
against the eager float32 generator ~5e-6 for ``paper``; against float64 ~2e-4 for ``small``, whose 8-map pixel norms amplify
rounding as much in the eager float32 generator), see ``tests/test_compression_fast.py``.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from darkgan.data.magif import FADE_OUT_SAMPLES, N_SAMPLES, Normalizer, fade_out, magif_to_wave, without_infrasound

PIXEL_NORM_EPS = 1e-8


def _taps(factor: int, phase: int) -> list[list[int]]:
    """For a 3-tap kernel along one axis applied after nearest up-sampling by ``factor``, the
    original taps (0, 1, 2) that fall on input offsets (-1, 0, +1) for output ``phase``.

    Returns a list of 3 lists (offsets -1, 0, +1), each the original tap indices summed there.
    """
    out: list[list[int]] = [[], [], []]
    for tap in range(3):  # tap k reads up-sampled position y + k - 1, y = factor * i + phase
        offset = math.floor((phase + tap - 1) / factor)
        out[offset + 1].append(tap)
    return out


def phase_kernels(weight: torch.Tensor, fh: int, fw: int) -> list[tuple[torch.Tensor, tuple[int, int, int, int]]]:
    """Polyphase decomposition of a 3x3 kernel applied after nearest up-sampling by (fh, fw).

    Args:
        weight: ``[out, in, 3, 3]``.
        fh, fw: up-sampling factors (1 or more) along height (frequency) and width (time).

    Returns:
        ``fh * fw`` pairs ``(kernel [out, in, kh, kw], (row0, row1, col0, col1))`` in phase order
        ``(p, q)`` row-major; the kernel is applied without padding to the input zero-padded by 1
        on every side, sliced ``[row0 : H + 2 - row1, col0 : W + 2 - col1]``.
    """
    res = []
    for p in range(fh):
        rows = _taps(fh, p)
        for q in range(fw):
            cols = _taps(fw, q)
            r_used = [k for k in range(3) if rows[k]]
            c_used = [k for k in range(3) if cols[k]]
            ker = weight.new_zeros(weight.shape[0], weight.shape[1], len(r_used), len(c_used))
            for a, ro in enumerate(r_used):
                for b, co in enumerate(c_used):
                    for tr in rows[ro]:
                        for tc in cols[co]:
                            ker[:, :, a, b] += weight[:, :, tr, tc]
            res.append((ker, (r_used[0], 2 - r_used[-1], c_used[0], 2 - c_used[-1])))
    return res


class _Act(nn.Module):
    """Leaky ReLU then pixel norm (PGGAN Sec. 4.2) over channels: one in-place leaky ReLU, one
    channel reduction (``vector_norm``, no squared temporary), one in-place multiply.

    ``inplace=False`` (used while tracing for export) computes the same out of place.
    """

    def __init__(self, slope: float, pixel_norm: bool):
        super().__init__()
        self.slope, self.pixel_norm = slope, pixel_norm
        self.inplace = True

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B, 1, H, W]``: ``1 / sqrt(mean_c(x^2) + eps)``."""
        norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        return torch.rsqrt(norm.square_().div_(x.shape[1]).add_(PIXEL_NORM_EPS)) if self.inplace else \
            torch.rsqrt(norm * norm / x.shape[1] + PIXEL_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            x = F.leaky_relu_(x, self.slope)
            return x.mul_(self.scale(x)) if self.pixel_norm else x
        x = F.leaky_relu(x, self.slope)
        return x * self.scale(x) if self.pixel_norm else x


class _Conv(nn.Module):
    """A plain 3x3 (padding 1) or 1x1 convolution with folded weights."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, padding: int):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False) if bias is not None else None
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class _UpConv(nn.Module):
    """``act(conv3x3(nearest_up(x, (fh, fw))))`` without materialising the up-sampled map.

    Each phase is a ``(len(rows), len(cols))`` convolution of ``x`` with padding 1, whose output
    (one row/column larger than needed for 2-tap axes) is sliced to the phase's window; the
    activation (leaky ReLU + pixel norm, per pixel) is applied per phase and its final multiply
    writes straight into the interleaved high-resolution buffer, so the interleave costs no
    extra pass. Includes the activation (unlike :class:`_Conv`).

    Shapes: ``[B, in, H, W] -> [B, out, fh H, fw W]`` (channels-last memory).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, fh: int, fw: int, act: _Act):
        super().__init__()
        self.fh, self.fw, self.act = fh, fw, act
        self.offsets = []
        for i, (ker, (r0, _, c0, _)) in enumerate(phase_kernels(weight.detach(), fh, fw)):
            self.register_parameter(f"w{i}", nn.Parameter(ker, requires_grad=False))
            # with padding (1, 1), output row y uses padded rows y .. y + kh - 1, i.e. input rows
            # y - 1 .. : a phase whose first tap is at offset r0 - 1 starts at output row r0.
            self.offsets.append((r0, c0))
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        fh, fw = self.fh, self.fw
        act = self.act
        outs = []
        for i, (r0, c0) in enumerate(self.offsets):
            y = F.conv2d(x, getattr(self, f"w{i}"), self.bias, padding=1)
            outs.append(y[:, :, r0: r0 + h, c0: c0 + w])
        c = outs[0].shape[1]
        if not act.inplace:  # export / tracing: plain ops
            outs = [act(o) for o in outs]
            y = torch.stack([o.permute(0, 2, 3, 1) for o in outs], dim=3)  # [B, H, W, fh*fw, C]
            y = y.view(b, h, w, fh, fw, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h * fh, w * fw, c)
            return y.permute(0, 3, 1, 2)
        buf = x.new_empty(b, h, fh, w, fw, c)
        for i, o in enumerate(outs):
            o = F.leaky_relu_(o, act.slope)
            dst = buf[:, :, i // fw, :, i % fw, :]
            if act.pixel_norm:
                torch.mul(o, act.scale(o), out=dst.permute(0, 3, 1, 2))
            else:
                dst.copy_(o.permute(0, 2, 3, 1))
        return buf.view(b, h * fh, w * fw, c).permute(0, 3, 1, 2)


class FastGenerator(nn.Module):
    """Inference-only generator at the final scale; see the module docstring.

    Built by :func:`fast_generator`; do not train it (weights are folded, no gradients).

    Call: ``(z [B, Z], pitch_index [B] int64 in [0, P), attributes [B, K] or None) ->
    [B, 2, 1024, 32]`` normalised MAG-IF. Inputs are not validated (the eager generator does it).
    """

    def __init__(self, gen: nn.Module, channels_last: bool = True, polyphase: bool = True):
        super().__init__()
        cfg = gen.cfg
        self.latent_dim, self.n_pitches, self.n_attributes = cfg.latent_dim, gen.n_pitches, gen.n_attributes
        self.channels_last = channels_last
        fmt = gen.format
        c0, (h0, w0) = fmt.out_channels, fmt.shape
        self.format_shape = (c0, h0, w0)
        with torch.no_grad():
            wf = fmt.weight * (1.0 if fmt.folded else fmt.scale)  # [c0*h0*w0, in], rows (c, i, j)
            bias = fmt.bias.detach().view(c0, 1, 1).expand(c0, h0, w0)
            if channels_last:  # rows (i, j, c)
                wf = wf.view(c0, h0, w0, -1).permute(1, 2, 0, 3).reshape(c0 * h0 * w0, -1)
                bias = bias.permute(1, 2, 0)
            # one [width, D] block of the folded weight per input part (latent, pitch, condition)
            self.w_parts = nn.ParameterList(nn.Parameter(w.t().contiguous(), requires_grad=False)
                                            for w in wf.split(list(gen.input_widths), dim=1) if w.shape[1])
            self.b_format = nn.Parameter(bias.reshape(-1).clone(), requires_grad=False)
        self.inputs = gen.input_stage()  # the generator's own input transform (one home)
        self.act = _Act(cfg.leaky_slope, cfg.pixel_norm)
        layers: list[nn.Module] = []
        for s, convs in enumerate(gen.blocks):
            for i, conv in enumerate(convs):
                w = conv.weight.detach() * (1.0 if conv.folded else conv.scale)
                if s > 0 and i == 0:
                    fh, fw = cfg.up_factor(s)
                    if polyphase:
                        layers.append(_UpConv(w, conv.bias, fh, fw, self.act))
                    else:
                        layers.append(nn.Sequential(nn.Upsample(scale_factor=(float(fh), float(fw)), mode="nearest"),
                                                    _Conv(w, conv.bias, 1)))
                else:
                    layers.append(_Conv(w, conv.bias, 1))
        self.layers = nn.ModuleList(layers)
        out = gen.to_magif[-1]
        self.to_magif = _Conv(out.weight.detach() * (1.0 if out.folded else out.scale), out.bias, 0)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        # notes per chunk on the CPU: bounds the largest feature map per chunk to ~256 MiB (32
        # notes for paper). Measured on the 2-core machine (paper, batch 64, 2 threads, loaded):
        # chunks of 1 / 16 / 64 notes gave ~1.0 / 3.5 / 4.1 notes/s (eager: 2.2): per-layer
        # overheads and oneDNN's efficiency favour large chunks; the cap only bounds memory.
        largest = max(c * h * w for c, (h, w) in zip(cfg.channels, (cfg.scale_shape(s) for s in range(cfg.n_scales))))
        self.micro_batch = max(1, (256 << 20) // (4 * largest))
        self.eval()

    def format_input(self, z: torch.Tensor, pitch_index: torch.Tensor,
                     attributes: torch.Tensor | None) -> torch.Tensor:
        """``[B, C0, H0, W0]`` after the format layer (before its activation): the generator's
        :meth:`~darkgan.models.generator.Generator.input_parts` times their weight blocks."""
        parts = self.inputs.input_parts(z, pitch_index, attributes)
        y = torch.addmm(self.b_format, parts[0], self.w_parts[0])
        for part, w in zip(parts[1:], self.w_parts[1:]):
            y = y + part @ w
        c0, h0, w0 = self.format_shape
        if self.channels_last:
            return y.view(-1, h0, w0, c0).permute(0, 3, 1, 2)
        return y.view(-1, c0, h0, w0)

    def set_inplace(self, inplace: bool) -> "FastGenerator":
        """In-place element-wise ops (fast, eager) or out-of-place (for tracing / export)."""
        self.act.inplace = bool(inplace)
        return self

    def forward(self, z: torch.Tensor, pitch_index: torch.Tensor,
                attributes: torch.Tensor | None = None) -> torch.Tensor:
        n = self.micro_batch
        if n and z.shape[0] > n and self.act.inplace and z.device.type == "cpu":  # memory-bounded chunks
            outs = [self._forward(z[i:i + n], pitch_index[i:i + n], None if attributes is None else attributes[i:i + n])
                    for i in range(0, z.shape[0], n)]
            return torch.cat(outs)
        return self._forward(z, pitch_index, attributes)

    def _forward(self, z: torch.Tensor, pitch_index: torch.Tensor,
                 attributes: torch.Tensor | None = None) -> torch.Tensor:
        x = self.act(self.format_input(z, pitch_index, attributes))
        for layer in self.layers:
            x = layer(x) if isinstance(layer, _UpConv) else self.act(layer(x))
        return self.to_magif(x)


class FastSynth(nn.Module):
    """``(z, pitch_index, attributes) -> waveform [B, 16000]``: :class:`FastGenerator`, then
    de-normalisation, the bins below 20 Hz silenced, the batched fp32 inverse (``magif_to_wave``,
    or a custom ``inverse`` module such as :class:`darkgan.compression.istft.MatmulISTFT` for
    export) and the checkpoint's fade-out of ``fade`` samples (``model.synthesis_fade``; default the
    data's 1,024; as :func:`darkgan.data.magif.magif_to_note`).
    """

    def __init__(self, generator: nn.Module, normalizer: Normalizer | None, inverse: nn.Module | None = None,
                 fade: int = FADE_OUT_SAMPLES):
        super().__init__()
        self.generator = generator
        norm = normalizer or Normalizer.identity()
        self.register_buffer("mean", torch.tensor(norm.mean, dtype=torch.float32).view(1, 2, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(norm.std, dtype=torch.float32).view(1, 2, 1, 1), persistent=False)
        self.inverse = inverse
        # the checkpoint's fade-out (darkgan.data.magif.magif_to_note) as one multiply
        self.register_buffer("fade", fade_out(torch.ones(1, N_SAMPLES), int(fade)), persistent=False)

    def forward(self, z: torch.Tensor, pitch_index: torch.Tensor,
                attributes: torch.Tensor | None = None) -> torch.Tensor:
        x = self.generator(z, pitch_index, attributes)
        x = without_infrasound(x * self.std + self.mean).contiguous()
        return (self.inverse(x) if self.inverse is not None else magif_to_wave(x)) * self.fade


def fast_generator(gen: nn.Module, channels_last: bool = True, polyphase: bool = True) -> FastGenerator:
    """Build the inference-optimised copy of ``gen`` (the original is not modified).

    Args:
        gen: a :class:`~darkgan.models.generator.Generator` (folded or not), any channel widths
            (pruned generators included).
        channels_last: NHWC memory layout (faster with oneDNN on CPU).
        polyphase: replace up-sample + 3x3 conv by the polyphase convolutions.

    Returns:
        :class:`FastGenerator` in eval mode, CPU/GPU as ``gen``.

    Raises:
        DarkGANError: ``gen`` modulates its convolutions by the conditioning
            (``model.attr_film_from_scale``), which the compiled copy does not carry yet.
    """
    from darkgan.models.generator import require_unmodulated

    require_unmodulated(gen, "the compiled generator (compression, export)")
    gen = copy.deepcopy(gen).float().eval()
    with torch.no_grad():
        return FastGenerator(gen, channels_last=channels_last, polyphase=polyphase)
