"""SING as a row of ``darkgan evaluate`` (beside DarkGAN and the real notes).

The evaluation conditions every model on the same notes: ``n`` validation (or training) notes of
the dataset drawn with replacement (:func:`darkgan.evaluation.context.make_plan`). DarkGAN gets
their pitch and teacher attributes; SING, which knows instruments by name and velocities instead
of attributes, gets (:class:`SingModel`, :func:`stand_in_instruments`):

- **pitch**: the note's MIDI pitch (the report's models share one pitch range);
- **velocity**: the note's velocity (the nearest one the checkpoint knows, if it does not);
- **instrument**: the note's own instrument when the checkpoint knows it; otherwise one of the
  checkpoint's instruments of the note's family (NSynth names ``<family>_<source>_<nnn>``);
  otherwise any of its instruments. The pick among candidates is drawn by the evaluation's seeded
  noise (``z [n, 1]`` through the normal CDF), so a rerun draws the same ones.

Note length: SING makes 4 s notes, DarkGAN and the reference rows 1 s crops. SING is scored on
its first second with the same 64 ms raised-cosine fade-out the dataset's crops and DarkGAN's
synthesis apply (:func:`darkgan.data.magif.fade_out`). The real rows pass through the MAG-IF
representation (:func:`darkgan.evaluation.data.real_waves`), which round-trips a faded crop of
our notes at about 90 dB SNR, so SING's waveform is used as generated, without that round trip.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from darkgan.evaluation.models import EvalModel

#: How the evaluation scores a SING note: the first second (DarkGAN's length) with the crops' fade.
EVAL_SAMPLES = 16000
#: Codes of :func:`stand_in_instruments`'s second output.
SAME, FAMILY, ANY = 0, 1, 2


def family_of(instrument_str: str) -> str:
    """NSynth family of an instrument name (``"synth_lead_synthetic_003"`` -> ``"synth_lead"``);
    a name without the ``<family>_<source>_<nnn>`` form is its own family."""
    parts = str(instrument_str).rsplit("_", 2)
    return parts[0] if len(parts) == 3 else str(instrument_str)


def stand_in_instruments(wanted: Sequence[str], known: Sequence[str], u: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The instrument SING plays for each conditioning note.

    Args:
        wanted: ``[n]`` instrument names of the conditioning notes.
        known: the checkpoint's instruments (:attr:`darkgan.sing.api.SingSynth.instruments`).
        u: ``[n]`` numbers in [0, 1) choosing among candidates (seeded by the caller).

    Returns:
        ``(names [n], how [n] int)``: the note's own instrument when known (``how`` = :data:`SAME`),
        else a known instrument of its family (:data:`FAMILY`), else any known one (:data:`ANY`).
    """
    known = sorted(set(known))
    by_family: dict[str, list[str]] = {}
    for k in known:
        by_family.setdefault(family_of(k), []).append(k)
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, np.nextafter(1.0, 0.0))
    names, how = [], np.empty(len(wanted), dtype=np.int64)
    known_set = set(known)
    for j, w in enumerate(wanted):
        if w in known_set:
            names.append(str(w))
            how[j] = SAME
            continue
        pool = by_family.get(family_of(w))
        how[j] = FAMILY if pool else ANY
        pool = pool or known
        names.append(pool[int(u[j] * len(pool))])
    return names, how


def nearest_velocities(wanted: Sequence[int], known: Sequence[int]) -> list[int]:
    """Each velocity in ``wanted`` replaced by the nearest one in ``known`` (MIDI 1..127)."""
    k = np.asarray(sorted(known), dtype=np.int64)
    w = np.asarray(wanted, dtype=np.int64)
    return k[np.abs(w[:, None] - k[None, :]).argmin(1)].tolist()


class SingModel(EvalModel):
    """A SING checkpoint as an :class:`~darkgan.evaluation.models.EvalModel` (see the module
    docstring for the conditioning). No attributes: SING is a row of Table 1 (PIS, IIS, KID,
    KAD/FAD, pitch accuracy, end of note), not of the attribute-control tables and curves.

    Raises:
        CheckpointError: a missing or unreadable checkpoint (from :meth:`SingSynth.load`).
        DarkGANError: notes shorter than the 1 s the evaluation scores.
    """

    uses_notes = True

    def __init__(self, path, device: str = "cpu", name: str | None = None):
        from darkgan.errors import DarkGANError
        from darkgan.sing.api import SingSynth
        from darkgan.sing.checkpoint import WEIGHTS
        from darkgan.utils.io import sha256_file

        self.synth = SingSynth.load(path, device=device)
        folder = Path(self.synth.checkpoint_path)
        if self.synth.n_samples < EVAL_SAMPLES:
            raise DarkGANError(f"{folder}: SING notes of {self.synth.n_samples} samples are shorter than the "
                               f"{EVAL_SAMPLES} (1 s) darkgan evaluate scores")
        self.name = name or (Path(path).resolve().name if Path(path).exists() else str(path))
        h = hashlib.sha256(sha256_file(folder / WEIGHTS).encode())
        h.update(f"sing-eval-1:{EVAL_SAMPLES}".encode())  # the conditioning rule and length above
        self.key = h.hexdigest()[:16]
        self.attributes, self.class_indices, self.temperature, self.teacher_id = [], [], 1.0, None
        self.pitch_range = tuple(int(v) for v in self.synth.pitch_range)
        self.latent_dim = 1  # one seeded number per note: the pick among stand-in instruments
        meta = self.synth.meta
        self.info = {"name": self.name, "family": "sing", "path": str(folder), "key": self.key,
                     "preset": self.synth.config.preset, "temperature": None, "attributes": 0,
                     "pitch_range": list(self.pitch_range), "step": meta.get("step"), "stage": meta.get("stage"),
                     "instruments": len(self.synth.instruments), "velocities": self.synth.velocities,
                     "note_seconds": self.synth.n_samples / self.synth.sample_rate,
                     "scored": "first 1 s with the crops' 64 ms fade-out; the conditioning note's instrument "
                               "when known, else one of the same family, else any (darkgan.sing.eval_model)"}

    def conditioning(self, z: np.ndarray, notes: dict) -> tuple[list[str], list[int], np.ndarray]:
        """``(instrument names [n], velocities [n], how [n])`` SING plays for ``notes``
        (:meth:`darkgan.evaluation.context.EvalContext.cond_notes`) and the noise ``z [n, 1]``."""
        from scipy.special import ndtr

        u = ndtr(np.asarray(z, dtype=np.float64)[:, 0])
        names, how = stand_in_instruments(list(notes["instrument_str"]), self.synth.instruments, u)
        return names, nearest_velocities(notes["velocity"], self.synth.velocities), how

    def generate(self, z, pitch, attributes, notes: dict | None = None) -> np.ndarray:
        """``z [n, 1]``, MIDI ``pitch [n]``, ``notes`` (instrument_str, velocity ``[n]``) ->
        ``[n, 16000]`` float32: the first second of SING's 4 s notes, faded out.

        Raises:
            DarkGANError: no ``notes``; a pitch outside the checkpoint's range (one line).
        """
        import torch

        from darkgan.data.magif import fade_out
        from darkgan.errors import DarkGANError

        if notes is None:
            raise DarkGANError(f"{self.name}: SING plays the conditioning notes' instruments; pass notes=")
        names, vel, _ = self.conditioning(z, notes)
        waves = self.synth.generate_batch(names, [int(p) for p in pitch], vel)[:, :EVAL_SAMPLES]
        return fade_out(torch.from_numpy(np.ascontiguousarray(waves))).numpy().astype(np.float32)
