"""The synthesiser: ``(z [b, Z], pitch index [b], alpha [b, K])`` -> 16 kHz notes ``[b, 16000]``.

The generator (paper Sec. 4.3.2) outputs normalised MAG-IF ``[b, 2, 1024, 32]``; it is
de-normalised with the checkpoint's statistics and inverted to a waveform
(:func:`darkgan.data.magif.magif_to_note`: phase = pi cumsum(IF), inverse STFT, the data's fade-out). A checkpoint
saved before the last scale generates at its scale and is up-sampled (a preview).

The *limiter* (:func:`limit_peaks`) is a per-note gain, never a clip or a soft-clip: a note
whose absolute peak exceeds 1.0 is divided by its peak; notes within [-1, 1] are untouched.
Every such note is counted (:class:`OutputStats`), and so are silent notes (RMS below
``SILENCE_DB``) and non-finite ones.
"""
from __future__ import annotations

import numbers
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from darkgan.errors import DarkGANError
from darkgan.generation.conditioning import GenerationWarning

#: Notes per generator call by device type (bounded memory). On the 2-core CPU small batches are
#: faster per note (activations of a 64-note batch spill the cache; measured for ``small``, 1 thread:
#: 6.3 / 6.1 / 3.5 / 3.2 notes/s at batch 1 / 4 / 16 / 64); on an H100 ``paper`` runs ~2 200-2 800
#: notes/s at batch 64-256 (benchmarks/bench_generate.py).
DEFAULT_BATCH = {"cpu": 4, "cuda": 128}
#: RMS (dBFS) below which a generated note is reported as silent.
SILENCE_DB = -60.0


