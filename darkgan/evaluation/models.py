"""The generators an evaluation scores: :class:`EvalModel` (what the runner needs) and its
adapter over :class:`darkgan.generation.api.DarkGAN`."""
from __future__ import annotations

import abc
import hashlib
from pathlib import Path

import numpy as np

from darkgan.errors import DarkGANError


class EvalModel(abc.ABC):
    """What the runner needs from a generator (see :class:`DarkGANModel`).

    Attributes: ``name``, ``key`` (fingerprint of the weights and of what else decides the notes),
    ``attributes`` (K names, [] for the baseline), ``class_indices`` ([K] teacher columns),
    ``temperature``, ``pitch_range``, ``latent_dim``, ``teacher_id``, ``info`` (dict for the report),
    ``scale_logits`` (``[M, K]`` reference teacher logits of the user scale,
    :class:`darkgan.generation.scale.AttributeScale`; ``None``: the dataset's validation labels are
    used), ``uses_notes`` (``True``: :meth:`generate`
    also receives the conditioning notes themselves, ``notes={"instrument_str": [n] str,
    "velocity": [n] int}``, e.g. SING, which plays a named instrument at a velocity;
    :meth:`darkgan.evaluation.context.EvalContext.generate` passes them).
    """

    scale_logits: np.ndarray | None = None
    uses_notes: bool = False
    #: ``[K]`` std of ``logit(alpha)`` over the training notes for a generator whose input is
    #: standardised logits: the unit of its Figure 2-3 increments
    #: (:func:`darkgan.evaluation.metrics.correlation.shift_attribute`); None: probabilities (paper)
    input_std: np.ndarray | None = None

    name: str
    key: str
    attributes: list[str]
    class_indices: list[int]
    temperature: float
    pitch_range: tuple[int, int]
    latent_dim: int
    teacher_id: str | None
    info: dict

    @property
    def has_attributes(self) -> bool:
        return bool(self.attributes)

    @abc.abstractmethod
    def generate(self, z: np.ndarray, pitch: np.ndarray, attributes: np.ndarray | None) -> np.ndarray:
        """``z [n, Z]``, MIDI ``pitch [n]``, ``attributes [n, K]`` -> waves ``[n, 16000]`` float32."""


class DarkGANModel(EvalModel):
    """Adapter over :class:`darkgan.generation.api.DarkGAN` (its ``generate_batch``)."""

    def __init__(self, path: str | Path | None, device: str = "cpu", name: str | None = None,
                 batch_size: int | None = None):
        from darkgan.generation.api import DarkGAN
        from darkgan.utils.io import sha256_file

        self.g = DarkGAN.load(path, device=device)
        cfg = self.g.config
        self.path = Path(cfg.path) if cfg.path else None
        # the folder the user named (a run folder, not its checkpoint-NNN sub-folder)
        self.name = name or (Path(path).resolve().name if path is not None else
                             (self.path.name if self.path else "shipped"))
        files = sorted(self.path.glob("generator*.safetensors")) if self.path else []
        h = hashlib.sha256()
        for f in files:
            h.update(sha256_file(f).encode())
        h.update(self.g.synthesis_fingerprint.encode())  # the same weights with another fade: other notes
        self.key = h.hexdigest()[:16]
        self.attributes = list(self.g.attributes)
        self.class_indices = [int(i) for i in cfg.class_indices] if self.attributes else []
        self.temperature = float(cfg.temperature)
        self.pitch_range = tuple(int(v) for v in cfg.pitch_range)
        self.latent_dim = int(self.g.latent_dim)
        self.teacher_id = str(cfg.teacher.get("id", "")) or None
        self.batch_size = batch_size
        self.scale_logits = self.g.bank.logits if self.g.bank is not None else None
        gen = self.g.generator
        if self.attributes and gen.cfg.attr_input != "prob":
            self.input_std = gen.attr_std.detach().cpu().numpy().astype(np.float64)
        self.info = {"name": self.name, "path": str(self.path), "key": self.key,
                     "preset": getattr(cfg.config, "preset", None), "temperature": self.temperature,
                     "attributes": len(self.attributes), "pitch_range": list(self.pitch_range),
                     "step": cfg.step, "scale": cfg.scale, "weights": cfg.generator_weights,
                     "teacher": dict(cfg.teacher)}

    def generate(self, z, pitch, attributes):
        w = self.g.generate_batch(z, pitch, attributes if self.has_attributes else None,
                                  batch_size=self.batch_size)
        return w.numpy().astype(np.float32)


def check_compatible(models: list[EvalModel]) -> None:
    """All generators of one report share the pitch range, and those with attributes share the
    vocabulary (names, order and teacher).

    Raises:
        DarkGANError: naming the two checkpoints and what differs.
    """
    if not models:
        raise DarkGANError("no checkpoints to evaluate")
    ref = models[0]
    for m in models[1:]:
        if m.pitch_range != ref.pitch_range:
            raise DarkGANError(f"checkpoints {ref.name} and {m.name} have different pitch ranges "
                               f"{ref.pitch_range} vs {m.pitch_range}; evaluate them in separate reports")
    att = [m for m in models if m.has_attributes]
    for m in att[1:]:
        if m.attributes != att[0].attributes or m.teacher_id != att[0].teacher_id:
            diff = sorted(set(m.attributes) ^ set(att[0].attributes))[:3]
            raise DarkGANError(f"checkpoints {att[0].name} and {m.name} have different attribute vocabularies "
                               f"({len(att[0].attributes)} vs {len(m.attributes)} attributes"
                               + (f", e.g. {diff}" if diff else ", same names in another order or teacher") +
                               "); evaluate them in separate reports")
