"""Export a generator as one graph ``(z, pitch, attributes) -> waveform`` (issue 6, item 4).

``darkgan export --checkpoint PATH --format onnx|torchscript [--quantize int8|fp16] --out FILE``

The graph (:class:`SynthGraph`) is the inference-optimised generator
(:mod:`darkgan.compression.fast`: folded equalized-LR scales, format layer as a linear layer,
polyphase up-sampling convolutions), the de-normalisation, and the MAG-IF inverse written with
matrix products (:class:`darkgan.compression.istft.MatmulISTFT`): ONNX has no inverse-STFT
operator, and its ``DFT`` operator is missing from some runtimes and quantizers, so the inverse
is ``[re | im] @ B`` with the precomputed windowed inverse-DFT basis, overlap-add by shifted
adds and the window-sum division. This keeps the file self-contained (no post-processing to
ship), at 134 M extra multiply-adds per note (the cost of ``torch.istft`` is ~2 M).

Inputs and output (batch size dynamic)::

    z           [B, Z]  float32   noise ~ N(0, I)
    pitch       [B]     int64     MIDI pitch within the checkpoint's range (metadata pitch_range)
    attributes  [B, K]  float32   attribute values in [0, 1] (absent for a baseline, K = 0)
    wave        [B, 16000] float32  16 kHz waveform (not limited/clipped)

ONNX files carry metadata (``metadata_props``): darkgan version, attributes (JSON), pitch_range,
sample_rate, normalizer, source checkpoint, quantization.

Quantization:

- ``int8`` (ONNX only): ONNX Runtime dynamic quantization (``quantize_dynamic``, int8 weights,
  activations quantized at run time) of the generator's 3x3 convolutions; the format layer,
  the output 1x1 convolution and the inverse-DFT MatMul stay float32 (:func:`float_node_names`:
  the first and last layers set the log magnitude's precision directly, and int8 rounding of
  the inverse's 2048-term sums would add noise to every sample);
- ``int8-static`` (ONNX only): ONNX Runtime static quantization in QDQ format (int8 weights per
  output channel, int8 activations with ranges calibrated by min/max on ``calibration_notes``
  generated notes whose conditioning comes from ``calibration_data`` (a labelled dataset), else
  the checkpoint's attribute bank, else uniform values); only the 3x3 convolutions are
  quantized, the same nodes as for ``int8`` stay float32. Runs as ``QLinearConv`` (fast on CPUs
  with VNNI); no per-call range computation, unlike ``int8``;
- ``fp16``: ONNX: ``onnxruntime.transformers.float16`` converts the generator's nodes, inputs,
  outputs and the inverse stay float32; TorchScript: the generator runs in ``torch.half`` where
  the device supports it (the CPU kernels are slow; meant for GPUs), the inverse in float32.

Errors (:class:`DarkGANError`): output exists (unless ``force``), unknown format/quantization,
int8 with TorchScript, a checkpoint of another format version (:class:`CheckpointError` from
the loader). Files are written atomically (temporary file in the target folder, then renamed).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from darkgan.data.magif import without_infrasound
from darkgan.errors import DarkGANError

FORMATS = ("onnx", "torchscript")
QUANTIZATIONS = (None, "int8", "int8-static", "fp16")
OPSET = 17


class SynthGraph(nn.Module):
    """``(z [B, Z], pitch [B] int64 MIDI, attributes [B, K]) -> wave [B, 16000]`` for export.

    Args:
        gen: the eager :class:`~darkgan.models.generator.Generator` (final scale).
        normalizer: the checkpoint's :class:`~darkgan.data.magif.Normalizer`.
        pitch_lo: lowest MIDI pitch (``pitch_index = pitch - pitch_lo``).
        matmul_istft: in-graph matmul inverse (export) or ``torch.istft`` (eager).
        half: run the generator in float16 (the inverse stays float32).
    """

    def __init__(self, gen: nn.Module, normalizer, pitch_lo: int, matmul_istft: bool = True, half: bool = False):
        super().__init__()
        from darkgan.compression.fast import fast_generator
        from darkgan.compression.istft import MatmulISTFT

        self.generator = fast_generator(gen, channels_last=False, polyphase=True).set_inplace(False)
        self.half_precision = half
        if half:
            self.generator.half()
        self.has_attributes = gen.n_attributes > 0
        self.pitch_lo = int(pitch_lo)
        self.register_buffer("mean", torch.tensor(normalizer.mean, dtype=torch.float32).view(1, 2, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(normalizer.std, dtype=torch.float32).view(1, 2, 1, 1), persistent=False)
        self.inverse = MatmulISTFT() if matmul_istft else None
        from darkgan.data.magif import N_SAMPLES, fade_out

        # the checkpoint's fade-out (darkgan.data.magif.magif_to_note) as one multiply, export-friendly
        self.register_buffer("fade", fade_out(torch.ones(1, N_SAMPLES), gen.cfg.synthesis_fade), persistent=False)

    def forward(self, z: torch.Tensor, pitch: torch.Tensor, attributes: torch.Tensor | None = None) -> torch.Tensor:
        dt = torch.float16 if self.half_precision else torch.float32
        idx = pitch.long() - self.pitch_lo
        x = self.generator(z.to(dt), idx, attributes.to(dt) if attributes is not None else None)
        x = without_infrasound(x.float() * self.std + self.mean)  # as magif_to_note
        if self.inverse is not None:
            return self.inverse(x) * self.fade
        from darkgan.data.magif import magif_to_wave

        return magif_to_wave(x) * self.fade


def example_inputs(gen: nn.Module, pitch_lo: int, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Deterministic example inputs ``(z, pitch[, attributes])`` for tracing and parity checks."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, gen.cfg.latent_dim, generator=g)
    pitch = pitch_lo + torch.randint(0, gen.n_pitches, (batch,), generator=g)
    if gen.n_attributes:
        return z, pitch, torch.rand(batch, gen.n_attributes, generator=g)
    return z, pitch


@contextlib.contextmanager
def _tmp_beside(path: Path, suffix: str):
    """A temporary file name in ``path``'s folder (removed on error)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise DarkGANError(f"{out}: output file exists; choose another --out or pass --force")
    if out.exists() and out.is_dir():
        raise DarkGANError(f"{out}: is a folder; --out names the exported file")


