"""Python API of SING: notes from (instrument, pitch, velocity).

::

    from darkgan.sing.api import SingSynth
    s = SingSynth.load("sing-default")             # or a run / checkpoint folder
    wave = s.generate("keyboard_acoustic_000", pitch=60, velocity=100)   # np.float32 [64000]
    waves = s.generate_batch(["a", "b"], [60, 62], [100, 100])           # [2, 64000]
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Sequence

import numpy as np
import torch

from darkgan.errors import DarkGANError


class SingSynth:
    """A loaded SING checkpoint (see :mod:`darkgan.sing.checkpoint`).

    Attributes:
        instruments: names it knows (``instrument_str``); velocities: MIDI velocities it knows;
        pitch_range: ``(lo, hi)`` MIDI, inclusive; sample_rate: 16000 Hz; n_samples: 64000 (4 s);
        config, meta: the checkpoint's :class:`~darkgan.sing.config.SingConfig` and config.json.
    """

    sample_rate = 16000

    def __init__(self, model, cfg, vocab, meta, device: str = "cpu"):
        self.model, self.config, self.vocab, self.meta, self.device = model, cfg, vocab, meta, device
        self.instruments = list(vocab.instruments)
        self.velocities = list(vocab.velocities)
        self.pitch_range = tuple(vocab.pitch_range)
        self.n_samples = cfg.model.n_samples
        self.checkpoint_path = meta["path"]

    @classmethod
    def load(cls, path: str | os.PathLike = "sing-default", device: str = "cpu") -> SingSynth:
        """Load a SING checkpoint folder, run folder or shipped name.

        Raises:
            CheckpointError: missing, corrupt or incompatible checkpoint.
        """
        from darkgan.sing.checkpoint import load

        model, cfg, vocab, meta = load(path, device)
        return cls(model, cfg, vocab, meta, device)

    def indices(self, instruments: Sequence[str], pitches: Sequence[int], velocities: Sequence[int]):
        """Look-up-table indices ``(velocity, instrument, pitch)`` ``[n]`` long.

        Raises:
            DarkGANError: an unknown instrument (names the closest ones), a pitch outside
                ``pitch_range`` or a velocity the checkpoint does not know (one line each).
        """
        lo, hi = self.pitch_range
        known = {n: i for i, n in enumerate(self.instruments)}
        ins = []
        for name in instruments:
            if name not in known:
                close = difflib.get_close_matches(str(name), self.instruments, n=5, cutoff=0.5)
                hint = f"; closest: {', '.join(close)}" if close else ""
                raise DarkGANError(f"unknown instrument {name!r}{hint} ({len(self.instruments)} known: "
                                   f"--list-instruments prints them)")
            ins.append(known[name])
        for p in pitches:
            if not (isinstance(p, (int, np.integer)) and lo <= int(p) <= hi):
                raise DarkGANError(f"pitch {p!r} is outside MIDI {lo}..{hi}, the range this checkpoint knows")
        vel = {v: i for i, v in enumerate(self.velocities)}
        for v in velocities:
            if v not in vel:
                raise DarkGANError(f"velocity {v!r} is not one this checkpoint knows "
                                   f"({', '.join(map(str, self.velocities))})")
        as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64), device=self.device)
        return as_t([vel[v] for v in velocities]), as_t(ins), as_t([int(p) - lo for p in pitches])

    @torch.no_grad()
    def generate_batch(self, instruments: Sequence[str], pitches: Sequence[int], velocities: Sequence[int],
                       batch_size: int = 64) -> np.ndarray:
        """Notes for parallel lists of instrument names, MIDI pitches and velocities:
        ``np.float32 [n, 64000]`` at 16 kHz, clipped to [-1, 1].

        Raises:
            DarkGANError: lists of different lengths or an argument the checkpoint does not know
                (:meth:`indices`).
        """
        if not len(instruments) == len(pitches) == len(velocities):
            raise DarkGANError(f"{len(instruments)} instruments, {len(pitches)} pitches and {len(velocities)} "
                               "velocities: give one of each per note")
        v, i, p = self.indices(instruments, pitches, velocities)
        out = [self.model(v[k:k + batch_size], i[k:k + batch_size], p[k:k + batch_size]).clamp(-1, 1).cpu()
               for k in range(0, len(v), batch_size)]
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, self.n_samples), np.float32)

    def generate(self, instrument: str, pitch: int = 60, velocity: int = 100) -> np.ndarray:
        """One note: ``np.float32 [64000]`` (4 s at 16 kHz). Raises as :meth:`indices`."""
        return self.generate_batch([instrument], [pitch], [velocity])[0]