def as_int(value, what: str) -> int:
    """An integer from an int-like value (integral floats too). Raises DarkGANError otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise DarkGANError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        return int(value)
    raise DarkGANError(f"{what} must be an integer, got {value!r}")


@dataclass
class OutputStats:
    """Counts over generated notes (never silently corrected).

    Attributes:
        n: notes generated.
        peak_normalised: notes whose peak exceeded 1.0 and were divided by it.
        max_peak: the largest absolute peak before limiting.
        silent: notes with RMS below ``SILENCE_DB``.
        nonfinite: notes holding NaN or inf.
    """

    n: int = 0
    peak_normalised: int = 0
    max_peak: float = 0.0
    silent: int = 0
    nonfinite: int = 0

    def add(self, other: "OutputStats") -> None:
        self.n += other.n
        self.peak_normalised += other.peak_normalised
        self.max_peak = max(self.max_peak, other.max_peak)
        self.silent += other.silent
        self.nonfinite += other.nonfinite


def limit_peaks(wave: torch.Tensor) -> tuple[torch.Tensor, OutputStats]:
    """The limiter: divide every note of ``wave [B, T]`` whose absolute peak exceeds 1 by its peak.

    Returns ``(limited [B, T] within [-1, 1], stats)``. Non-finite rows are left as they are and
    counted; silent rows (RMS < -60 dBFS) are counted.
    """
    finite = torch.isfinite(wave).all(dim=1)
    safe = torch.where(torch.isfinite(wave), wave, torch.zeros((), dtype=wave.dtype, device=wave.device))
    peak = safe.abs().amax(dim=1)
    over = finite & (peak > 1.0)
    gain = torch.where(over, 1.0 / peak.clamp_min(1.0), torch.ones_like(peak))
    out = (wave * gain[:, None]).clamp(-1.0, 1.0) if bool(over.any()) else wave
    if not bool(finite.all()):
        out = torch.where(finite[:, None], out, wave)  # keep NaN visible
    rms = safe.double().pow(2).mean(dim=1).sqrt()
    silent = finite & (rms < 10 ** (SILENCE_DB / 20))
    stats = OutputStats(n=int(wave.shape[0]), peak_normalised=int(over.sum()),
                        max_peak=float(peak[finite].max()) if bool(finite.any()) else float("nan"),
                        silent=int(silent.sum()), nonfinite=int((~finite).sum()))
    return out, stats


class Synthesiser:
    """A loaded generator and its output path (de-normalisation, inverse STFT, limiter).

    Args:
        generator: the :class:`darkgan.models.generator.Generator` (on ``device``).
        cfg: its :class:`darkgan.models.checkpoint.CheckpointConfig` (normaliser, scale, alpha).
        device: a ``torch.device``.
    """

    def __init__(self, generator, cfg, device: torch.device):
        self.generator = generator
        self.device = device
        self.normalizer = cfg.get_normalizer()
        n_scales = generator.n_scales
        self.scale = min(int(cfg.scale), n_scales - 1) if cfg.scale is not None else n_scales - 1
        self.alpha = float(cfg.alpha) if self.scale > 0 else 1.0
        if self.scale < n_scales - 1:
            warnings.warn(f"{cfg.path}: checkpoint trained up to scale {self.scale} of {n_scales}; notes are "
                          "generated at that resolution and up-sampled (a preview, not final quality)",
                          GenerationWarning, stacklevel=4)

    @property
    def latent_dim(self) -> int:
        return int(self.generator.cfg.latent_dim)

    def batch_size(self, batch_size) -> int:
        """Notes per generator call (``None``: ``DEFAULT_BATCH`` of the device type).

        Raises:
            DarkGANError: not an integer >= 1.
        """
        if batch_size is None:
            return DEFAULT_BATCH.get(self.device.type, 16)
        bs = as_int(batch_size, "batch_size")
        if bs < 1:
            raise DarkGANError(f"batch_size must be >= 1, got {bs}")
        return bs

    def magif(self, z: torch.Tensor, pitch_index: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
        """One chunk on the device: ``z [b, Z]``, ``pitch_index [b]`` long, ``alpha [b, K]`` (or
        None for the baseline) -> de-normalised MAG-IF ``[b, 2, 1024, 32]`` float32 (channel 0: log
        magnitude, natural log; channel 1: instantaneous frequency, in units of pi rad per hop),
        up-sampled to full size when the checkpoint stopped at a lower scale."""
        from darkgan.data.magif import N_BINS, N_FRAMES

        dev = self.device
        x = self.generator(z.to(dev), pitch_index.to(dev), None if alpha is None else alpha.to(dev),
                           scale=self.scale, alpha=self.alpha)
        if tuple(x.shape[-2:]) != (N_BINS, N_FRAMES):
            x = self.generator.upsample_to(x, (N_BINS, N_FRAMES))
        return self.normalizer.denormalize(x.float())

    def wave(self, z: torch.Tensor, pitch_index: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
        """One chunk, as :meth:`magif`, -> raw waveform ``[b, 16000]`` at 16 kHz (before the limiter),
        faded out over its last ``model.synthesis_fade`` samples (:func:`darkgan.data.magif.magif_to_note`;
        64 ms, the data's fade, unless the checkpoint says otherwise)."""
        from darkgan.data.magif import magif_to_note

        return magif_to_note(self.magif(z, pitch_index, alpha), self.generator.cfg.synthesis_fade)

    def run(self, z: torch.Tensor, pitch_index: torch.Tensor, alpha: torch.Tensor | None, batch_size: int,
            limit: bool = True) -> tuple[torch.Tensor, OutputStats]:
        """All notes in chunks of ``batch_size``: ``([n, 16000] float32 CPU, stats)``; with
        ``limit`` the limiter is applied (non-finite notes are left as they are and counted)."""
        from darkgan.data.magif import N_SAMPLES

        n = z.shape[0]
        out = torch.empty((n, N_SAMPLES), dtype=torch.float32)
        stats = OutputStats()
        with torch.inference_mode():
            for s in range(0, n, batch_size):
                w = self.wave(z[s:s + batch_size], pitch_index[s:s + batch_size],
                              None if alpha is None else alpha[s:s + batch_size])
                w_lim, st = limit_peaks(w)
                stats.add(st)
                out[s:s + batch_size] = (w_lim if limit else w).cpu()
        return out, stats