def _metadata(ckpt_cfg, fmt: str, quantize: str | None) -> dict[str, str]:
    from darkgan.version import __version__

    return {"darkgan_version": __version__, "kind": "darkgan-synth-graph", "format": fmt,
            "quantization": quantize or "none", "attributes": json.dumps(list(ckpt_cfg.attributes)),
            "pitch_range": json.dumps(list(ckpt_cfg.pitch_range)), "sample_rate": "16000",
            "normalizer": json.dumps(ckpt_cfg.normalizer), "source_checkpoint": str(ckpt_cfg.path),
            "latent_dim": str(ckpt_cfg.config.model.latent_dim), "inputs": "z, pitch (MIDI int64), attributes",
            "output": "wave [B, 16000] float32"}


def istft_node_names(model) -> list[str]:
    """Names of the ONNX nodes of the in-graph inverse (scope ``/inverse/``)."""
    return [n.name for n in model.graph.node if n.name.startswith("/inverse/")]


def float_node_names(model) -> list[str]:
    """Nodes kept in float32 by int8 quantization: the inverse, the format layer (the
    generator's first products, ``/generator/Gemm``, ``/generator/MatMul*``) and the output
    1x1 convolution (``/generator/to_magif/``): first and last layers set the output's
    log-magnitude precision directly, and are cheap."""
    keep = []
    for n in model.graph.node:
        name = n.name
        if name.startswith("/inverse/") or name.startswith("/generator/to_magif/") or \
                (name.count("/") == 2 and name.startswith("/generator/") and n.op_type in ("Gemm", "MatMul")):
            keep.append(name)
    return keep


