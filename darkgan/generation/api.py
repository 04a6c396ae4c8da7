"""The Python API of DarkGAN: load a checkpoint, generate 1 s notes from pitch + attributes.

Quick start::

    import darkgan
    g = darkgan.DarkGAN.load()                      # the shipped checkpoint, on the CPU
    g.attributes[:3]                                # AudioSet display names of the K inputs
    audio = g.generate(pitch=60, attributes={"Tuning fork": 0.8}, n=4, seed=0)   # [4, 16000]
    audio = g.generate(pitch=52, like="my_note.wav")                             # timbre transfer

The generator (paper Sec. 4.3.2) is ``G(z, p, alpha)``: noise ``z ~ N(0, I_Z)``, the pitch
one-hot over the trained MIDI range and ``alpha in [0, 1]^K``, the teacher's soft labels
``sigmoid(z_teacher / T)`` at the training temperature T (Eq. 1). The conditioning vector of
each note is built as follows:

1. a *base* vector: the teacher's soft labels of ``like`` (a WAV file, or a note of a labelled
   dataset) when given; otherwise those of a random validation note of the same pitch from the
   checkpoint's attribute bank (:mod:`darkgan.generation.bank`; as the paper, Sec. 4.4), drawn
   independently for every note;
2. the attributes the user gives (``{"Tuning fork": 0.8}``; AudioSet display names, matched
   case-insensitively) replace the base values. Values outside [0, 1] are allowed (the paper's
   out-of-distribution study) with a :class:`GenerationWarning`.

Post-processing of every note: the generator's normalised MAG-IF ``[B, 2, 1024, 32]`` is
de-normalised with the checkpoint's statistics and inverted to a waveform
(:func:`darkgan.data.magif.magif_to_wave`: phase = pi cumsum(IF), inverse STFT). The *limiter*
is a per-note gain, never a clip or a soft-clip: a note whose absolute peak exceeds 1.0 is
divided by its peak (a level change, no distortion); notes within [-1, 1] are untouched. Every
such note is counted (``last_report["stats"]``) and announced with a :class:`GenerationWarning`;
so are silent notes (RMS below -60 dBFS). A non-finite output raises :class:`DarkGANError` in
:meth:`DarkGAN.generate` (it is counted, not hidden, by :meth:`DarkGAN.generate_batch`).

Randomness: ``seed`` seeds two independent numpy streams, one for z (standard normal, float64
cast to float32) and one for the bank draws; both are consumed note by note, so a note's
output does not depend on the batch size, and z is the same on CPU and GPU.
"""
from __future__ import annotations

import difflib
import math
import numbers
import os
import secrets
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from darkgan.errors import CheckpointError, DarkGANError, DataError

#: Most notes :meth:`DarkGAN.generate` returns in one array (10 000 x 64 KB = 640 MB); larger
#: requests use :meth:`DarkGAN.iter_generate` (streamed chunks) or the CLI (files).
MAX_NOTES = 10_000
#: Notes per generator call by device type (bounded memory). On the 2-core CPU small batches are
#: faster per note (activations of a 64-note batch spill the cache; measured for ``small``, 1 thread:
#: 6.3 / 6.1 / 3.5 / 3.2 notes/s at batch 1 / 4 / 16 / 64); on an H100 ``paper`` runs ~2 200-2 800
#: notes/s at batch 64-256 (benchmarks/bench_generate.py).
DEFAULT_BATCH = {"cpu": 4, "cuda": 128}
#: ``last_report`` lists every note's pitch and attribute source up to this many notes.
REPORT_MAX_NOTES = 100_000
#: RMS (dBFS) below which a generated note is reported as silent.
SILENCE_DB = -60.0
#: Leading-silence threshold for ``like=`` audio files, relative to the file's peak (dB), and the
#: samples kept before the first sample above it: rendered training notes cross -60 dB re. peak
#: 11-61 samples after note-on, so a trimmed file starts like them (the teacher is sensitive to
#: onset shifts of a few ms: its STFT hop is 10 ms).
LIKE_TRIM_DB = -60.0
LIKE_TRIM_KEEP = 24
LIKE_TRIM_MIN = 160  #: leading quiet shorter than this (10 ms) is not trimmed
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


