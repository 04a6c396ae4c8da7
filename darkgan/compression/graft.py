"""Give a distilled student its teacher's attribute mapping (``model.mapping_layers``).

A student distilled from a generator reproduces it for the *same inputs* ``(z, pitch, alpha)``
(:mod:`darkgan.compression.distill`), so the two share their latent space: a latent that gives
the teacher a bright brass note gives the student one too. An attribute mapping trained for the
teacher (``train.trainable = "mapping"``: alpha -> the latent of a note with those attributes)
therefore steers the student unchanged. Grafting copies it, with its standardisation
statistics, into the student; nothing else of the student changes.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from darkgan.errors import CheckpointError


def graft_mapping(student: str | os.PathLike, source: str | os.PathLike, out: str | os.PathLike,
                  half: bool = True) -> Path:
    """Write ``out``: the ``student`` checkpoint plus the attribute mapping of ``source``.

    Args:
        student: a generator checkpoint folder without a mapping (e.g. the shipped student).
        source: the generator checkpoint whose mapping to copy (it must have one).
        out: the new checkpoint folder (written atomically; the student's attribute bank is copied).
        half: store the weights in float16 (as the shipped checkpoints).

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        CheckpointError: ``source`` has no mapping, ``student`` has one already, the two differ
            in latent size, pitch range, vocabulary or temperature, or a standardised-logit
            student (``attr_input = "std_logit"``) standardises its attributes with other
            statistics than ``source`` (the graft would change the student's own inputs).
    """
    from darkgan.compression.distill import copy_bank
    from darkgan.models.checkpoint import load_generator, save_checkpoint
    from darkgan.models.generator import Generator

    s_gen, s_cfg = load_generator(student)
    t_gen, t_cfg = load_generator(source)
    if getattr(t_gen, "mapping", None) is None:
        raise CheckpointError(f"{source}: has no attribute mapping (model.mapping_layers = 0)")
    if getattr(s_gen, "mapping", None) is not None:
        raise CheckpointError(f"{student}: has an attribute mapping already")
    same = (s_gen.cfg.latent_dim == t_gen.cfg.latent_dim and tuple(s_cfg.pitch_range) == tuple(t_cfg.pitch_range)
            and list(s_cfg.attributes) == list(t_cfg.attributes) and s_cfg.temperature == t_cfg.temperature)
    if not same:
        raise CheckpointError(f"{student}: latent size, pitch range, vocabulary or temperature differ from {source}")
    if getattr(s_gen.cfg, "attr_input", "prob") != "prob" and not _same_stats(s_gen, t_gen):
        raise CheckpointError(f"{student}: standardises its attribute inputs with other statistics than {source} "
                              "(graft a mapping trained from the student's own teacher)")
    model = dataclasses.replace(s_gen.cfg, mapping_layers=t_gen.cfg.mapping_layers,
                                mapping_width=t_gen.cfg.mapping_width)
    g = Generator(model, s_gen.n_pitches, s_gen.n_attributes)
    g.load_state_dict({**g.state_dict(), **s_gen.state_dict()})
    g.copy_conditioning_from(t_gen)
    cfg = dataclasses.replace(s_cfg, config=dataclasses.replace(s_cfg.config, model=model), path=None)
    cfg.extra = {**{k: v for k, v in (cfg.extra or {}).items() if k != "files"},
                 "mapping_from": str(t_cfg.path), "mapping_from_step": t_cfg.step}
    path = save_checkpoint(out, g, cfg, half=half, weights_label=s_cfg.generator_weights)
    copy_bank(Path(s_cfg.path), path)
    return path


def _same_stats(a, b, atol: float = 1e-3) -> bool:
    """True when generators ``a`` and ``b`` standardise attributes with the same ``[K]`` logit
    means and standard deviations (to ``atol``, float16 storage)."""
    import torch

    if not (hasattr(a, "attr_mean") and hasattr(b, "attr_mean")):
        return False
    if hasattr(a, "attr_white") != hasattr(b, "attr_white") or (
            hasattr(a, "attr_white") and not torch.allclose(a.attr_white, b.attr_white, atol=atol)):
        return False
    return bool(torch.allclose(a.attr_mean, b.attr_mean, atol=atol) and torch.allclose(a.attr_std, b.attr_std, atol=atol))
