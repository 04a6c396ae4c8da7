"""The DarkGAN generator: a progressive-growing convolutional network over MAG-IF images.

Paper Sec. 4.3.2 (DrumGAN / GANSynth / PGGAN lineage). ``G(z, p, a)``:

- input vector ``[normalise(z) (latent_dim), one_hot(p) (n_pitches), a (n_attributes)]``;
- the *format layer*: in the reference the vector is placed as a 1x1 column in the middle of a
  zero tensor padded to ``(2H0 - 1) x (2W0 - 1)`` and convolved with an ``H0 x W0`` kernel, giving
  ``[C0, H0, W0]`` (H0 x W0 = 32 x 4 for the paper). Every output pixel sees exactly one kernel tap
  times the column, so the convolution *is* a linear layer ``in -> C0 * H0 * W0`` whose weight
  row for pixel (i, j) is the kernel tap ``(H0 - 1 - i, W0 - 1 - j)``. We compute it as that
  linear layer (identical result, ~60x less compute at batch 64; :meth:`FormatLayer.naive_forward`
  is the padded-convolution formulation, kept for the equality test);
- leaky ReLU + pixel norm, then ``convs_per_block`` 3x3 convolutions at scale 0;
- for each higher scale: nearest up-sampling by the scale's (frequency, time) factor, then
  ``convs_per_block`` 3x3 convolutions (leaky ReLU 0.02 + pixel norm after each);
- a 1x1 "to-MAG-IF" convolution per scale; while scale s fades in, the output is
  ``lerp(up(to_magif[s-1](h_{s-1})), to_magif[s](h_s), alpha)`` (alpha: the new scale's weight).

Output activation: none (linear), as the reference progressive GAN (``generationActivation``
None). The targets are *normalised* MAG-IF (zero mean, unit std per channel, unbounded), so a
tanh would clip the magnitude tails; out-of-range IF is wrapped by the inverse transform.

All layers use equalized learning rate. Every operation is layout-agnostic, so the network runs
in ``torch.channels_last`` as well.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from darkgan.errors import DarkGANError
from darkgan.models.config import ModelConfig
from darkgan.models.layers import HE_GAIN, EqualizedConv2d, assert_shape, pixel_norm


class FormatLayer(nn.Module):
    """The "format" layer: input column -> ``[B, C0, H0, W0]``, as a linear layer.

    The parameter is stored in linear layout ``weight [C0 * H0 * W0, in]`` (row ``(o, i, j)``,
    C-order), equalized with the *convolution's* fan-in ``in * H0 * W0`` so that it is
    mathematically identical to the reference's convolution over the zero-padded column,
    learning-rate scaling included.

    Shapes: ``x [B, in] -> [B, C0, H0, W0]``.
    """

    def __init__(self, in_features: int, out_channels: int, shape: tuple[int, int], gain: float = HE_GAIN):
        super().__init__()
        h, w = shape
        self.in_features, self.out_channels, self.shape = in_features, out_channels, (h, w)
        self.weight = nn.Parameter(torch.randn(out_channels * h * w, in_features))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / (in_features * h * w) ** 0.5
        self.folded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight if self.folded else self.weight * self.scale
        y = F.linear(x, w).view(x.shape[0], self.out_channels, *self.shape)
        return y + self.bias.view(1, -1, 1, 1)

    def conv_weight(self) -> torch.Tensor:
        """The equivalent convolution kernel ``[C0, in, H0, W0]`` (unscaled, as stored)."""
        h, w = self.shape
        k = self.weight.view(self.out_channels, h, w, self.in_features).permute(0, 3, 1, 2)
        return k.flip(2, 3)

    def naive_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reference formulation: zero-pad the column to ``(2H0-1) x (2W0-1)``, convolve.

        Slow (mostly multiplies zeros); for tests only.
        """
        h, w = self.shape
        col = x[:, :, None, None]
        padded = F.pad(col, (w - 1, w - 1, h - 1, h - 1))
        k = self.conv_weight() * (1.0 if self.folded else self.scale)
        return F.conv2d(padded, k, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_channels}x{self.shape[0]}x{self.shape[1]}, scale={self.scale:.4g}"