class GenerationWarning(UserWarning):
    """Something worth knowing about a generation that is not an error (values outside [0, 1],
    peak-normalised or silent notes, a partially trained checkpoint, a teacher mismatch)."""


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


def _device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DarkGANError(f"device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DarkGANError(f"device {device!r}: CUDA is not available on this machine; use device='cpu'")
    return dev


def _as_int(value, what: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise DarkGANError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        return int(value)
    raise DarkGANError(f"{what} must be an integer, got {value!r}")


def _as_value(name: str, value) -> float:
    """A finite float from an attribute value (numbers and numeric numpy scalars only)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.number):
            value = value.item()
        else:
            raise DarkGANError(f"attribute {name!r}: value must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise DarkGANError(f"attribute {name!r}: value must be finite, got {v}")
    return v


class DarkGAN:
    """A loaded DarkGAN generator with its vocabulary, pitch range and attribute bank.

    Build it with :meth:`DarkGAN.load`. Attributes (read-only properties):
        attributes: K attribute names (AudioSet display names), in input order.
        pitch_range: ``(lo, hi)`` MIDI, inclusive.
        temperature: the distillation temperature T the checkpoint was trained at.
        config: the :class:`darkgan.models.checkpoint.CheckpointConfig`.
        device: where the generator runs.
        last_report: what the last :meth:`generate` / :meth:`iter_generate` did (seed, stats,
            per-note pitch and attribute source).
    """

    def __init__(self, generator, config, device: torch.device, bank=None, data: str | os.PathLike | None = None):
        self.generator = generator
        self._cfg = config
        self._device = device
        self.bank = bank
        self.data = Path(data) if data is not None else None
        self.normalizer = config.get_normalizer()
        self._lower = {" ".join(name.lower().split()): i for i, name in enumerate(config.attributes)}
        self._bank_problem = ""  # why data= gave no bank (shown in the no-bank error)
        self._teacher = None
        self._labels: dict[str, tuple[dict[str, int], np.ndarray]] = {}
        self.last_report: dict = {}
        n_scales = generator.n_scales
        self._scale = min(int(config.scale), n_scales - 1) if config.scale is not None else n_scales - 1
        self._alpha = float(config.alpha) if self._scale > 0 else 1.0
        if self._scale < n_scales - 1:
            warnings.warn(f"{config.path}: checkpoint trained up to scale {self._scale} of {n_scales}; notes are "
                          "generated at that resolution and up-sampled (a preview, not final quality)",
                          GenerationWarning, stacklevel=3)

    # ------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
             data: str | os.PathLike | None = None, weights: str = "default") -> "DarkGAN":
        """Load a checkpoint for generation.

        Args:
            path: a checkpoint folder, a run folder (its latest checkpoint) or ``None`` for the
                shipped checkpoint (:func:`darkgan.paths.shipped_checkpoint`).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
            data: optional labelled dataset folder: the default ``like_data`` for dataset notes,
                and the source of the attribute bank when the checkpoint carries none.
            weights: ``"default"`` (EMA weights when trained with EMA) or ``"raw"``.

        Raises:
            CheckpointError: missing, incomplete, corrupt or incompatible checkpoint, or a
                corrupt attribute bank. DarkGANError: unavailable device.
        """
        from darkgan.generation.bank import load_bank, make_bank
        from darkgan.models.checkpoint import load_generator

        dev = _device(device)
        if path is None:
            from darkgan.paths import shipped_checkpoint

            path = shipped_checkpoint()
            if not Path(path).exists():
                raise CheckpointError(f"{path}: the shipped checkpoint is not installed; pass a checkpoint path")
        generator, cfg = load_generator(path, dev, weights)
        bank, problem = None, ""
        if cfg.attributes_enabled and cfg.attributes:
            teacher_id = str(cfg.teacher.get("id", "")) or None
            bank = load_bank(cfg.path, cfg.attributes, teacher_id)
            if bank is None and data is not None and teacher_id:
                try:  # data= may serve like= only (an unlabelled dataset): fail later, if at all
                    bank = make_bank(data, cfg.class_indices, cfg.attributes, teacher_id, cfg.pitch_range)
                except DataError as e:
                    problem = str(e)
        model = cls(generator, cfg, dev, bank, data)
        model._bank_problem = problem
        return model

    # --------------------------------------------------------------------------- properties
    @property
    def attributes(self) -> list[str]:
        """The K attribute names (AudioSet display names), in input order ([] for a baseline)."""
        return list(self._cfg.attributes) if self.has_attributes else []

    @property
    def has_attributes(self) -> bool:
        """False for the paper's baseline (no attribute conditioning)."""
        return bool(self._cfg.attributes_enabled and self._cfg.attributes)

    @property
    def pitch_range(self) -> tuple[int, int]:
        """``(lo, hi)`` trained MIDI pitches, inclusive."""
        return tuple(self._cfg.pitch_range)

    @property
    def temperature(self) -> float:
        return float(self._cfg.temperature)

    @property
    def latent_dim(self) -> int:
        return int(self.generator.cfg.latent_dim)

    @property
    def config(self):
        return self._cfg

    @property
    def checkpoint_path(self) -> Path | None:
        return self._cfg.path

    @property
    def device(self) -> torch.device:
        return self._device

    def __repr__(self) -> str:
        lo, hi = self.pitch_range
        return (f"<DarkGAN {self._cfg.config.preset} K={len(self.attributes)} pitch {lo}..{hi} "
                f"T={self.temperature:g} step={self._cfg.step} device={self._device} path={self._cfg.path}>")

    # --------------------------------------------------------------------------- attributes
    def attribute_index(self, name: str) -> int:
        """Input index of attribute ``name`` (case-insensitive, surrounding spaces ignored).

        Raises:
            DarkGANError: unknown name; the message lists the closest vocabulary names.
        """
        if not self.has_attributes:
            raise DarkGANError("this checkpoint is the no-attribute baseline: it takes no attributes")
        if not isinstance(name, str):
            raise DarkGANError(f"attribute names must be strings, got {name!r}")
        key = " ".join(name.lower().split())
        if key in self._lower:
            return self._lower[key]
        close = self.closest_attributes(name)
        hint = f"; closest: {', '.join(repr(c) for c in close)}" if close else ""
        raise DarkGANError(f"unknown attribute {name!r}{hint} (all {len(self.attributes)}: "
                           "`darkgan generate --list-attributes`)")

    def closest_attributes(self, name: str, n: int = 5) -> list[str]:
        """Up to ``n`` vocabulary names closest to ``name`` (difflib ratio, then substrings)."""
        key = " ".join(str(name).lower().split())
        lowers = list(self._lower)
        found = difflib.get_close_matches(key, lowers, n=n, cutoff=0.5)
        found += [c for c in lowers if key and (key in c or c in key) and c not in found]
        return [self._cfg.attributes[self._lower[c]] for c in found[:n]]

    def _overrides(self, attributes) -> tuple[np.ndarray, np.ndarray]:
        """Validated ``(indices [m], values [m])`` of a user attribute mapping."""
        if attributes is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        if not isinstance(attributes, Mapping):
            raise DarkGANError(f"attributes must be a mapping name -> value, got {type(attributes).__name__}")
        if attributes and not self.has_attributes:
            raise DarkGANError("this checkpoint is the no-attribute baseline: it takes no attributes")
        idx, vals, seen, outside = [], [], {}, []
        for name, value in attributes.items():
            i = self.attribute_index(name)
            if i in seen:
                raise DarkGANError(f"attribute {self._cfg.attributes[i]!r} given twice ({seen[i]!r} and {name!r})")
            seen[i] = name
            v = _as_value(name, value)
            if not 0.0 <= v <= 1.0:
                outside.append(f"{self._cfg.attributes[i]}={v:g}")
            idx.append(i)
            vals.append(v)
        if outside:
            warnings.warn(f"attribute values outside the trained range [0, 1]: {', '.join(outside)} "
                          "(allowed; the generator extrapolates)", GenerationWarning, stacklevel=3)
        return np.asarray(idx, np.int64), np.asarray(vals, np.float64)

    def attribute_vector(self, attributes: Mapping[str, float] | None = None, base=None,
                         seed: int | None = None, pitch: int | None = None) -> np.ndarray:
        """The conditioning vector ``alpha [K]`` float32 for ``attributes`` over ``base``.

        Args:
            attributes: ``{name: value}`` overrides (names case-insensitive).
            base: ``[K]`` starting vector (array-like); ``None``: a random validation note of
                the attribute bank (of MIDI ``pitch`` when given), drawn with ``seed``.
            seed, pitch: see ``base``.

        Raises:
            DarkGANError: unknown name, non-numeric or non-finite value, base of the wrong shape
                or non-finite, or no bank to draw a base from.
        """
        idx, vals = self._overrides(attributes)
        k = len(self.attributes)
        if base is None:
            if len(idx) == k:
                vec = np.zeros(k, np.float32)
            else:
                rng = np.random.default_rng(seed)
                p = np.array([pitch if pitch is not None else self.pitch_range[0]])
                vec = self._bank_alpha(p, rng, match_pitch=pitch is not None)[0][0]
        else:
            vec = self._check_vectors(base, 1, "base")[0]
        vec = vec.copy()
        vec[idx] = vals
        return vec

    def validation_attributes(self, pitch: int | None = None) -> np.ndarray | None:
        """The attribute bank as conditioning vectors ``[M, K]`` float32 (``sigmoid(z / T)``),
        only the notes of MIDI ``pitch`` when given; ``None`` when the checkpoint has no bank."""
        if self.bank is None or not self.has_attributes:
            return None
        rows = np.arange(len(self.bank)) if pitch is None else np.flatnonzero(self.bank.pitch == int(pitch))
        return self.bank.alpha(rows, self.temperature)

    def _check_vectors(self, a, n: int, what: str) -> np.ndarray:
        """``a`` as float32 ``[n, K]`` (a ``[K]`` vector is repeated); finite values only."""
        k = len(self.attributes)
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        try:
            arr = np.asarray(a, dtype=np.float32)
        except (TypeError, ValueError):
            raise DarkGANError(f"{what}: attribute values must be numbers") from None
        if arr.ndim == 1 and arr.shape[0] == k:
            arr = np.broadcast_to(arr, (n, k))
        if arr.shape != (n, k):
            raise DarkGANError(f"{what}: expected attribute vectors [{n}, {k}] (or [{k}]), got {list(arr.shape)}")
        if not np.isfinite(arr).all():
            raise DarkGANError(f"{what}: attribute values must be finite (found NaN or inf)")
        return np.ascontiguousarray(arr)

    def _bank_alpha(self, pitches: np.ndarray, rng: np.random.Generator, match_pitch: bool = True):
        """``(alpha [n, K], sources [n])`` drawn from the attribute bank."""
        if self.bank is None:
            why = f" ({self._bank_problem})" if self._bank_problem else ""
            raise DarkGANError(
                f"{self._cfg.path}: no attribute bank (attribute_bank.safetensors) to fill in the attributes not "
                f"given{why}; set every attribute, use like=, pass data=DIR to DarkGAN.load, or build the bank: "
                "`darkgan generate --build-bank --data DIR`")
        rows = self.bank.sample_rows(pitches, rng, match_pitch)
        sources = [f"bank:{self.bank.note_str[r] or r}" for r in rows]
        return self.bank.alpha(rows, self.temperature), sources

    # ----------------------------------------------------------------------------- teacher
    @property
    def teacher(self):
        """The checkpoint's teacher (loaded on first use, on this device)."""
        if self._teacher is None:
            from darkgan.teacher import load_teacher

            tid = str(self._cfg.teacher.get("id", ""))
            if not tid:
                raise CheckpointError(f"{self._cfg.path / 'config.json'}: no teacher id recorded; cannot label audio")
            self._teacher = load_teacher(tid, device=str(self._device) if self._device.type == "cuda" else "cpu")
            want = str(self._cfg.teacher.get("weights_sha256", ""))
            if want and self._teacher.weights_sha256 and want != self._teacher.weights_sha256:
                warnings.warn(f"teacher {tid}: weights differ from the checkpoint's (sha256 {want[:12]} vs "
                              f"{self._teacher.weights_sha256[:12]}); its labels may not match the training labels",
                              GenerationWarning, stacklevel=2)
        return self._teacher

    def _logits_to_alpha(self, logits) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64)[..., np.asarray(self._cfg.class_indices, dtype=np.int64)]
        return (1.0 / (1.0 + np.exp(-z / self.temperature))).astype(np.float32)

    def teacher_attributes(self, wave) -> np.ndarray:
        """The teacher's soft labels of audio as conditioning vectors, ``[B, K]`` float32.

        ``alpha = sigmoid(z[:, class_indices] / T)`` with T the checkpoint's training temperature
        (paper Eq. 1), the transform that produced the training conditioning.

        Args:
            wave: ``[B, T]`` or ``[T]`` float mono at 16 kHz (numpy or torch); 1 s notes
                (16000 samples) match the training crops.

        Raises:
            DarkGANError: a baseline checkpoint, or a bad shape (from the teacher).
        """
        if not self.has_attributes:
            raise DarkGANError("this checkpoint is the no-attribute baseline: it takes no attributes")
        logits = self.teacher.logits(wave).detach().cpu().numpy()
        return self._logits_to_alpha(logits)

    def like_attributes(self, like: str | os.PathLike, like_data: str | os.PathLike | None = None) -> np.ndarray:
        """Conditioning vector ``[K]`` of ``like``: an audio file, or a note of a dataset.

        Args:
            like: a path to an audio file (any rate/channels; down-mixed, resampled to 16 kHz,
                leading silence trimmed, first 1 s kept, zero-padded: :func:`load_note`), or
                a ``note_str`` of the dataset ``like_data`` (its stored teacher logits, or the
                teacher on ``audio/<note_str>.wav``'s first second when the dataset is unlabelled).
            like_data: the dataset folder for a ``note_str`` (default: ``data`` given to load).

        Raises:
            DataError: unreadable or silent file, unknown note (closest names listed), dataset
                folder missing. DarkGANError: a baseline checkpoint.
        """
        if not self.has_attributes:
            raise DarkGANError("this checkpoint is the no-attribute baseline: like= needs attributes")
        p = Path(like)
        if p.is_file() or p.suffix.lower() in AUDIO_SUFFIXES:
            return self.teacher_attributes(load_note(p)[None])[0]
        data = Path(like_data) if like_data is not None else self.data
        if data is None:
            raise DarkGANError(f"like={str(like)!r}: not an audio file; for a dataset note give the dataset "
                               "folder (like_data=DIR, CLI --data DIR)")
        return self._dataset_note_alpha(str(like), data)

    def _dataset_note_alpha(self, note: str, data: Path) -> np.ndarray:
        from darkgan.generation.bank import read_dataset_labels

        if not data.is_dir():
            raise DataError(f"{data}: dataset folder not found")
        tid = str(self._cfg.teacher.get("id", ""))
        key = str(data.resolve())
        if key not in self._labels and (data / "labels" / f"{tid}.npz").is_file():
            names, logits = read_dataset_labels(data, tid)
            self._labels[key] = ({s: i for i, s in enumerate(names.tolist())}, logits)
        if key in self._labels:
            pos, logits = self._labels[key]
            if note in pos:
                return self._logits_to_alpha(logits[pos[note]])
            known = list(pos)
        else:
            wav = data / "audio" / f"{note}.wav"
            if wav.is_file():  # an unlabelled dataset: label this note on the fly
                return self.teacher_attributes(load_note(wav, trim=False)[None])[0]
            known = [p.stem for p in (data / "audio").glob("*.wav")] if (data / "audio").is_dir() else []
        close = difflib.get_close_matches(note, known, n=3, cutoff=0.6)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise DataError(f"{data}: no note {note!r} (neither an audio file nor a note of this dataset){hint}")

    # --------------------------------------------------------------------------- synthesis
    def _pitches(self, pitch, n: int) -> np.ndarray:
        lo, hi = self.pitch_range
        if isinstance(pitch, (str, bytes)):
            raise DarkGANError(f"pitch must be a MIDI note number, got {pitch!r}")
        if isinstance(pitch, (Sequence, np.ndarray, torch.Tensor)):
            vals = [_as_int(p, "pitch") for p in (pitch.tolist() if hasattr(pitch, "tolist") else pitch)]
            if len(vals) != n:
                raise DarkGANError(f"pitch: {len(vals)} values for n={n} notes (give one, or n)")
        else:  # one pitch for all: a broadcast view, no per-note memory (n may be huge)
            v = _as_int(pitch, "pitch")
            if not lo <= v <= hi:
                raise DarkGANError(f"pitch {v} is outside this checkpoint's trained range, MIDI {lo}..{hi}")
            return np.broadcast_to(np.int64(v), (n,))
        bad = sorted({v for v in vals if not lo <= v <= hi})
        if bad:
            raise DarkGANError(f"pitch {bad[0]} is outside this checkpoint's trained range, MIDI {lo}..{hi}")
        return np.asarray(vals, dtype=np.int64)

    def _synth(self, z: torch.Tensor, pitch_index: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
        """One chunk: normalised MAG-IF -> raw waveform ``[b, 16000]`` on the device."""
        from darkgan.data.magif import N_BINS, N_FRAMES, magif_to_wave

        x = self.generator(z, pitch_index, alpha, scale=self._scale, alpha=self._alpha)
        if tuple(x.shape[-2:]) != (N_BINS, N_FRAMES):
            x = self.generator.upsample_to(x, (N_BINS, N_FRAMES))
        return magif_to_wave(self.normalizer.denormalize(x.float()))

    def generate_magif(self, z, pitch, attributes=None) -> torch.Tensor:
        """Normalised MAG-IF ``[n, 2, 1024, 32]`` (CPU) for evaluation; arguments as :meth:`generate_batch`
        (one generator call: keep n moderate)."""
        z_t, p_t, a_t = self._batch_inputs(z, pitch, attributes)
        with torch.inference_mode():
            x = self.generator(z_t.to(self._device), p_t.to(self._device),
                               None if a_t is None else a_t.to(self._device), scale=self._scale, alpha=self._alpha)
            return x.float().cpu()

    def _batch_inputs(self, z, pitch, attributes):
        z_t = torch.as_tensor(np.asarray(z.detach().cpu() if isinstance(z, torch.Tensor) else z, dtype=np.float32))
        if z_t.dim() != 2 or z_t.shape[1] != self.latent_dim:
            raise DarkGANError(f"z must be [n, {self.latent_dim}], got {list(z_t.shape)}")
        n = z_t.shape[0]
        if n < 1:
            raise DarkGANError("generate_batch needs at least one note")
        if not torch.isfinite(z_t).all():
            raise DarkGANError("z must be finite (found NaN or inf)")
        p_np = pitch.detach().cpu().numpy() if isinstance(pitch, torch.Tensor) else np.asarray(pitch)
        p = self._pitches(p_np.reshape(-1), n)
        p_t = torch.from_numpy(p - self.pitch_range[0])
        if self.has_attributes:
            if attributes is None:
                raise DarkGANError(f"attributes [n, {len(self.attributes)}] are required by this checkpoint")
            a_t = torch.from_numpy(self._check_vectors(attributes, n, "attributes"))
        else:
            if attributes is not None and np.asarray(attributes).size:
                raise DarkGANError("this checkpoint is the no-attribute baseline: it takes no attributes")
            a_t = None
        return z_t, p_t, a_t

    def generate_batch(self, z, pitch, attributes=None, batch_size: int | None = None, limit: bool = True,
                       return_stats: bool = False):
        """Generate from explicit inputs, in chunks (bounded memory) — for evaluation.

        Args:
            z: ``[n, Z]`` noise (numpy or torch; Z = :attr:`latent_dim`).
            pitch: ``[n]`` MIDI pitches within :attr:`pitch_range`.
            attributes: ``[n, K]`` (or ``[K]``) conditioning vectors alpha; ``None`` for the baseline.
            batch_size: notes per generator call (default ``DEFAULT_BATCH[device type]``).
            limit: apply the peak limiter (:func:`limit_peaks`); False returns the raw inverse.
            return_stats: also return the :class:`OutputStats`.

        Returns:
            ``[n, 16000]`` float32 CPU tensor at 16 kHz (non-finite notes are left as they are
            and counted), or ``(waves, stats)``.

        Raises:
            DarkGANError: shapes, pitch outside the range, non-finite inputs, bad batch size.
        """
        z_t, p_t, a_t = self._batch_inputs(z, pitch, attributes)
        bs = self._batch_size(batch_size)
        n = z_t.shape[0]
        from darkgan.data.magif import N_SAMPLES

        out = torch.empty((n, N_SAMPLES), dtype=torch.float32)
        stats = OutputStats()
        with torch.inference_mode():
            for s in range(0, n, bs):
                w = self._synth(z_t[s:s + bs].to(self._device), p_t[s:s + bs].to(self._device),
                                None if a_t is None else a_t[s:s + bs].to(self._device))
                w_lim, st = limit_peaks(w)
                stats.add(st)
                out[s:s + bs] = (w_lim if limit else w).cpu()
        return (out, stats) if return_stats else out

    def _batch_size(self, batch_size) -> int:
        if batch_size is None:
            return DEFAULT_BATCH.get(self._device.type, 16)
        bs = _as_int(batch_size, "batch_size")
        if bs < 1:
            raise DarkGANError(f"batch_size must be >= 1, got {bs}")
        return bs

    def iter_generate(self, pitch=60, attributes=None, n: int = 1, seed: int | None = None, like=None,
                      like_data=None, batch_size: int | None = None, match_pitch: bool = True) -> Iterator[np.ndarray]:
        """:meth:`generate` as a stream of chunks ``[b, 16000]`` float32 (b <= batch_size):
        memory stays bounded for any n. :attr:`last_report` is complete once exhausted.
        Arguments, errors and output as :meth:`generate` (no ``MAX_NOTES`` cap). Arguments are
        validated here, before the first chunk is asked for."""
        n = _as_int(n, "n")
        if n < 1:
            raise DarkGANError(f"n must be >= 1, got {n}")
        pitches = self._pitches(pitch, n)
        bs = self._batch_size(batch_size)
        idx, vals = self._overrides(attributes)
        k = len(self.attributes)
        base, base_source = None, None
        if like is not None:
            base = self.like_attributes(like, like_data)
            base_source = f"like:{like}"
        elif self.has_attributes and len(idx) == k:
            base, base_source = np.zeros(k, np.float32), "given"
        elif self.has_attributes and self.bank is None:
            self._bank_alpha(pitches[:1], np.random.default_rng(0))  # raises the no-bank error
        if seed is None:
            seed = secrets.randbits(63)
        seed = _as_int(seed, "seed")
        if seed < 0:
            raise DarkGANError(f"seed must be >= 0, got {seed}")
        return self._stream(pitches, idx, vals, base, base_source, seed, bs, match_pitch, like)

    def _stream(self, pitches, idx, vals, base, base_source, seed, bs, match_pitch, like) -> Iterator[np.ndarray]:
        n = len(pitches)
        z_rng = np.random.default_rng([seed, 0])
        a_rng = np.random.default_rng([seed, 1])
        stats = OutputStats()
        keep = n <= REPORT_MAX_NOTES  # per-note provenance only for n <= REPORT_MAX_NOTES
        sources: list[str] | None = [] if keep else None
        pitch_info = pitches.tolist() if keep else (int(pitches[0]) if pitches.strides == (0,) else None)
        self.last_report = {"seed": seed, "n": n, "pitch": pitch_info, "sources": sources,
                            "stats": asdict(stats), "checkpoint": str(self._cfg.path),
                            "attributes": {self._cfg.attributes[i]: float(v) for i, v in zip(idx, vals)},
                            "like": None if like is None else str(like), "complete": False}
        with torch.inference_mode():
            for s in range(0, n, bs):
                p = pitches[s:s + bs]
                b = len(p)
                z = torch.from_numpy(z_rng.standard_normal((b, self.latent_dim)).astype(np.float32))
                if self.has_attributes:
                    if base is not None:
                        a = np.repeat(base[None], b, axis=0)
                        src = [base_source] * b
                    else:
                        a, src = self._bank_alpha(p, a_rng, match_pitch)
                    a[:, idx] = vals
                    a_t = torch.from_numpy(np.ascontiguousarray(a)).to(self._device)
                else:
                    a_t, src = None, ["none"] * b
                w = self._synth(z.to(self._device), torch.from_numpy(p - self.pitch_range[0]).to(self._device), a_t)
                w, st = limit_peaks(w)
                stats.add(st)
                if sources is not None:
                    sources.extend(src)
                self.last_report["stats"] = asdict(stats)
                if st.nonfinite:
                    raise DarkGANError(f"{self._cfg.path}: the generator produced non-finite audio for {st.nonfinite} "
                                       f"of {b} notes (seed {seed}); the checkpoint may be corrupt or diverged")
                yield w.cpu().numpy().astype(np.float32, copy=False)
        self.last_report["complete"] = True
        if stats.peak_normalised:
            warnings.warn(f"{stats.peak_normalised} of {n} notes peaked above 1.0 (max {stats.max_peak:.3g}) and were "
                          "scaled down to peak 1.0 (gain only, no clipping)", GenerationWarning, stacklevel=2)
        if stats.silent:
            warnings.warn(f"{stats.silent} of {n} notes are silent (RMS < {SILENCE_DB:g} dBFS)",
                          GenerationWarning, stacklevel=2)

    def generate(self, pitch=60, attributes: Mapping[str, float] | None = None, n: int = 1,
                 seed: int | None = None, like: str | os.PathLike | None = None,
                 like_data: str | os.PathLike | None = None, batch_size: int | None = None,
                 match_pitch: bool = True) -> np.ndarray:
        """Generate ``n`` one-second notes.

        Args:
            pitch: MIDI pitch within :attr:`pitch_range` (one for all notes, or a sequence of n).
            attributes: ``{AudioSet display name: value}``, names case-insensitive; values
                in [0, 1] (outside: allowed, with a warning). Attributes not given take the
                values of ``like`` or of a random validation note (one per note).
            n: number of notes, 1..``MAX_NOTES`` (use :meth:`iter_generate` for more).
            seed: makes the result reproducible (``None``: random; the seed used is in
                ``last_report["seed"]``).
            like: an audio file or a dataset ``note_str`` whose teacher labels are the base
                vector (timbre transfer; see :meth:`like_attributes`).
            like_data: the dataset folder for a ``note_str`` ``like``.
            batch_size: notes per generator call (memory bound); default by device.
            match_pitch: draw base vectors among validation notes of the same pitch.

        Returns:
            ``[n, 16000]`` float32 numpy array at 16 kHz within [-1, 1] (see the limiter in the
            module docstring; counts in ``last_report["stats"]``).

        Raises:
            DarkGANError: unknown attribute (closest names listed), non-numeric/NaN value, pitch
                outside the trained range, n < 1 or n > MAX_NOTES, no attribute bank to fill in
                attributes, non-finite generator output. DataError: unreadable ``like``.
        """
        n_int = _as_int(n, "n")
        if n_int > MAX_NOTES:
            raise DarkGANError(f"n={n_int} notes would need {n_int * 64 / 1e6:.1f} GB in one array (limit {MAX_NOTES}); "
                               "use DarkGAN.iter_generate (streamed chunks) or `darkgan generate -n N --out DIR`")
        chunks = list(self.iter_generate(pitch, attributes, n_int, seed, like, like_data, batch_size, match_pitch))
        return np.concatenate(chunks, axis=0)


def load_note(path: str | os.PathLike, trim: bool = True) -> np.ndarray:
    """A 1 s, 16 kHz mono note ``[16000]`` float32 from any audio file.

    Down-mixed and resampled (:func:`darkgan.teacher.resample.load_audio`); with ``trim`` the
    leading silence is cut when the first sample above ``LIKE_TRIM_DB`` re. the file's peak comes
    later than ``LIKE_TRIM_MIN`` samples (kept from ``LIKE_TRIM_KEEP`` samples before it), so the
    onset sits near 0 as in the training crops;
    then the first second is kept (zero-padded if shorter).

    Raises:
        DataError: missing, unreadable, empty or silent file.
    """
    from darkgan.data.magif import N_SAMPLES, SAMPLE_RATE
    from darkgan.teacher.resample import load_audio

    x = load_audio(path, SAMPLE_RATE)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: audio holds NaN or inf samples")
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak < 1e-5:
        raise DataError(f"{path}: the audio is silent")
    if trim:
        start = int(np.argmax(np.abs(x) >= peak * 10 ** (LIKE_TRIM_DB / 20)))
        if start > LIKE_TRIM_MIN:  # a real leading silence (files that start like a note are kept as is)
            x = x[start - LIKE_TRIM_KEEP:]
    out = np.zeros(N_SAMPLES, np.float32)
    out[:min(N_SAMPLES, len(x))] = x[:N_SAMPLES]
    return out
