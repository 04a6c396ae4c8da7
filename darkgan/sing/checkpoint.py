"""SING checkpoint folders, in the layout and with the guarantees of
:mod:`darkgan.models.checkpoint` (staged then renamed into place, SHA-256 of every file in
``config.json``, a ``COMPLETE`` marker, run folders with ``checkpoint-<step>`` + ``LATEST``)::

    config.json          kind "sing-checkpoint", format_version, preset/overrides/model/train,
                         vocabulary (instruments, velocities, pitch_range), stage, step, files
    sing.safetensors     every weight (generator.*, decoder.*, encoder.*); float16 when shipped
    optim.pt             Adam state (tensors/lists only; loaded with weights_only=True)
    train_state.json     stage, step, stage steps done, data RNG position, last losses
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from darkgan.errors import CheckpointError
from darkgan.models.checkpoint import (
    LATEST,
    MARKER,
    _load_module,
    _load_tensors,
    _save_tensors,
    finish_folder,
    git_commit,
    resolve_checkpoint,
    staged_folder,
)
from darkgan.sing.config import SingConfig
from darkgan.sing.data import Vocabulary
from darkgan.utils.io import atomic_write, sha256_file, write_json

KIND = "sing-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "sing.safetensors"
#: Checkpoints shipped in ``darkgan/assets`` by name.
SHIPPED = {"sing-default": "sing-default"}


def shipped_path(name: str) -> Path:
    """``darkgan/assets/<name>`` of a shipped SING checkpoint name."""
    return Path(__file__).resolve().parent.parent / "assets" / SHIPPED[name]


def resolve(path: str | os.PathLike) -> Path:
    """A SING checkpoint folder from a folder, a run folder (its ``LATEST``) or a shipped name.

    Raises:
        CheckpointError: missing, incomplete, or not a checkpoint.
    """
    if str(path) in SHIPPED and not Path(path).exists():
        path = shipped_path(str(path))
        if not path.exists():
            raise CheckpointError(f"{path}: the shipped SING checkpoint is not installed in this checkout "
                                  f"(see docs/sing.md: train one with `darkgan sing train`)")
    return resolve_checkpoint(path)


def is_sing_checkpoint(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` names a SING checkpoint (by its config.json ``kind``); False for anything
    else, including missing paths (their error comes from whoever loads them)."""
    if path is None:
        return False
    if str(path) in SHIPPED:
        return True
    try:
        p = resolve_checkpoint(path)
        return json.loads((p / "config.json").read_text(encoding="utf-8")).get("kind") == KIND
    except (CheckpointError, OSError, ValueError):
        return False


def save(directory: str | os.PathLike, model: torch.nn.Module, cfg: SingConfig, vocab: Vocabulary, *,
         stage: str, step: int, optim: dict | None = None, train_state: dict | None = None,
         half: bool = False, extra: dict | None = None) -> Path:
    """Write a SING checkpoint folder atomically (see the module docstring); returns it.

    Args:
        model: a :class:`darkgan.sing.model.Sing`; stage: ``"ae"``, ``"lstm"``, ``"e2e"`` or ``"done"``.
        half: weights in float16 (shipped checkpoints). extra: JSON facts (data, subset, timings).

    Raises:
        CheckpointError: the folder cannot be written (an older one of that name stays intact).
    """
    from darkgan.version import __version__

    with staged_folder(directory) as tmp:
        sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        if half:
            sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
        _save_tensors(tmp / WEIGHTS, sd, {"format": "pt"})
        if optim is not None:
            with atomic_write(tmp / "optim.pt", "wb") as f:
                torch.save(optim, f)
        if train_state is not None:
            write_json(tmp / "train_state.json", train_state)
        meta = {"format_version": FORMAT_VERSION, "kind": KIND, "family": "sing", "darkgan_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "git_commit": git_commit(), **cfg.to_dict(), "vocabulary": vocab.to_dict(), "stage": stage,
                "step": int(step), "dtype": "float16" if half else "float32", "extra": extra or {}}
        finish_folder(tmp, meta, step)
    return Path(directory)


def save_run(run_dir: str | os.PathLike, step: int, model, cfg: SingConfig, vocab: Vocabulary, keep: int = 2,
             **kwargs) -> Path:
    """``run_dir/checkpoint-<step>`` via :func:`save`, ``LATEST`` pointed at it, older ones pruned
    to ``keep``."""
    run_dir = Path(run_dir)
    path = save(run_dir / f"checkpoint-{step:08d}", model, cfg, vocab, step=step, **kwargs)
    with atomic_write(run_dir / LATEST, "w") as f:
        f.write(path.name + "\n")
    for old in sorted(p for p in run_dir.glob("checkpoint-*") if (p / MARKER).is_file())[:-max(1, keep)]:
        if old != path:
            shutil.rmtree(old, ignore_errors=True)
    return path


def read_meta(path: str | os.PathLike) -> tuple[dict, Path]:
    """``(config.json dict, checkpoint folder)`` with its files' SHA-256 verified.

    Raises:
        CheckpointError: not a SING checkpoint, another format version, or a corrupt/missing file.
    """
    p = resolve(path)
    try:
        meta = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{p / 'config.json'}: corrupt ({type(e).__name__})") from None
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{p}: not a SING checkpoint (kind {meta.get('kind')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{p}: SING checkpoint format {meta.get('format_version')!r} is not supported "
                              f"(this darkgan reads {FORMAT_VERSION})")
    for name, digest in (meta.get("files") or {}).items():
        if not (p / name).is_file():
            raise CheckpointError(f"{p / name}: missing (config.json records it)")
        if sha256_file(p / name) != digest:
            raise CheckpointError(f"{p / name}: checksum mismatch, the file is corrupt")
    return meta, p


def load(path: str | os.PathLike, device: str = "cpu") -> tuple[Any, SingConfig, Vocabulary, dict]:
    """``(Sing model in eval mode, float32, SingConfig, Vocabulary, meta)`` from a checkpoint.

    Raises:
        CheckpointError: see :func:`read_meta`; weights that do not fit the configuration.
    """
    from darkgan.errors import DarkGANError
    from darkgan.sing.model import Sing

    meta, p = read_meta(path)
    try:
        cfg = SingConfig.from_dict(meta).validate()
        vocab = Vocabulary.from_dict(meta["vocabulary"])
    except (DarkGANError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{p / 'config.json'}: invalid ({e})") from None
    model = Sing(cfg.model, len(vocab.velocities), len(vocab.instruments), vocab.n_pitches)
    _load_module(model, _load_tensors(p / WEIGHTS), p / WEIGHTS)
    meta["path"] = str(p)
    return model.float().to(device).eval(), cfg, vocab, meta


def load_optim(path: Path) -> dict | None:
    """The Adam state of a training checkpoint (``None`` when it has none)."""
    f = Path(path) / "optim.pt"
    if not f.is_file():
        return None
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{f}: corrupt optimizer state ({type(e).__name__})") from None


def export(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True) -> Path:
    """Copy a checkpoint's inference part (config + weights, no optimiser state) to ``dst``,
    in float16 by default (the shipped ``sing-default``); ``extra.exported_from`` names the source.

    Raises:
        CheckpointError: bad source or unwritable destination.
    """
    model, cfg, vocab, meta = load(src)
    extra = {**(meta.get("extra") or {}), "exported_from": meta["path"], "exported_from_step": meta["step"]}
    return save(dst, model, cfg, vocab, stage=meta["stage"], step=int(meta["step"]), half=half, extra=extra)
