"""Checkpoints of the FRAMI family: safetensors weights + ``config.json``, training state for resume.

Files in a run folder ``OUT``::

    config.json                  {"config": FramiConfig, "method", "mel_stats": [mean, std], ...}
    <name>.safetensors           weights of ``teacher`` / ``student`` (safetensors)
    <name>.state.pt              resume state: weights, optimiser, epoch, RNG (``torch.load(weights_only=True)``)
    memory.safetensors           synthesized samples so far (``x [N, 1, M, T]``, ``y [N]``)

Every write is atomic (:func:`darkgan.utils.io.atomic_write`).
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from darkgan.errors import CheckpointError
from darkgan.frami.config import FramiConfig
from darkgan.utils.config import config_from_dict, config_to_dict
from darkgan.utils.io import atomic_write, read_json, write_json


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` to ``path`` (safetensors), atomically."""
    from safetensors.torch import save

    with atomic_write(path) as f:
        f.write(save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; raises :class:`CheckpointError` naming it when missing or corrupt."""
    from safetensors.torch import load

    try:
        return load(Path(path).read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def save_state(path: Path, state: dict) -> None:
    """Resume state (tensors, numbers, optimiser state dicts) via ``torch.save``, atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def load_state(path: Path) -> dict:
    """Resume state written by :func:`save_state` (``weights_only=True``: no pickle)."""
    try:
        return torch.load(path, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: unreadable resume state ({e})") from None


def load_module(module: nn.Module, path: Path) -> nn.Module:
    """Load safetensors weights into ``module``; :class:`CheckpointError` on a shape/key mismatch."""
    try:
        module.load_state_dict(load_tensors(path))
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the configured model ({str(e).splitlines()[0]})") from None
    return module


def write_run_config(out: Path, cfg: FramiConfig, **extra) -> None:
    """``OUT/config.json``: the configuration and run facts (method, mel statistics, ...)."""
    write_json(Path(out) / "config.json", {"config": config_to_dict(cfg), **extra})


def read_run_config(folder: Path) -> tuple[FramiConfig, dict]:
    """``(FramiConfig, the rest of config.json)`` of a run folder; :class:`CheckpointError` when missing."""
    path = Path(folder) / "config.json"
    if not path.exists():
        raise CheckpointError(f"{path}: missing (not a FRAMI run folder)")
    d = read_json(path)
    return config_from_dict(FramiConfig, d.pop("config"), "config"), d
