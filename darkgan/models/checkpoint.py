"""Checkpoint folders: write atomically, load with clear errors.

A checkpoint is a folder::

    config.json              metadata (below); written last but one
    generator.safetensors    G's weights for generation: the EMA weights when EMA is on, else raw;
                             float32, or float16 when exported with ``half=True``
    generator_raw.safetensors, critic.safetensors      training state (optional)
    optim_g.pt, optim_d.pt   Adam states (torch.save of tensors/lists only; loaded weights_only)
    train_state.json         step, scale, alpha, data position, RNG states, ...
    COMPLETE                 marker, written last: a folder without it is an interrupted write

``config.json`` holds ``format_version``, the darkgan version, the preset name + overrides + the
full model/train configuration, the vocabulary (attribute names and teacher class indices), the
pitch range ``[lo, hi]`` (MIDI, inclusive), the normalisation statistics, the teacher id and its
weights' SHA-256, the temperature, whether attributes are enabled, step/scale/alpha, the git
commit, and the SHA-256 of every file in the folder.

Writes are atomic as a whole: everything goes to a hidden temporary folder beside the target,
which is renamed into place once complete (a previous checkpoint of the same name is replaced
only after the new one is fully written). A *run* folder holds several ``checkpoint-<step>``
folders and a ``LATEST`` file naming the newest; :func:`resolve_checkpoint` accepts either.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import functools
import glob
import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn as nn

from darkgan.errors import CheckpointError, DarkGANError
from darkgan.models.config import Config
from darkgan.models.layers import is_folded
from darkgan.utils.io import atomic_write, sha256_file, write_json

#: Bumped when the folder layout or the meaning of a field changes incompatibly.
FORMAT_VERSION = 1
MARKER = "COMPLETE"
LATEST = "LATEST"
GENERATOR_FILE = "generator.safetensors"
CRITIC_FILE = "critic.safetensors"


@dataclass
class CheckpointConfig:
    """Everything ``config.json`` says about a checkpoint (see the module docstring).

    Attributes:
        config: the full :class:`~darkgan.models.config.Config` (preset, overrides, model, train).
        attributes: K attribute names (AudioSet display names), in input order; [] for baseline.
        class_indices: K teacher class indices (columns of the teacher's logits).
        pitch_range: (lo, hi) MIDI pitches, inclusive; ``pitch_index = midi - lo``.
        normalizer: ``Normalizer.to_dict()`` of the training data.
        teacher: ``{"id": ..., "weights_sha256": ...}`` (empty for the baseline without labels).
        temperature: the distillation temperature T.
        attributes_enabled: False for the no-attribute baseline.
        step, scale, alpha: training progress when written.
        generator_weights: ``"ema"`` or ``"raw"``; ``dtype``: ``"float32"``/``"float16"``.
        path: the checkpoint folder.
    """

    config: Config
    attributes: list[str]
    class_indices: list[int]
    pitch_range: tuple[int, int]
    normalizer: dict
    teacher: dict = field(default_factory=dict)
    temperature: float = 2.0
    attributes_enabled: bool = True
    step: int = 0
    scale: int = 0
    alpha: float = 1.0
    generator_weights: str = "raw"
    dtype: str = "float32"
    darkgan_version: str = ""
    git_commit: str | None = None
    created: str = ""
    extra: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def n_pitches(self) -> int:
        return self.pitch_range[1] - self.pitch_range[0] + 1

    @property
    def n_attributes(self) -> int:
        return len(self.attributes)

    @property
    def model(self):
        return self.config.model

    def get_normalizer(self):
        """The :class:`darkgan.data.magif.Normalizer` of the training data."""
        from darkgan.data.magif import Normalizer

        return Normalizer.from_dict(self.normalizer)

    def to_json(self) -> dict:
        from darkgan.version import __version__

        return {
            "format_version": FORMAT_VERSION,
            "kind": "darkgan-checkpoint",
            "darkgan_version": self.darkgan_version or __version__,
            "created": self.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": self.git_commit,
            **self.config.to_dict(),
            "attributes_enabled": self.attributes_enabled,
            "vocabulary": [{"name": n, "teacher_index": int(i)} for n, i in zip(self.attributes, self.class_indices)],
            "pitch_range": [int(self.pitch_range[0]), int(self.pitch_range[1])],
            "normalizer": self.normalizer,
            "teacher": self.teacher,
            "temperature": float(self.temperature),
            "step": int(self.step),
            "scale": int(self.scale),
            "alpha": float(self.alpha),
            "generator_weights": self.generator_weights,
            "dtype": self.dtype,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, d: dict, path: Path | None = None) -> "CheckpointConfig":
        where = path / "config.json" if path else "config.json"
        if not isinstance(d, dict) or d.get("kind") != "darkgan-checkpoint":
            raise CheckpointError(f"{where}: not a DarkGAN checkpoint configuration")
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(f"{where}: checkpoint format version {version!r} is not supported "
                                  f"(this darkgan reads version {FORMAT_VERSION}); re-export or retrain it")
        try:
            config = Config.from_dict(d).validate()
            vocab = d["vocabulary"]
            lo, hi = (int(v) for v in d["pitch_range"])
            out = cls(
                config=config, attributes=[str(v["name"]) for v in vocab],
                class_indices=[int(v["teacher_index"]) for v in vocab], pitch_range=(lo, hi),
                normalizer=dict(d["normalizer"]), teacher=dict(d.get("teacher") or {}),
                temperature=float(d["temperature"]), attributes_enabled=bool(d["attributes_enabled"]),
                step=int(d["step"]), scale=int(d["scale"]), alpha=float(d["alpha"]),
                generator_weights=str(d.get("generator_weights", "raw")), dtype=str(d.get("dtype", "float32")),
                darkgan_version=str(d.get("darkgan_version", "")), git_commit=d.get("git_commit"),
                created=str(d.get("created", "")), extra=dict(d.get("extra") or {}), path=path,
            )
            out.check()
            return out
        except DarkGANError as e:
            raise CheckpointError(f"{where}: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{where}: missing or malformed field ({type(e).__name__}: {e})") from None

    def check(self) -> None:
        """Check the values a generator needs at load time (``config.json`` is not covered by the
        per-file checksums, so a hand-edited one is caught here).

        Raises:
            DarkGANError: a non-finite or non-positive temperature; ``attributes_enabled`` that
                disagrees with the vocabulary (the baseline has none, a DarkGAN model some); a
                normaliser without two finite means and two finite positive standard deviations;
                a pitch range outside MIDI 0..127; a negative teacher index.
        """
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise DarkGANError(f"temperature must be a finite number > 0, got {self.temperature}")
        if self.attributes_enabled != bool(self.attributes):
            raise DarkGANError(f"attributes_enabled is {str(self.attributes_enabled).lower()} but the vocabulary "
                               f"has {len(self.attributes)} attributes")
        mean, std = self.normalizer.get("mean"), self.normalizer.get("std")
        if not (_finite_pair(mean) and _finite_pair(std) and min(std) > 0):
            raise DarkGANError(f"normalizer needs two finite means and two finite std > 0, got mean {mean}, std {std}")
        lo, hi = self.pitch_range
        if not 0 <= lo <= hi <= 127:
            raise DarkGANError(f"pitch_range [{lo}, {hi}] is not a MIDI range (0 <= lo <= hi <= 127)")
        if any(i < 0 for i in self.class_indices):
            raise DarkGANError(f"vocabulary: negative teacher_index in {self.class_indices[:8]}")


def _finite_pair(v) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The checkout's HEAD commit (``None`` outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


# ------------------------------------------------------------------------------- tensor files

def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    with atomic_write(path, "wb") as f:
        f.write(data)


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return load(path.read_bytes())
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: corrupt weights file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def _cast(tensors: dict[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The floating-point tensors of ``tensors`` in ``dtype`` (None: as they are); others unchanged."""
    if dtype is None:
        return tensors
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in tensors.items()}