def attribute_logits(alpha: torch.Tensor) -> torch.Tensor:
    """``logit(alpha)``, the inverse of paper Eq. 1 (``alpha = sigmoid(z / T)``, so this is
    ``z / T``): ``alpha [..., K]`` probabilities, clamped to [1e-6, 1 - 1e-6] -> float32, same shape."""
    p = alpha.float().clamp(1e-6, 1.0 - 1e-6)
    return torch.log(p) - torch.log1p(-p)


def standardize_attributes(alpha: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``(logit(alpha) - mean) / std``: ``alpha [B, K]`` probabilities (clamped to [1e-6, 1 - 1e-6])
    -> ``[B, K]`` float32, the teacher logit at temperature T (``logit(sigmoid(z / T)) = z / T``,
    paper Eq. 1) standardised per attribute with the training notes' ``mean``, ``std`` ``[K]``."""
    return (attribute_logits(alpha) - mean) / std


class AttributeMapping(nn.Module):
    """The attribute mapping (``model.mapping_layers``; ours): ``(z [B, Z], c [B, K]) -> z' [B, Z]``.

    ``z' = z + MLP([z, c])`` with leaky-ReLU hidden layers of ``mapping_width`` units and a
    zero-initialised output layer, so a mapping added to a trained generator starts as the
    identity. ``z`` is the pixel-normalised latent, ``c`` the standardised attributes
    (:meth:`Generator.standardize`). Plain (not equalized) linear layers: it is trained alone,
    with G frozen (``train.trainable = "mapping"``).
    """

    def __init__(self, cfg: ModelConfig, n_attributes: int):
        super().__init__()
        dims = [cfg.latent_dim + n_attributes] + [cfg.mapping_width] * (cfg.mapping_layers - 1) + [cfg.latent_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        nn.init.zeros_(self.layers[-1].weight), nn.init.zeros_(self.layers[-1].bias)
        self.slope = cfg.leaky_slope

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, c], dim=1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = F.leaky_relu(h, 0.2)
        return z + h


def scale_blocks(blocks, x: torch.Tensor, last: int, act, up, mod=None):
    """The generator's trunk: yield ``h_k`` for k = 0..``last``, where ``h_0 = block_0(x)`` and
    ``h_k = block_k(up(h_{k-1}, k))``, each block's convolutions followed by ``act``.

    Args:
        blocks: per scale, a sequence of convolutions (``Generator.blocks`` or a plain copy).
        x: the format layer's activated output ``[B, C_0, H_0, W_0]``.
        act: ``[B, C, H, W] -> same`` (leaky ReLU [+ pixel norm]).
        up: ``(x, k) -> x`` nearest up-sampling from scale ``k - 1`` to ``k``.
        mod: ``(x, k, i) -> x`` applied after convolution i of scale k and its activation (the
            conditional modulation of ``model.attr_film_from_scale``), or None.
    """
    for k in range(last + 1):
        if k > 0:
            x = up(x, k)
        for i, conv in enumerate(blocks[k]):
            x = act(conv(x))
            if mod is not None:
                x = mod(x, k, i)
        yield x


#: Learning-rate multiplier of the FiLM maps (:class:`AttributeFiLM`), as StyleGAN's mapping
#: network's 0.01 (Karras et al. 2019, Sec. C): 128 unit-variance inputs move a plain linear map's
#: output by ~0.1 per Adam step at lr 1e-3, which threw the first fine-tune off in 50 steps.
FILM_LR_MULT = 0.1


class AttributeFiLM(nn.Module):
    """Conditional modulation of the generator's convolutions (``model.attr_film_from_scale``).

    For each convolution i of each scale k >= ``from_scale``, a linear map ``c [B, K] ->
    [g, b] [B, 2 C_k]``, zero-initialised; ``forward(x [B, C_k, H, W], c, k, i) = x * (1 + g) + b``
    (per channel; Perez et al. 2018, "FiLM", Eq. 1 with gamma = 1 + g). Scales below
    ``from_scale`` pass through. Equalized learning rate with a multiplier (the weight is used as
    ``W * FILM_LR_MULT / sqrt(K)``, the bias as ``b * FILM_LR_MULT``): an Adam step moves the
    modulation by ~``lr * FILM_LR_MULT`` whatever K is.
    """

    def __init__(self, channels, convs_per_block: int, n_attributes: int, from_scale: int):
        super().__init__()
        self.from_scale = int(from_scale)
        self.w_scale, self.b_scale = FILM_LR_MULT / n_attributes ** 0.5, FILM_LR_MULT
        self.layers = nn.ModuleList(
            nn.ModuleList(nn.Linear(n_attributes, 2 * c) for _ in range(convs_per_block) if k >= from_scale)
            for k, c in enumerate(channels))
        for convs in self.layers:
            for lin in convs:
                nn.init.zeros_(lin.weight), nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, k: int, i: int) -> torch.Tensor:
        if k < self.from_scale:
            return x
        lin = self.layers[k][i]
        gb = F.linear(c.to(x.dtype), lin.weight.to(x.dtype) * self.w_scale, lin.bias.to(x.dtype) * self.b_scale)
        g, b = gb.chunk(2, dim=1)
        return x * (1 + g[:, :, None, None]) + b[:, :, None, None]