def repair_graph(model):
    """Make a converted graph valid: unique node names and topological node order.

    ``onnxruntime.transformers.float16`` (depending on its version) names two inserted Cast
    nodes alike or appends them after their consumers; ONNX requires neither to happen.
    """
    seen: dict[str, int] = {}
    for n in model.graph.node:
        if n.name in seen:
            seen[n.name] += 1
            n.name = f"{n.name}__{seen[n.name]}"
        else:
            seen[n.name] = 0
    available = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    pending = list(model.graph.node)
    ordered = []
    while pending:
        rest = []
        for n in pending:
            if all(i in available for i in n.input):
                ordered.append(n)
                available.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise DarkGANError("exported graph has a cycle or a missing input; cannot order it")
        pending = rest
    nodes = [type(ordered[0])() for _ in ordered]
    for dst, src in zip(nodes, ordered):
        dst.CopyFrom(src)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def export_onnx_graph(graph: SynthGraph, inputs: tuple[torch.Tensor, ...], path: Path) -> None:
    """Trace ``graph`` to ONNX opset 17 at ``path`` (dynamic batch), TorchScript-based exporter."""
    names = ["z", "pitch", "attributes"][:len(inputs)]
    dyn = {n: {0: "batch"} for n in names}
    dyn["wave"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, inputs, str(path), dynamo=False, input_names=names, output_names=["wave"],
                          dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=True)


class _CalibrationReader:
    """ONNX Runtime calibration batches drawn from real conditioning (``CalibrationDataReader``
    protocol: ``get_next() -> dict | None``, ``rewind()``).

    Each batch: ``{"z": [b, Z] float32 ~ N(0, I), "pitch": [b] int64 MIDI numbers, "attributes":
    [b, K] float32 in [0, 1]}`` (no ``attributes`` for a baseline), ``b <= batch``, ``n`` notes in
    all; pitches and attributes from :func:`darkgan.compression.conditioning.condition_pool`
    (``data``, else the checkpoint's attribute bank, else uniform).

    Raises:
        DarkGANError / DataError: ``data`` given but unusable as a conditioning source.
    """

    def __init__(self, ckpt_cfg, data, n: int, batch: int = 16, seed: int = 0):
        import numpy as np

        from darkgan.compression.conditioning import condition_pool, uniform_pool

        try:
            pool = condition_pool(ckpt_cfg, data, "auto")
        except DarkGANError:
            if data is not None:
                raise
            pool = uniform_pool(ckpt_cfg)
        self.source = pool.source
        rng = np.random.default_rng([seed, 17])
        self.batches, self.next = [], 0
        for s in range(0, n, batch):
            b = min(batch, n - s)
            p_idx, alpha = pool.sample(b, rng)
            feed = {"z": rng.standard_normal((b, ckpt_cfg.config.model.latent_dim)).astype(np.float32),
                    "pitch": (p_idx.numpy() + ckpt_cfg.pitch_range[0]).astype(np.int64)}
            if ckpt_cfg.attributes_enabled and ckpt_cfg.n_attributes:
                feed["attributes"] = alpha.numpy()
            self.batches.append(feed)

    def get_next(self):
        if self.next >= len(self.batches):
            return None
        self.next += 1
        return self.batches[self.next - 1]

    def rewind(self):
        self.next = 0


