"""The teacher interface shared by every AudioSet tagger.

A :class:`Teacher` maps 16 kHz mono waveforms to AudioSet class logits (the teacher's "dark
knowledge", DarkGAN paper Sec. 3) and to an embedding. Subclasses implement :meth:`_forward`;
this class handles input conversion, the input level, batching, devices and gradients.

Input level (one rule everywhere the teacher is used: ``label``, ``tag``, evaluation): every
clip is peak-normalised to -1 dBFS (peak 0.891) before the tagger sees it, *inside*
:meth:`Teacher.logits` / :meth:`Teacher.embedding` (:func:`peak_normalize`). The taggers'
log-mel front ends are not level invariant (``log(x + 1e-5)`` and the fixed ``(x + 4.5) / 5``),
so the same note at -1 dBFS and at -30 dBFS gets different scores; SoundFont renders and GAN
outputs vary widely in level, and the reference measurement of this pipeline (hit rates in
docs/teacher.md) used peak-normalised 1 s notes. Near-silent clips (peak below 1e-5, -100 dBFS)
are scaled by at most 1/1e-5 rather than blown up to full scale. ``normalize=False`` at
construction turns this off (for experiments only).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from darkgan.errors import DarkGANError

#: Target peak of :func:`peak_normalize`: -1 dBFS.
PEAK_DBFS = -1.0
#: Peaks below this are treated as this value (no more than +100 dB of gain).
PEAK_FLOOR = 1e-5


def peak_normalize(wave: torch.Tensor, dbfs: float = PEAK_DBFS, floor: float = PEAK_FLOOR) -> torch.Tensor:
    """Scale each row of ``wave [B, T]`` so that its absolute peak is ``dbfs`` (differentiable).

    ``gain = 10^(dbfs/20) / max(peak, floor)``; works for numpy-converted float32 tensors on any
    device. Source: this project's input-level rule (module docstring).
    """
    peak = wave.detach().abs().amax(dim=-1, keepdim=True).clamp_min(floor)
    return wave * (10.0 ** (dbfs / 20.0) / peak)


class Teacher:
    """An AudioSet tagger with a fixed, documented input convention.

    Attributes:
        id: registry name (``"efficientat-mn04"``, ``"panns-cnn14"``, ``"yamnet"``); label files
            are ``DIR/labels/<id>.npz``.
        class_names: ``list[str]`` AudioSet display names, in output order.
        class_mids: ``list[str]`` AudioSet machine ids (``/m/...``), same order.
        num_classes: ``C`` (527, or 521 for YAMNet).
        weights_sha256: SHA-256 of the weights file in use ("" for random weights).
        embedding_dim: ``D`` of :meth:`embedding`.
        sample_rate: 16000, the rate every method expects.
        device: ``torch.device`` where the model runs.
        supports_grad: whether ``grad=True`` is possible.
        normalize: apply :func:`peak_normalize` (default True).
        batch_size: clips per forward pass when ``grad=False`` (inputs are split into chunks).
    """

    id: str = ""
    sample_rate: int = 16000
    supports_grad: bool = True

    def __init__(self, class_names: Sequence[str], class_mids: Sequence[str], weights_sha256: str,
                 embedding_dim: int, device: str | torch.device = "cpu", normalize: bool = True,
                 batch_size: int = 64):
        self.class_names = list(class_names)
        self.class_mids = list(class_mids)
        self.num_classes = len(self.class_names)
        self.weights_sha256 = weights_sha256
        self.embedding_dim = int(embedding_dim)
        self.device = torch.device(device)
        self.normalize = normalize
        self.batch_size = int(batch_size)

    # -- subclasses ---------------------------------------------------------------------------
    def _forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``wave [B, T]`` float32 on ``self.device``, already level-normalised ->
        ``(logits [B, C], embedding [B, D])``."""
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------------
    def _as_batch(self, wave) -> torch.Tensor:
        if isinstance(wave, np.ndarray):
            wave = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        elif not isinstance(wave, torch.Tensor):
            raise DarkGANError(f"teacher input must be a numpy array or torch tensor, got {type(wave).__name__}")
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        if wave.dim() != 2:
            raise DarkGANError(f"teacher input must be [B, T] (16 kHz mono), got shape {tuple(wave.shape)}")
        if wave.shape[-1] < 1024:
            raise DarkGANError(f"teacher input too short: {wave.shape[-1]} samples (need >= 1024 at 16 kHz)")
        return wave.to(self.device, torch.float32)

    def _run(self, wave, grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._as_batch(wave)
        if grad:
            if not self.supports_grad:
                raise DarkGANError(f"teacher {self.id} has no gradient support (grad=True); use efficientat-mn04")
            if self.normalize:
                x = peak_normalize(x)
            return self._forward(x)
        outs_l, outs_e = [], []
        with torch.inference_mode():
            for start in range(0, x.shape[0], max(1, self.batch_size)):
                xb = x[start:start + self.batch_size]
                if self.normalize:
                    xb = peak_normalize(xb)
                lg, emb = self._forward(xb)
                outs_l.append(lg)
                outs_e.append(emb)
        return torch.cat(outs_l), torch.cat(outs_e)

    def logits(self, wave, grad: bool = False) -> torch.Tensor:
        """Class logits ``[B, C]`` float32 on ``self.device`` for ``wave [B, T]`` (or ``[T]``).

        ``wave``: float32 mono at 16 kHz in [-1, 1] (numpy or torch); any length >= 1024
        samples (1 s notes: 16000). Peak-normalised to -1 dBFS first (see module docstring).
        ``grad=False`` (default): no autograd graph, chunked by ``batch_size``; ``grad=True``:
        differentiable with respect to ``wave`` (teacher weights stay frozen).

        Raises:
            DarkGANError: bad shape/type, or ``grad=True`` on a teacher without gradients.
        """
        return self._run(wave, grad)[0]

    def probabilities(self, wave, temperature: float = 1.0, grad: bool = False) -> torch.Tensor:
        """``sigmoid(logits / T)`` ``[B, C]`` in (0, 1) (DarkGAN paper Eq. 1, multi-label).

        Raises:
            DarkGANError: ``temperature <= 0`` (or as :meth:`logits`).
        """
        if temperature <= 0:
            raise DarkGANError(f"temperature must be > 0, got {temperature}")
        return torch.sigmoid(self.logits(wave, grad=grad) / temperature)

    def embedding(self, wave, grad: bool = False) -> torch.Tensor:
        """Clip embedding ``[B, D]`` float32 (see each teacher's ``embedding_dim`` docs)."""
        return self._run(wave, grad)[1]

    def logits_and_embedding(self, wave, grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Both outputs of one forward pass: ``([B, C], [B, D])``."""
        return self._run(wave, grad)

    def top(self, wave, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """Top-``k`` classes per clip: ``[[(index, display name, probability), ...], ...]``."""
        p = self.probabilities(wave).cpu()
        vals, idx = p.topk(min(k, self.num_classes), dim=1)
        return [[(int(i), self.class_names[int(i)], float(v)) for v, i in zip(vr, ir)]
                for vr, ir in zip(vals, idx)]

    def describe(self) -> dict:
        """Metadata written next to labels: id, weights, input convention."""
        return {
            "teacher": self.id,
            "weights_sha256": self.weights_sha256,
            "num_classes": self.num_classes,
            "embedding_dim": self.embedding_dim,
            "input": {
                "sample_rate": self.sample_rate,
                "normalization": f"peak {PEAK_DBFS:g} dBFS per clip" if self.normalize else "none",
            },
        }

    def __repr__(self) -> str:
        return f"<Teacher {self.id} C={self.num_classes} D={self.embedding_dim} device={self.device}>"