def _state_dict(module: nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    if is_folded(module):
        raise CheckpointError("cannot save a generator whose equalized-LR scales were folded into its weights")
    module = getattr(module, "module", module)  # unwrap DDP
    return _cast({k: v.detach().cpu().clone() for k, v in module.state_dict().items()}, dtype)


def _load_module(module: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    ref = module.state_dict()
    missing, unexpected = set(ref) - set(tensors), set(tensors) - set(ref)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the configured architecture "
                              f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(ref[k].shape):
            raise CheckpointError(f"{path}: {k} has shape {list(v.shape)}, the configuration needs {list(ref[k].shape)}")
    module.load_state_dict({k: v.to(ref[k].dtype) for k, v in tensors.items()})


# ------------------------------------------------------------------------------------- save

def save_checkpoint(
    directory: str | os.PathLike,
    generator: nn.Module,
    config: CheckpointConfig,
    *,
    critic: nn.Module | dict[str, torch.Tensor] | None = None,
    ema: nn.Module | None = None,
    optim_states: dict[str, dict] | None = None,
    train_state: dict[str, Any] | None = None,
    rng_tensors: dict[str, torch.Tensor] | None = None,
    half: bool = False,
    weights_label: str | None = None,
) -> Path:
    """Write a checkpoint folder atomically and return its path.

    Args:
        directory: the checkpoint folder to create (replaced if it exists).
        generator: the raw (trained) generator (DDP-wrapped is fine).
        config: metadata; ``generator_weights``/``dtype`` are filled in here.
        critic: the critic (a module or its tensors), for training checkpoints and for exports
            that others fine-tune from (:func:`export_generator` with ``critic=True``).
        ema: the EMA generator; when given, ``generator.safetensors`` holds its weights and the
            raw weights go to ``generator_raw.safetensors`` (only when ``critic`` is given too).
        optim_states: ``{"g": opt_g.state_dict(), "d": opt_d.state_dict()}``.
        train_state: JSON-serialisable progress (step, data position, numpy/python RNG states).
        rng_tensors: torch RNG states (uint8 tensors) saved in ``rng.safetensors``.
        half: store ``generator.safetensors`` (and ``critic.safetensors``) in float16 (shipped
            checkpoints; halves the size).
        weights_label: overrides the recorded ``generator_weights`` (``"ema"``/``"raw"``).

    Raises:
        CheckpointError: the folder cannot be written (nothing of an old checkpoint is lost).
    """
    directory = Path(directory)
    with _staged(directory, "write checkpoint") as tmp:
        config = dataclasses.replace(config, generator_weights=weights_label or ("ema" if ema is not None else "raw"),
                                     dtype="float16" if half else "float32",
                                     git_commit=config.git_commit or git_commit())
        _write_files(tmp, generator, ema, critic, optim_states, rng_tensors, train_state, half)
        meta = config.to_json()
        if "extra" in meta:  # a copied config's sums describe other files
            meta["extra"] = {k: v for k, v in meta["extra"].items() if k != "files"}
        finish_folder(tmp, meta, config.step)
    return directory


def finish_folder(tmp: Path, meta: dict, step: int) -> None:
    """Write ``config.json`` (``meta`` plus the SHA-256 of every file already in ``tmp``) and the
    ``COMPLETE`` marker into the staged folder ``tmp`` (of :func:`staged_folder`)."""
    meta["files"] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    write_json(tmp / "config.json", meta)
    with atomic_write(tmp / MARKER, "w") as f:
        f.write(f"step {step}\n")


@contextlib.contextmanager
def staged_folder(directory: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``directory``; when the block ends without error,
    rename it into place (a previous folder of that name is replaced only then), else delete it.
    Every checkpoint family (DarkGAN, SING) writes its folders through this.

    Raises:
        CheckpointError: the parent is not writable (nothing of an old folder is lost).
    """
    with _staged(Path(directory), "write checkpoint") as tmp:
        yield tmp


@contextlib.contextmanager
def _staged(directory: Path, what: str) -> Iterator[Path]:
    """A staging folder beside ``directory`` (:func:`_staging_folder`), filled in the ``with``
    block and then moved into place (:func:`_move_into_place`); removed on any error.

    Raises:
        CheckpointError: an ``OSError`` inside, as ``<directory>: cannot <what> (<reason>)``.
    """
    tmp = _staging_folder(directory)
    try:
        yield tmp
        _move_into_place(tmp, directory)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise CheckpointError(f"{directory}: cannot {what} ({e.strerror or e})") from None
        raise


def _move_into_place(tmp: Path, directory: Path) -> None:
    """Rename the complete folder ``tmp`` to ``directory``, replacing it (the old one is kept
    aside until the rename is done: :func:`clean_interrupted_writes` restores it after a kill)."""
    _fsync_dir(tmp)
    if directory.exists():
        old = directory.parent / f".{directory.name}.old-{os.getpid()}"
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, directory)
    _fsync_dir(directory.parent)


def copy_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy the complete checkpoint folder ``src`` to ``dst`` atomically (replacing ``dst``):
    files are hard-linked where the file system allows (checkpoint files are never modified in
    place), else copied. E.g. a run's kept ``best`` checkpoint.

    Raises:
        CheckpointError: ``src`` is not a complete checkpoint, or ``dst`` cannot be written.
    """
    src, dst = Path(src), Path(dst)
    if not (src / MARKER).is_file():
        raise CheckpointError(f"{src}: not a complete checkpoint (no {MARKER})")
    with _staged(dst, f"copy checkpoint {src.name}") as tmp:
        for f in sorted(src.iterdir()):
            if f.is_file():
                try:
                    os.link(f, tmp / f.name)
                except OSError:
                    shutil.copy2(f, tmp / f.name)
    return dst


def _staging_folder(directory: Path) -> Path:
    """A fresh hidden folder beside ``directory`` (same file system: renamed into place when
    complete), with the permissions of an ordinary folder.

    Raises:
        CheckpointError: the parent folder cannot be written.
    """
    parent = directory.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a checkpoint is an ordinary folder
    except OSError as e:
        raise CheckpointError(f"{parent}: cannot write a checkpoint here ({e.strerror or e})") from None
    return tmp


def _write_files(tmp: Path, generator: nn.Module, ema: nn.Module | None,
                 critic: nn.Module | dict[str, torch.Tensor] | None,
                 optim_states: dict | None, rng_tensors: dict | None, train_state: dict | None,
                 half: bool) -> None:
    """The weight and state files of :func:`save_checkpoint` into ``tmp`` (all but config.json)."""
    gen_src = ema if ema is not None else generator
    _save_tensors(tmp / GENERATOR_FILE, _state_dict(gen_src, torch.float16 if half else None),
                  {"format": "pt", "darkgan_checkpoint_format": str(FORMAT_VERSION)})
    if critic is not None:
        tensors = critic if isinstance(critic, dict) else _state_dict(critic)
        _save_tensors(tmp / CRITIC_FILE, _cast(tensors, torch.float16 if half else None))
        if ema is not None:
            _save_tensors(tmp / "generator_raw.safetensors", _state_dict(generator))
    for name, state in (optim_states or {}).items():
        with atomic_write(tmp / f"optim_{name}.pt", "wb") as f:
            torch.save(state, f)
    if rng_tensors:
        _save_tensors(tmp / "rng.safetensors", rng_tensors)
    if train_state is not None:
        write_json(tmp / "train_state.json", train_state)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_run_checkpoint(run_dir: str | os.PathLike, step: int, generator: nn.Module, config: CheckpointConfig,
                        keep: int = 2, **kwargs) -> Path:
    """Write ``run_dir/checkpoint-<step>`` (see :func:`save_checkpoint`), point ``LATEST`` at it
    and delete all but the ``keep`` newest checkpoints. Returns the new folder."""
    run_dir = Path(run_dir)
    path = save_checkpoint(run_dir / f"checkpoint-{step:08d}", generator, config, **kwargs)
    with atomic_write(run_dir / LATEST, "w") as f:
        f.write(path.name + "\n")
    done = sorted(p for p in run_dir.glob("checkpoint-*") if (p / MARKER).is_file())
    for old in done[:-max(1, keep)]:
        if old != path:
            shutil.rmtree(old, ignore_errors=True)
    return path


def clean_interrupted_writes(run_dir: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove what writes killed mid-way left in ``run_dir``: the temporary folders of
    :func:`save_checkpoint` (``.checkpoint-<step>.<random>.tmp``) and temporary files of
    :func:`~darkgan.utils.io.atomic_write` (``.LATEST.<random>.tmp``); a replaced checkpoint
    kept aside (``.checkpoint-<step>.old-<pid>``, ``.best.old-<pid>``) is moved back when its replacement never
    arrived, else removed. Call it only while holding the :func:`~darkgan.utils.io.folder_lock`
    of what is cleaned (no other writer).

    Args:
        run_dir: the folder to clean.
        name: only the leftovers of the checkpoint folder ``run_dir/name`` (``.<name>.*``), e.g.
            a distilled student written straight into ``run_dir/name``.

    Returns:
        the paths removed (sorted).
    """
    run_dir = Path(run_dir)
    stem = f".{glob.escape(name)}." if name else "."
    aside = f".{glob.escape(name)}.old-*" if name else ".*.old-*"
    removed = []
    for p in sorted(run_dir.glob(f"{stem}*.tmp")) + sorted(run_dir.glob(aside)):
        if ".old-" in p.name and p.is_dir() and (p / MARKER).is_file():
            final = run_dir / p.name[1:p.name.index(".old-")]
            if not final.exists():
                os.replace(p, final)
                continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


# ------------------------------------------------------------------------------------- load

def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint folder for ``path``: a checkpoint folder itself, a run folder (its
    ``LATEST`` checkpoint), or the name of a checkpoint shipped with the package (``default``,
    ``student``: :data:`darkgan.paths.SHIPPED_CHECKPOINTS`) when no such path exists.

    Raises:
        CheckpointError: missing path, no checkpoint, or an incomplete (interrupted) write.
    """
    from darkgan.paths import SHIPPED_CHECKPOINTS, shipped_checkpoint

    p = Path(path)
    if not p.exists() and str(path) in SHIPPED_CHECKPOINTS:
        p = shipped_checkpoint(str(path))
    if not p.exists():
        raise CheckpointError(f"{p}: checkpoint not found (shipped checkpoints by name: "
                              f"{', '.join(SHIPPED_CHECKPOINTS)})")
    if p.is_file():
        if p.name in ("config.json", GENERATOR_FILE):
            p = p.parent
        else:
            raise CheckpointError(f"{p}: a checkpoint is a folder with config.json and {GENERATOR_FILE}")
    if not (p / "config.json").exists() and (p / LATEST).is_file():
        p = _latest(p)
    if not (p / "config.json").is_file():
        raise CheckpointError(f"{p}: no config.json here; not a DarkGAN checkpoint or run folder")
    if not (p / MARKER).is_file():
        raise CheckpointError(f"{p}: incomplete checkpoint (no {MARKER} marker: the write was interrupted)")
    return p


def _latest(run: Path) -> Path:
    """The checkpoint folder ``run/LATEST`` names: a plain folder name inside ``run`` (never a
    path elsewhere: a run folder is untrusted input). Raises CheckpointError."""
    try:
        name = (run / LATEST).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{run / LATEST}: unreadable ({e})") from None
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise CheckpointError(f"{run / LATEST}: must name a checkpoint folder inside {run}, got {name[:80]!r}")
    p = run / name
    if p.is_symlink() or (p.exists() and p.resolve().parent != run.resolve()):
        raise CheckpointError(f"{run / LATEST}: {name!r} points outside the run folder {run}")
    if not p.is_dir():
        raise CheckpointError(f"{p}: named by {LATEST} but missing")
    return p


def read_checkpoint_config(path: str | os.PathLike) -> CheckpointConfig:
    """Read and validate ``config.json`` of a checkpoint (or a run folder's latest).

    Raises:
        CheckpointError: missing, corrupt or incompatible-version checkpoint.
    """
    p = resolve_checkpoint(path)
    try:
        d = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{p / 'config.json'}: corrupt ({type(e).__name__}: {e})") from None
    cfg = CheckpointConfig.from_json(d, p)
    cfg.extra["files"] = d.get("files") or cfg.extra.get("files") or {}  # the sums written with the files
    return cfg


def verify_checkpoint(path: str | os.PathLike | CheckpointConfig, names=None) -> None:
    """Check files' SHA-256 against the sums ``config.json`` recorded when the checkpoint was
    written (:func:`save_checkpoint`); called by :func:`load_generator` (the weights it loads)
    and :func:`load_training_state` (every recorded file, i.e. on ``--resume``).

    Args:
        path: a checkpoint or run folder, or an already read :class:`CheckpointConfig`.
        names: the file names to check (default: every recorded file); a name without a
            recorded sum (written later, e.g. an attribute bank) is not checked.

    Raises:
        CheckpointError: a recorded file is missing or its content changed (a flipped bit, a
            truncation): one line naming the file.
    """
    cfg = path if isinstance(path, CheckpointConfig) else read_checkpoint_config(path)
    sums = cfg.extra.get("files") or {}
    for name in (sorted(sums) if names is None else [n for n in names if n in sums]):
        f = cfg.path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing (config.json records it)")
        if sha256_file(f) != sums[name]:
            raise CheckpointError(f"{f}: checksum mismatch, the file is corrupt (SHA-256 differs from the one "
                                  f"recorded in config.json)")


def load_generator(path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                   weights: str = "default"):
    """Load a generator for inference: ``(Generator, CheckpointConfig)``.

    Args:
        path: a checkpoint folder, a run folder (its latest checkpoint), or ``None`` for the
            shipped checkpoint (:func:`darkgan.paths.shipped_checkpoint`).
        device: where to put the model; it is returned in ``eval()`` mode, float32.
        weights: ``"default"`` (``generator.safetensors``: EMA weights when training used EMA) or
            ``"raw"`` (``generator_raw.safetensors`` of a training checkpoint).

    Raises:
        CheckpointError: missing/incomplete/corrupt checkpoint (the weights file's SHA-256 is
            checked against config.json), incompatible format version, invalid values in
            config.json (:meth:`CheckpointConfig.check`), weights that do not match the
            configuration, ``weights`` not ``"default"``/``"raw"``, or ``"raw"`` asked of a
            checkpoint without raw weights (trained without an EMA, or exported).
    """
    from darkgan.models.generator import Generator

    if weights not in ("default", "raw"):
        raise CheckpointError(f"weights must be 'default' or 'raw', got {weights!r}")

    if path is None:
        from darkgan.paths import shipped_checkpoint

        path = shipped_checkpoint()
    cfg = read_checkpoint_config(path)
    try:
        g = Generator(cfg.config.model, cfg.n_pitches, cfg.n_attributes)
    except (DarkGANError, ValueError) as e:
        raise CheckpointError(f"{cfg.path / 'config.json'}: cannot build the generator ({e})") from None
    fname = GENERATOR_FILE if weights == "default" else "generator_raw.safetensors"
    if weights == "raw" and not (cfg.path / fname).is_file():
        raise CheckpointError(f"{cfg.path}: has no raw generator weights ({fname}); load or export the default")
    verify_checkpoint(cfg, [fname])
    _load_module(g, _load_tensors(cfg.path / fname), cfg.path / fname)
    return g.to(device).eval(), cfg


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Load everything a resume needs from a training checkpoint.

    Returns a dict with ``config`` (:class:`CheckpointConfig`), ``generator`` (raw weights),
    ``ema`` (or None), ``critic``, ``optim`` (``{"g": ..., "d": ...}``), ``train_state`` (dict),
    ``rng`` (tensors).

    Raises:
        CheckpointError: not a complete training checkpoint, or a corrupt file (every file's
            SHA-256 is checked against config.json first).
    """
    cfg = read_checkpoint_config(path)
    p = cfg.path
    for name in (CRITIC_FILE, "train_state.json"):
        if not (p / name).is_file():
            raise CheckpointError(f"{p}: not a training checkpoint ({name} missing); cannot resume from it")
    if cfg.dtype != "float32":
        raise CheckpointError(f"{p}: a {cfg.dtype} export cannot be resumed")
    verify_checkpoint(cfg)
    out: dict[str, Any] = {"config": cfg}
    if cfg.generator_weights == "ema":
        out["generator"] = _load_tensors(p / "generator_raw.safetensors")
        out["ema"] = _load_tensors(p / GENERATOR_FILE)
    else:
        out["generator"] = _load_tensors(p / GENERATOR_FILE)
        out["ema"] = None
    out["critic"] = _load_tensors(p / CRITIC_FILE)
    out["optim"] = {}
    for f in sorted(p.glob("optim_*.pt")):
        try:
            out["optim"][f.stem[len("optim_"):]] = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{f}: corrupt optimizer state ({type(e).__name__})") from None
    out["rng"] = _load_tensors(p / "rng.safetensors") if (p / "rng.safetensors").is_file() else {}
    try:
        out["train_state"] = json.loads((p / "train_state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{p / 'train_state.json'}: corrupt ({e})") from None
    return out


def load_critic(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], CheckpointConfig]:
    """The critic of a training checkpoint, a run folder (its latest checkpoint) or an export
    made with ``critic=True`` (:func:`export_generator`; the shipped ``default`` has one), as
    float32 tensors, checksum verified: ``(tensors, config)``.

    Raises:
        CheckpointError: no checkpoint there, no ``critic.safetensors`` in it, one whose sum
            ``config.json`` does not record, or a corrupt file.
    """
    cfg = read_checkpoint_config(path)
    if not (cfg.path / CRITIC_FILE).is_file():
        raise CheckpointError(f"{cfg.path}: holds no critic ({CRITIC_FILE} missing); pass a training run or an "
                              f"export made with `darkgan export-generator --with-critic`")
    if CRITIC_FILE not in (cfg.extra.get("files") or {}):
        raise CheckpointError(f"{cfg.path / CRITIC_FILE}: no checksum in config.json; not written by darkgan")
    verify_checkpoint(cfg, [CRITIC_FILE])
    return _cast(_load_tensors(cfg.path / CRITIC_FILE), torch.float32), cfg


def attach_critic(checkpoint: str | os.PathLike, source: str | os.PathLike) -> Path:
    """Give an export the critic its generator was judged by: copy ``source``'s critic (a
    training checkpoint, run folder or export with one: :func:`load_critic`) into the export
    ``checkpoint`` (float16 when the export is), atomically; the generator, the attribute bank
    and the metadata stay as they are, ``extra.critic_from`` records the source, and every file's
    SHA-256 is recorded again. For an export made without ``--with-critic`` whose run is lost:
    warm a critic against it (``--init-generator`` it with ``train.critic_warmup`` critic-only
    steps; the checkpoint at the warm-up's end still holds the export's generator) and attach it.

    Raises:
        CheckpointError: no checkpoint, a corrupt one, no critic in ``source``, a critic of
            another architecture, vocabulary or pitch range than the export's, or an unwritable folder.
    """
    from darkgan.models.critic import Critic
    from darkgan.paths import provenance

    cfg = read_checkpoint_config(checkpoint)
    verify_checkpoint(cfg)
    tensors, src = load_critic(source)
    lo, hi = cfg.pitch_range
    _load_module(Critic(cfg.config.model, hi - lo + 1, len(cfg.attributes)), tensors, src.path / CRITIC_FILE)
    tensors = _cast(tensors, torch.float16 if cfg.dtype == "float16" else None)
    meta = json.loads((cfg.path / "config.json").read_text(encoding="utf-8"))
    meta.setdefault("extra", {})["critic_from"] = {"path": provenance(src.path), "step": int(src.step)}
    with _staged(cfg.path, "attach a critic") as tmp:
        for f in sorted(cfg.path.iterdir()):
            if f.is_file() and f.name not in ("config.json", MARKER, CRITIC_FILE):
                shutil.copy2(f, tmp / f.name)
        _save_tensors(tmp / CRITIC_FILE, tensors)
        finish_folder(tmp, meta, cfg.step)
    return cfg.path


def load_into(module: nn.Module, tensors: dict[str, torch.Tensor], where: str | Path = "checkpoint") -> None:
    """Load ``tensors`` into ``module`` with shape checks (raises CheckpointError)."""
    _load_module(getattr(module, "module", module), tensors, Path(where))


def export_generator(src: str | os.PathLike, dst: str | os.PathLike, *, half: bool = False,
                     weights: str = "default", critic: bool = False, synthesis_fade: int | None = None) -> Path:
    """Copy a checkpoint's inference part (config + generator weights, and the attribute bank
    when present) to ``dst``, optionally in float16 (the shipped checkpoint: paper-size G is
    17.5 MB in fp16).

    Args:
        weights: ``"default"`` (the EMA weights when training kept an EMA) or ``"raw"`` (the
            trained generator's own weights, ``generator_raw.safetensors``).
        critic: also copy the critic (``critic.safetensors``, in float16 with ``half``), so that a
            fine-tune can start from the export with ``--init-critic`` instead of a fresh critic
            that needs thousands of critic-only steps (StyleGAN2-ADA's pickles keep D for the
            same reason). The export stays an inference checkpoint: it cannot be resumed.
        synthesis_fade: play the export with another ``model.synthesis_fade`` (samples, [0, 2048];
            ``None``: the source's). Every training term heard the source's fade, so this changes
            what the taggers hear (docs/generation.md, "The end of a note"): measure before shipping.
            The fade the weights were trained with is kept as ``synthesis_fade_trained`` in the
            config's extra while the export plays another.

    Raises:
        CheckpointError: bad source, a ``"raw"`` export of a checkpoint without raw weights, a
            ``critic`` export of a checkpoint without a critic, or an unwritable destination.
        DarkGANError: ``synthesis_fade`` outside [0, 2048].
    """
    critic_tensors = load_critic(src)[0] if critic else None
    g, cfg = load_generator(src, weights=weights)
    cfg.extra = {k: v for k, v in cfg.extra.items() if k != "files"}
    cfg.extra["exported_from_step"] = cfg.step
    src_dir = cfg.path
    cfg = dataclasses.replace(cfg, path=None)
    if synthesis_fade is not None and int(synthesis_fade) != cfg.model.synthesis_fade:
        trained = int(cfg.extra.pop("synthesis_fade_trained", cfg.model.synthesis_fade))
        cfg.config.model = dataclasses.replace(cfg.config.model, synthesis_fade=int(synthesis_fade))
        cfg.config.model.validate()
        g.cfg = cfg.config.model
        if trained != int(synthesis_fade):  # back to the trained fade: nothing to record
            cfg.extra["synthesis_fade_trained"] = trained
    out = save_checkpoint(dst, g, cfg, half=half, critic=critic_tensors,
                          weights_label="raw" if weights == "raw" else cfg.generator_weights)
    bank = src_dir / "attribute_bank.safetensors"  # written by `darkgan generate --build-bank`
    if bank.is_file():
        with atomic_write(out / bank.name, "wb") as f:
            f.write(bank.read_bytes())
    return out
