"""Helpers shared by the app tests: a tiny random-weight checkpoint with an attribute bank, and
real note audio written as files. (No tests here; imported by tests/test_app_*.py.)"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: AudioSet classes used as the tiny checkpoint's vocabulary (real teacher columns 137..).
FIRST_CLASS = 137
PITCH_RANGE = (44, 70)


def make_tiny_checkpoint(path: Path, k: int = 24, pitch_range=PITCH_RANGE, seed: int = 0) -> Path:
    """A complete checkpoint folder: ``tiny`` preset, random weights, ``k`` real AudioSet
    attribute names, the paper's pitch range, and an attribute bank of 4 random "validation
    notes" per pitch. Returns the folder."""
    import torch

    from darkgan.data.magif import Normalizer
    from darkgan.generation.bank import AttributeBank, write_bank
    from darkgan.models.checkpoint import CheckpointConfig, save_checkpoint
    from darkgan.models.config import get_preset
    from darkgan.models.generator import Generator
    from darkgan.teacher.classes import audioset_classes

    names, _ = audioset_classes()
    idx = list(range(FIRST_CLASS, FIRST_CLASS + k))
    cfg = get_preset("tiny")
    lo, hi = pitch_range
    torch.manual_seed(seed)
    g = Generator(cfg.model, hi - lo + 1, k)
    attrs = [names[i] for i in idx]
    cc = CheckpointConfig(config=cfg, attributes=attrs, class_indices=idx, pitch_range=(lo, hi),
                          normalizer=Normalizer(mean=(-3.0, 0.0), std=(2.0, 0.6)).to_dict(),
                          teacher={"id": "efficientat-mn04"}, temperature=2.0,
                          scale=cfg.model.n_scales - 1, alpha=1.0, step=1)
    out = save_checkpoint(path, g, cc)
    rng = np.random.default_rng(seed)
    pitches = np.repeat(np.arange(lo, hi + 1), 4)
    bank = AttributeBank(rng.normal(-3, 2, size=(len(pitches), k)).astype(np.float32), pitches,
                         [f"synth_valid_{i:03d}-{p:03d}-100" for i, p in enumerate(pitches)],
                         {"teacher": "efficientat-mn04", "split": "valid", "source": "test"})
    write_bank(out, bank, attrs)
    return out


def note_audio(midi: int = 60, seconds: float = 1.5, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A real plucked-string note (Karplus-Strong: a noise burst in a damped delay loop, the
    physical model of a string), float32 ``[seconds * sr]`` peaking at 0.8, with 0.2 s of
    silence before the onset."""
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    period = max(2, int(round(sr / f0)))
    n = int(seconds * sr)
    rng = np.random.default_rng(seed)
    buf = rng.uniform(-1, 1, period)
    buf -= buf.mean()  # no DC
    blocks = []
    for _ in range(n // period + 1):  # one period at a time: averaging low-pass in the loop
        blocks.append(buf)
        buf = 0.996 * 0.5 * (buf + np.roll(buf, -1))
    out = np.concatenate(blocks)[:n]
    pre = np.zeros(int(0.2 * sr))
    x = np.concatenate([pre, out])[:n]
    return (0.8 * x / np.abs(x).max()).astype(np.float32)


def write_note(path: Path, midi: int = 60, sr: int = 16000, channels: int = 1, seconds: float = 1.5) -> Path:
    """Write :func:`note_audio` as a 16-bit WAV (``channels`` copies, at ``sr`` Hz)."""
    import soundfile as sf

    x = note_audio(midi, seconds, sr)
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    sf.write(str(path), data, sr, subtype="PCM_16")
    return path
