"""Random-weight checkpoints of any preset, for speed benchmarks and tests.

The facts file's reference cost figures are for the ``paper`` configuration with *random
weights* (speed does not depend on the values); :func:`random_checkpoint` writes such a
checkpoint through the normal :func:`darkgan.models.checkpoint.save_checkpoint`, so every
command (``bench``, ``export``, ``prune``, ``distill``) can run on it. Biases are drawn
``N(0, 0.1)`` (zero in a fresh generator) so that parity tests exercise them.
"""
from __future__ import annotations

from pathlib import Path

import torch


def random_checkpoint(directory: str | Path, preset: str = "paper", n_attributes: int = 128,
                      pitch_range: tuple[int, int] = (44, 70), critic: bool = True, seed: int = 0,
                      overrides: list[str] | tuple[str, ...] = ()) -> Path:
    """Write a checkpoint with random weights and return its folder.

    Args:
        directory: the checkpoint folder (replaced if it exists).
        preset: ``paper``/``small``/``tiny`` (+ ``overrides``).
        n_attributes: K (0: the no-attribute baseline).
        pitch_range: MIDI (lo, hi), inclusive (paper: 44..70).
        critic: also write a critic (a "training" checkpoint, usable for adversarial distillation).
        seed: torch seed of the weights.
    """
    from darkgan.models.checkpoint import CheckpointConfig, save_checkpoint
    from darkgan.models.config import apply_overrides, get_preset
    from darkgan.models.critic import Critic
    from darkgan.models.generator import Generator

    cfg = get_preset(preset)
    if overrides:
        cfg = apply_overrides(cfg, list(overrides))
    n_p = pitch_range[1] - pitch_range[0] + 1
    torch.manual_seed(seed)
    g = Generator(cfg.model, n_p, n_attributes)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    d = Critic(cfg.model, n_p, n_attributes) if critic else None
    meta = CheckpointConfig(
        config=cfg, attributes=[f"Attribute {i}" for i in range(n_attributes)], class_indices=list(range(n_attributes)),
        pitch_range=tuple(pitch_range), normalizer={"mean": [-4.0, 0.0], "std": [2.5, 0.6]},
        teacher={"id": "efficientat-mn04", "weights_sha256": "0" * 64} if n_attributes else {},
        temperature=2.0, attributes_enabled=n_attributes > 0, step=0, scale=cfg.model.n_scales - 1, alpha=1.0,
        extra={"random_weights": True})
    return save_checkpoint(directory, g, meta, critic=d,
                           train_state={"note": "random weights"} if critic else None)