def require_unmodulated(gen: nn.Module, what: str) -> None:
    """Raise :class:`DarkGANError` naming ``what`` when ``gen`` modulates its convolutions by the
    conditioning (``model.attr_film_from_scale``): the compiled, pruned, distilled and exported
    copies rebuild the trunk from the convolutions alone and do not carry the modulation yet."""
    if getattr(gen, "film", None) is not None:
        raise DarkGANError(f"{what}: this generator has model.attr_film_from_scale = "
                         f"{gen.cfg.attr_film_from_scale} (conditional modulation), which {what} does not support")


class Generator(nn.Module):
    """DarkGAN generator ``G(z, pitch, attributes)`` -> normalised MAG-IF.

    Args:
        cfg: the architecture (:class:`ModelConfig`).
        n_pitches: size of the pitch one-hot (the dataset's MIDI range ``hi - lo + 1``).
        n_attributes: K, the number of teacher attributes (0 for the no-attribute baseline).

    Call: ``G(z [B, Z], pitch_index [B] long in [0, n_pitches), attributes [B, K],
    scale=None, alpha=1.0) -> [B, 2, H_s, W_s]`` with ``(H_s, W_s) = cfg.scale_shape(scale)``;
    ``scale=None`` is the final scale, ``[B, 2, 1024, 32]``. ``alpha`` in [0, 1] is the weight
    of scale ``scale`` while it fades in (``alpha = 0`` gives exactly the previous scale's output,
    nearest-up-sampled). ``attributes`` may be ``None`` when K = 0.

    Raises:
        ValueError: a wrong input shape, pitch index out of range, or a bad scale/alpha.
    """

    def __init__(self, cfg: ModelConfig, n_pitches: int, n_attributes: int):
        super().__init__()
        cfg.validate()
        if n_pitches < 1 or n_attributes < 0:
            raise ValueError(f"n_pitches must be >= 1 and n_attributes >= 0, got {n_pitches}, {n_attributes}")
        self.cfg = cfg
        self.n_pitches, self.n_attributes = int(n_pitches), int(n_attributes)
        #: widths of the input vector's parts (latent, pitch one-hot, condition): :meth:`input_parts`
        self.input_widths = (cfg.latent_dim, self.n_pitches, self.n_attributes)
        self.in_features = sum(self.input_widths)
        ch = cfg.channels
        self.format = FormatLayer(self.in_features, ch[0], cfg.scale_shape(0))
        self.blocks = nn.ModuleList()
        for s in range(cfg.n_scales):
            convs = nn.ModuleList()
            for i in range(cfg.convs_per_block):
                c_in = ch[s - 1] if (s > 0 and i == 0) else ch[s]
                convs.append(EqualizedConv2d(c_in, ch[s], 3, padding=1))
            self.blocks.append(convs)
        self.to_magif = nn.ModuleList(EqualizedConv2d(ch[s], cfg.out_channels, 1) for s in range(cfg.n_scales))
        if self.n_attributes and (cfg.attr_input != "prob" or cfg.mapping_layers):
            self.register_buffer("attr_mean", torch.zeros(self.n_attributes))
            self.register_buffer("attr_std", torch.ones(self.n_attributes))
        if self.n_attributes and cfg.attr_input == "white_logit":
            self.register_buffer("attr_white", torch.eye(self.n_attributes))
        self.mapping = AttributeMapping(cfg, self.n_attributes) if (cfg.mapping_layers and self.n_attributes) else None
        self.film = (AttributeFiLM(ch, cfg.convs_per_block, self.n_attributes, cfg.attr_film_from_scale)
                     if (cfg.attr_film_from_scale >= 0 and self.n_attributes) else None)

    @torch.no_grad()
    def set_attribute_stats(self, mean: torch.Tensor, std: torch.Tensor,
                            white: torch.Tensor | None = None) -> None:
        """Set the training notes' statistics of ``z / T`` (``[K]`` each, ``std > 0``) used by
        ``model.attr_input = "std_logit"`` / ``"white_logit"``, and for ``"white_logit"`` its
        whitening matrix ``white [K, K]``
        (:func:`darkgan.training.terms.attribute_whitening`; None keeps the current one).

        Raises:
            ValueError: this generator does not standardise its attributes, bad stats, or a
                whitening matrix it does not use or of the wrong shape.
        """
        if not hasattr(self, "attr_mean"):
            raise ValueError("set_attribute_stats: this generator has attr_input='prob' (no statistics)")
        mean, std = torch.as_tensor(mean).float().reshape(-1), torch.as_tensor(std).float().reshape(-1)
        if mean.shape != self.attr_mean.shape or std.shape != self.attr_std.shape or not bool((std > 0).all()):
            raise ValueError(f"attribute statistics must be [{self.n_attributes}] with std > 0")
        if white is not None:
            white = torch.as_tensor(white).float()
            if not hasattr(self, "attr_white"):
                raise ValueError(f"set_attribute_stats: a whitening matrix, but attr_input={self.cfg.attr_input!r}")
            if white.shape != self.attr_white.shape or not bool(torch.isfinite(white).all()):
                raise ValueError(f"the whitening matrix must be finite [{self.n_attributes}, {self.n_attributes}]")
            self.attr_white.copy_(white)
        self.attr_mean.copy_(mean), self.attr_std.copy_(std)

    def standardize(self, attributes: torch.Tensor) -> torch.Tensor:
        """``alpha [B, K]`` -> ``(logit(alpha) - attr_mean) / attr_std`` ``[B, K]`` (alpha clamped
        to [1e-6, 1 - 1e-6]): the teacher logit at temperature T, standardised per attribute."""
        return standardize_attributes(attributes, self.attr_mean, self.attr_std).to(attributes.dtype)

    def condition(self, attributes: torch.Tensor) -> torch.Tensor:
        """The attribute part of the input: ``alpha [B, K]`` probabilities -> ``[B, K]``.

        ``attr_input = "prob"``: alpha itself (paper). ``"std_logit"``:
        ``(logit(alpha) - attr_mean) / attr_std`` (alpha clamped to [1e-6, 1 - 1e-6]), i.e. the
        teacher logit at temperature T standardised per attribute over the training notes.
        ``"white_logit"``: that, times the shrinkage whitening ``attr_white [K, K]``.
        """
        if self.cfg.attr_input == "prob" or not self.n_attributes:
            return attributes
        c = self.standardize(attributes)
        if self.cfg.attr_input == "white_logit":
            c = c @ self.attr_white.to(c.dtype)
        return c

    @property
    def n_scales(self) -> int:
        return self.cfg.n_scales

    def output_shape(self, scale: int | None = None) -> tuple[int, int, int]:
        """``(2, H_s, W_s)`` of scale ``scale`` (final scale when ``None``)."""
        s = self.n_scales - 1 if scale is None else scale
        return (self.cfg.out_channels, *self.cfg.scale_shape(s))

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(x, self.cfg.leaky_slope)
        return pixel_norm(x) if self.cfg.pixel_norm else x

    def _up(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        fh, fw = self.cfg.up_factor(scale)
        return F.interpolate(x, scale_factor=(float(fh), float(fw)), mode="nearest")

    def check_inputs(self, z: torch.Tensor, pitch_index: torch.Tensor, attributes: torch.Tensor | None) -> None:
        """Raise ``ValueError`` unless ``z [B, Z]``, ``pitch_index [B]`` (integers in
        ``[0, n_pitches)``) and ``attributes [B, K]`` (``None`` when K = 0) fit this generator."""
        b = z.shape[0]
        assert_shape(z, (None, self.cfg.latent_dim), "z")
        assert_shape(pitch_index, (b,), "pitch_index")
        if pitch_index.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"pitch_index must be an integer tensor, got {pitch_index.dtype}")
        # range check on CPU tensors only: on a GPU it would synchronise every forward pass
        # (the one-hot comparison below gives a zero row there instead)
        if b and pitch_index.device.type == "cpu" and (
                int(pitch_index.min()) < 0 or int(pitch_index.max()) >= self.n_pitches):
            raise ValueError(f"pitch_index out of range [0, {self.n_pitches}): "
                             f"{int(pitch_index.min())}..{int(pitch_index.max())}")
        if self.n_attributes:
            if attributes is None:
                raise ValueError(f"attributes [B, {self.n_attributes}] required")
            assert_shape(attributes, (b, self.n_attributes), "attributes")
        elif attributes is not None and attributes.numel():
            raise ValueError("this generator has no attribute conditioning (n_attributes = 0)")

    def latent(self, z: torch.Tensor, attributes: torch.Tensor | None) -> torch.Tensor:
        """``z [B, Z]`` -> the latent part of the input ``[B, Z]``: pixel-normalised
        (``normalize_latent``), moved by the attribute mapping when there is one (and normalised
        again: back on G's input sphere). Inputs are not checked (:meth:`check_inputs`)."""
        if self.cfg.normalize_latent:
            z = pixel_norm(z)
        if self.mapping is not None and attributes is not None:
            z = self.mapping(z, self.standardize(attributes).to(z.dtype))
            z = pixel_norm(z) if self.cfg.normalize_latent else z
        return z

    def input_parts(self, z: torch.Tensor, pitch_index: torch.Tensor,
                    attributes: torch.Tensor | None) -> list[torch.Tensor]:
        """The input vector's parts, in the format layer's column order: ``[latent [B, Z],
        one-hot pitch [B, P], condition [B, K]]`` (the last only when K > 0 and attributes are
        given). The one home of the conditioning: the eager forward and the compiled copy
        (:mod:`darkgan.compression.fast`) both build their input from it. Not checked."""
        z = self.latent(z, attributes)
        # one-hot as a comparison (export-friendly; the same 0/1 values as F.one_hot)
        onehot = pitch_index.long()[:, None] == torch.arange(self.n_pitches, device=z.device)[None]
        parts = [z, onehot.to(z.dtype)]
        if self.n_attributes and attributes is not None:
            parts.append(self.condition(attributes).to(z.dtype))
        return parts

    def input_vector(self, z: torch.Tensor, pitch_index: torch.Tensor,
                     attributes: torch.Tensor | None) -> torch.Tensor:
        """``[B, Z + P + K]``: normalised z, pitch one-hot and attributes (validated)."""
        self.check_inputs(z, pitch_index, attributes)
        return torch.cat(self.input_parts(z, pitch_index, attributes), dim=1)

    def features(self, z: torch.Tensor, pitch_index: torch.Tensor, attributes: torch.Tensor | None = None,
                 scale: int | None = None) -> list[torch.Tensor]:
        """Every scale block's output up to ``scale`` (final when ``None``), alpha = 1:
        ``[h_0 [B, C_0, H_0, W_0], ..., h_s [B, C_s, H_s, W_s]]`` (feature distillation uses them;
        ``to_magif[s](h_s)`` is the output)."""
        return list(self._trunk(z, pitch_index, attributes, self._check_scale(scale)))

    def _trunk(self, z: torch.Tensor, pitch_index: torch.Tensor, attributes: torch.Tensor | None, s: int):
        """Yield each scale block's output ``h_k`` (k = 0..s) for the validated inputs."""
        self.check_inputs(z, pitch_index, attributes)
        parts = self.input_parts(z, pitch_index, attributes)
        x = self._act(self.format(torch.cat(parts, dim=1)))
        mod = None
        if self.film is not None and len(parts) == 3:
            c = parts[2]
            mod = lambda h, k, i: self.film(h, c, k, i)  # noqa: E731
        return scale_blocks(self.blocks, x, s, self._act, self._up, mod)

    def _check_scale(self, scale: int | None) -> int:
        s = self.n_scales - 1 if scale is None else int(scale)
        if not 0 <= s < self.n_scales:
            raise ValueError(f"scale must be in [0, {self.n_scales}), got {scale}")
        return s

    def forward(self, z: torch.Tensor, pitch_index: torch.Tensor, attributes: torch.Tensor | None = None,
                scale: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        s = self._check_scale(scale)
        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        feats = self._trunk(z, pitch_index, attributes, s)
        prev = None
        for k, x in enumerate(feats):
            if k == s - 1 and alpha < 1.0:
                prev = x
        out = self.to_magif[s](x)
        if prev is not None:
            low = self._up(self.to_magif[s - 1](prev), s)
            out = torch.lerp(low.to(out.dtype), out, alpha)  # dtypes differ under autocast
        return out

    @torch.no_grad()
    def copy_conditioning_from(self, other: "Generator") -> None:
        """Take ``other``'s attribute statistics and attribute mapping (a pruned, distilled or
        grafted generator sees the same standardised input as its source).

        Raises:
            ValueError: this generator lacks the statistics or the mapping ``other`` has.
        """
        if hasattr(other, "attr_mean"):
            self.set_attribute_stats(other.attr_mean, other.attr_std, getattr(other, "attr_white", None))
        if getattr(other, "mapping", None) is not None:
            if self.mapping is None:
                raise ValueError("copy_conditioning_from: this generator has no attribute mapping")
            self.mapping.load_state_dict(other.mapping.state_dict())

    def input_stage(self) -> "Generator":
        """A copy of this generator without its layers (format, blocks, to-MAG-IF): only what
        :meth:`input_parts` needs (attribute statistics and mapping). For the compiled copies
        that fold the layers their own way (:mod:`darkgan.compression.fast`)."""
        saved = dict(self._modules)
        for name in ("format", "blocks", "to_magif", "film"):
            self._modules.pop(name, None)
        try:
            return copy.deepcopy(self)
        finally:
            self._modules.clear()
            self._modules.update(saved)

    @staticmethod
    def upsample_to(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """Nearest up-sampling of ``[B, C, h, w]`` to ``[B, C, *shape]`` (for previews of a
        checkpoint trained only up to a coarser scale)."""
        return F.interpolate(x, size=tuple(shape), mode="nearest")


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (all scales)."""
    return sum(p.numel() for p in module.parameters())