def export(checkpoint: str | os.PathLike, out: str | os.PathLike, fmt: str = "onnx", quantize: str | None = None,
           force: bool = False, calibration_data: str | os.PathLike | None = None,
           calibration_notes: int = 256) -> Path:
    """Export ``checkpoint`` to ``out`` (see the module docstring).

    Args:
        calibration_data: for ``int8-static``: a labelled dataset folder whose conditioning
            calibrates the activation ranges (default: the checkpoint's attribute bank).
        calibration_notes: notes generated for calibration.

    Returns:
        the written file.

    Raises:
        DarkGANError: existing output without ``force``; unknown format or quantization; int8
            requested for TorchScript; ``calibration_notes`` < 1; ``calibration_data`` not a
            labelled dataset. CheckpointError: missing, corrupt or other-version checkpoint.
    """
    from darkgan.models.checkpoint import load_generator

    _check_request(fmt, quantize, calibration_notes)
    out = Path(out)
    _check_out(out, force)
    gen, ckpt = load_generator(checkpoint, "cpu")
    graph = SynthGraph(gen, ckpt.get_normalizer(), ckpt.pitch_range[0], matmul_istft=(fmt == "onnx"),
                       half=(quantize == "fp16" and fmt == "torchscript")).eval()
    inputs = example_inputs(gen, ckpt.pitch_range[0])
    meta = _metadata(ckpt, fmt, quantize)
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(graph, inputs, check_trace=False)
        with _tmp_beside(out, ".pt") as tmp:
            torch.jit.save(traced, str(tmp), _extra_files={"darkgan.json": json.dumps(meta)})
            os.replace(tmp, out)
        return out

    import onnx

    with _tmp_beside(out, ".onnx") as tmp, _tmp_beside(out, ".q.onnx") as tmp_q:
        with torch.no_grad():
            export_onnx_graph(graph, inputs, tmp)
        model = onnx.load(str(tmp))
        final = tmp
        if quantize in ("int8", "int8-static"):
            _quantize_onnx(model, tmp, tmp_q, quantize, meta, ckpt, calibration_data, calibration_notes)
            model, final = onnx.load(str(tmp_q)), tmp_q
        elif quantize == "fp16":
            model = _onnx_fp16(model)
        for k, v in meta.items():
            p = model.metadata_props.add()
            p.key, p.value = k, v
        onnx.save(model, str(final))
        os.replace(final, out)
    return out


def _check_request(fmt: str, quantize: str | None, calibration_notes: int) -> None:
    """Raise :class:`DarkGANError` for an unknown format or quantization, or a bad combination."""
    if fmt not in FORMATS:
        raise DarkGANError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if quantize not in QUANTIZATIONS:
        raise DarkGANError(f"--quantize {quantize!r}: choose int8, int8-static or fp16")
    if fmt == "torchscript" and quantize in ("int8", "int8-static"):
        raise DarkGANError("--quantize int8 is supported for --format onnx (ONNX Runtime dynamic quantization); "
                           "PyTorch's dynamic int8 covers no convolutions")
    if quantize == "int8-static" and calibration_notes < 1:
        raise DarkGANError(f"--calibration-notes {calibration_notes}: must be >= 1")


def _quantize_onnx(model, src: Path, dst: Path, quantize: str, meta: dict, ckpt, calibration_data,
                   calibration_notes: int) -> None:
    """ONNX Runtime int8 quantization of ``src`` into ``dst``: dynamic (``int8``) or static with
    calibration notes (``int8-static``, QDQ, convolutions only); the inverse STFT stays float."""
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=float_node_names(model))
        return
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    reader = _CalibrationReader(ckpt, calibration_data, calibration_notes)
    meta["calibration"] = f"{calibration_notes} notes, conditioning: {reader.source}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(str(src), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=float_node_names(model))


def _onnx_fp16(model):
    """The ONNX model in float16 (inputs and outputs, and the inverse STFT, kept float32)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_float_to_float16(model, keep_io_types=True, node_block_list=istft_node_names(model))
    model = repair_graph(model)
    onnx.checker.check_model(model)
    return model


def load_onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session for an exported file (``intra_op_num_threads = threads``)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_onnx(session, inputs: tuple[torch.Tensor, ...]):
    """Run an exported graph on ``(z, pitch[, attributes])``; returns ``wave [B, 16000]`` numpy."""
    names = [i.name for i in session.get_inputs()]
    feed = {n: t.numpy() for n, t in zip(names, inputs)}
    return session.run(["wave"], feed)[0]
