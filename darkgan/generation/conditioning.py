"""The conditioner: from what a user asks for to the generator's attribute input ``alpha [n, K]``.

Everything that turns words, numbers and sounds into conditioning vectors lives here, apart
from the synthesiser (:mod:`darkgan.generation.synthesis`) that turns ``alpha`` into audio:

- the vocabulary: AudioSet display names, matched case-insensitively (:meth:`Conditioner.index`);
- the user scale (:class:`darkgan.generation.scale.AttributeScale`, fitted on the attribute
  bank): user value 0 = the dataset's typical note, 1 = its 99th percentile; ``scale="raw"``
  takes teacher probabilities as they are;
- the attribute bank (:mod:`darkgan.generation.bank`): random validation notes for the
  attributes not given (paper Sec. 4.4);
- steering (:mod:`darkgan.generation.steer`): the attributes not given follow the given ones
  as they do in the data (``steer="data"``, the default) or stay as drawn (``"none"``);
- ``like=`` (timbre transfer) and the teacher: ``alpha = sigmoid(z[:, class_indices] / T)``
  (paper Eq. 1) of an audio file or of a dataset note.
"""
from __future__ import annotations

import difflib
import math
import numbers
import os
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

from darkgan.errors import CheckpointError, DarkGANError, DataError
from darkgan.generation.steer import AttributePrior, check_steer

#: Leading-silence threshold for ``like=`` audio files, relative to the file's peak (dB), and the
#: samples kept before the first sample above it: rendered training notes cross -60 dB re. peak
#: 11-61 samples after note-on, so a trimmed file starts like them (the teacher is sensitive to
#: onset shifts of a few ms: its STFT hop is 10 ms).
LIKE_TRIM_DB = -60.0
LIKE_TRIM_KEEP = 24
LIKE_TRIM_MIN = 160  #: leading quiet shorter than this (10 ms) is not trimmed
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
#: The two scales attribute values can be given on (see the module docstring).
SCALES = ("user", "raw")
BASELINE = "this checkpoint is the no-attribute baseline: it takes no attributes"


class GenerationWarning(UserWarning):
    """Something worth knowing about a generation that is not an error (values outside the
    data's range, peak-normalised or silent notes, a partially trained checkpoint, a teacher
    mismatch)."""


def as_value(name: str, value) -> float:
    """A finite float from an attribute value (numbers and numeric numpy scalars only).

    Raises:
        DarkGANError: not a real number, or NaN / inf.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.number):
            value = value.item()
        else:
            raise DarkGANError(f"attribute {name!r}: value must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise DarkGANError(f"attribute {name!r}: value must be finite, got {v}")
    return v


def check_scale(scale) -> str:
    """``scale`` validated: ``"user"`` or ``"raw"``. Raises DarkGANError otherwise."""
    if scale not in SCALES:
        raise DarkGANError(f"scale={scale!r}: choose 'user' (0 typical, 1 = 99th percentile) or 'raw' "
                           "(teacher probabilities)")
    return scale


def load_note(path: str | os.PathLike, trim: bool = True) -> np.ndarray:
    """A 1 s, 16 kHz mono note ``[16000]`` float32 from any audio file.

    Down-mixed and resampled (:func:`darkgan.teacher.resample.load_audio`); with ``trim`` the
    leading silence is cut when the first sample above ``LIKE_TRIM_DB`` re. the file's peak comes
    later than ``LIKE_TRIM_MIN`` samples (kept from ``LIKE_TRIM_KEEP`` samples before it), so the
    onset sits near 0 as in the training crops; then the first second is kept (zero-padded).

    Raises:
        DataError: missing, unreadable, empty or silent file, NaN / inf samples.
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


class Conditioner:
    """Vocabulary, user scale, attribute bank, ``like=`` and teacher of one checkpoint.

    Args:
        cfg: the checkpoint's :class:`darkgan.models.checkpoint.CheckpointConfig` (attributes,
            class_indices, temperature T, teacher).
        bank: its :class:`darkgan.generation.bank.AttributeBank` (``None``: none).
        data: default dataset folder for ``like=`` dataset notes.
        device: where the teacher runs (a ``torch.device``).
        bank_problem: why no bank could be built from ``data`` (shown in the no-bank error).
    """

    def __init__(self, cfg, bank=None, data: str | os.PathLike | None = None, device=None, bank_problem: str = ""):
        self.cfg = cfg
        self.bank = bank
        self.data = Path(data) if data is not None else None
        self.device = device
        self.bank_problem = bank_problem
        self.enabled = bool(cfg.attributes_enabled and cfg.attributes)
        self.names: list[str] = list(cfg.attributes) if self.enabled else []
        self.temperature = float(cfg.temperature)
        self._prior: AttributePrior | None = None  # fitted on first use (:attr:`prior`)
        self._lower = {" ".join(n.lower().split()): i for i, n in enumerate(self.names)}
        self._scale = None
        self._teacher = None
        self._labels: dict[str, tuple[dict[str, int], np.ndarray]] = {}

    # ------------------------------------------------------------------ names
    def index(self, name: str) -> int:
        """Input index of attribute ``name`` (case-insensitive, surrounding spaces ignored).

        Raises:
            DarkGANError: unknown name (the closest vocabulary names listed), the baseline.
        """
        if not self.enabled:
            raise DarkGANError(BASELINE)
        if not isinstance(name, str):
            raise DarkGANError(f"attribute names must be strings, got {name!r}")
        key = " ".join(name.lower().split())
        if key in self._lower:
            return self._lower[key]
        close = self.closest(name)
        hint = f"; closest: {', '.join(repr(c) for c in close)}" if close else ""
        raise DarkGANError(f"unknown attribute {name!r}{hint} (all {len(self.names)}: "
                           "`darkgan generate --list-attributes`)")

    def closest(self, name: str, n: int = 5) -> list[str]:
        """Up to ``n`` vocabulary names closest to ``name`` (difflib ratio, then substrings)."""
        key = " ".join(str(name).lower().split())
        lowers = list(self._lower)
        found = difflib.get_close_matches(key, lowers, n=n, cutoff=0.5)
        found += [c for c in lowers if key and (key in c or c in key) and c not in found]
        return [self.names[self._lower[c]] for c in found[:n]]

    # ------------------------------------------------------------------ user scale
    @property
    def scale(self):
        """The user scale (:class:`AttributeScale`) fitted on the bank's logits at T.

        Raises:
            DarkGANError: no attribute bank (it defines what "typical" means).
        """
        if self._scale is None:
            from darkgan.generation.scale import AttributeScale

            if self.bank is None:
                raise DarkGANError(self._no_bank("define the user scale of attribute values (or use scale='raw', "
                                                 "CLI --raw)"))
            self._scale = AttributeScale.from_logits(self.bank.logits, self.temperature)
        return self._scale

    def overrides(self, attributes, scale: str = "user") -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Validated user attributes: ``(indices [m], raw alpha [m] float32, {name: value as given})``.

        Values outside the data (user scale > 1; raw outside [0, 1]) are allowed with a
        :class:`GenerationWarning` (the paper's out-of-distribution study, Sec. 4.4.2).

        Raises:
            DarkGANError: not a mapping, unknown name, a name given twice, non-numeric or
                non-finite value, an unknown scale, the baseline, no bank for the user scale.
        """
        check_scale(scale)
        if attributes is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32), {}
        if not isinstance(attributes, Mapping):
            raise DarkGANError(f"attributes must be a mapping name -> value, got {type(attributes).__name__}")
        if attributes and not self.enabled:
            raise DarkGANError(BASELINE)
        idx, vals, seen = [], [], {}
        for name, value in attributes.items():
            i = self.index(name)
            if i in seen:
                raise DarkGANError(f"attribute {self.names[i]!r} given twice ({seen[i]!r} and {name!r})")
            seen[i] = name
            idx.append(i)
            vals.append(as_value(name, value))
        idx_a, vals_a = np.asarray(idx, np.int64), np.asarray(vals, np.float64)
        self._warn_outside(idx_a, vals_a, scale)
        raw = self.scale.to_raw(vals_a, idx_a) if scale == "user" and len(idx) else vals_a.astype(np.float32)
        return idx_a, raw, {self.names[i]: float(v) for i, v in zip(idx, vals)}

    def _warn_outside(self, idx: np.ndarray, vals: np.ndarray, scale: str) -> None:
        if scale == "user":
            out = [f"{self.names[i]}={v:g}" for i, v in zip(idx, vals) if v > 1.0]
            what = "above 1, the 99th percentile of the data (allowed: out of distribution, the generator extrapolates)"
        else:
            out = [f"{self.names[i]}={v:g}" for i, v in zip(idx, vals) if not 0.0 <= v <= 1.0]
            what = "outside the trained range [0, 1] (allowed; the generator extrapolates)"
        if out:
            warnings.warn(f"attribute values {what}: {', '.join(out)}", GenerationWarning, stacklevel=4)

    def check_vectors(self, a, n: int, what: str) -> np.ndarray:
        """``a`` as float32 ``[n, K]`` (a ``[K]`` vector is repeated); finite values only.

        Raises:
            DarkGANError: non-numeric, wrong shape, NaN / inf.
        """
        k = len(self.names)
        if hasattr(a, "detach"):
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

    # ------------------------------------------------------------------ steering
    @property
    def prior(self) -> AttributePrior:
        """The :class:`AttributePrior` of the bank's logits at T (fitted once).

        Raises:
            DarkGANError: no attribute bank.
        """
        if self._prior is None:
            if self.bank is None:
                raise DarkGANError(self._no_bank("steer the attributes not given (or use steer='none')"))
            self._prior = AttributePrior.from_logits(self.bank.logits, self.temperature)
        return self._prior

    def apply(self, alpha: np.ndarray, idx: np.ndarray, vals: np.ndarray, steer: str = "data") -> np.ndarray:
        """``alpha [n, K]`` with attributes ``idx`` set to ``vals`` (raw); with ``steer="data"``
        the others follow them (:meth:`AttributePrior.steer`). Returns float32 ``[n, K]``.

        Raises:
            DarkGANError: an unknown ``steer``; no bank to steer with.
        """
        check_steer(steer)
        if steer == "data" and 0 < len(idx) < alpha.shape[1]:
            return self.prior.steer(alpha, idx, vals)
        out = np.array(alpha, dtype=np.float32, copy=True)
        out[:, idx] = vals
        return out

    # ------------------------------------------------------------------ bank
    def _no_bank(self, purpose: str) -> str:
        why = f" ({self.bank_problem})" if self.bank_problem else ""
        return (f"{self.cfg.path}: no attribute bank (attribute_bank.safetensors) to {purpose}{why}; pass data=DIR "
                "to DarkGAN.load, or build the bank: `darkgan generate --build-bank --data DIR --out COPY`")

    def bank_alpha(self, pitches: np.ndarray, rng: np.random.Generator, match_pitch: bool = True):
        """``(alpha [n, K] float32, sources [n])`` drawn from the attribute bank, one row per pitch.

        Raises:
            DarkGANError: no bank.
        """
        if self.bank is None:
            raise DarkGANError(self._no_bank("fill in the attributes not given (or set every attribute, or use like=)"))
        rows = self.bank.sample_rows(pitches, rng, match_pitch)
        sources = [f"bank:{self.bank.note_str[r] or r}" for r in rows]
        return self.bank.alpha(rows, self.temperature), sources

    def validation_attributes(self, pitch: int | None = None) -> np.ndarray | None:
        """The bank as conditioning vectors ``[M, K]`` float32 (``sigmoid(z / T)``), only the
        notes of MIDI ``pitch`` when given; ``None`` without a bank."""
        if self.bank is None or not self.enabled:
            return None
        rows = np.arange(len(self.bank)) if pitch is None else np.flatnonzero(self.bank.pitch == int(pitch))
        return self.bank.alpha(rows, self.temperature)

    def base(self, like, like_data, n_given: int, first_pitch) -> tuple[np.ndarray | None, str | None]:
        """The base vector shared by all notes: ``(alpha [K], source)``, or ``(None, None)``
        when every note draws its own from the bank (checked to exist)."""
        k = len(self.names)
        if like is not None:
            return self.like_attributes(like, like_data), f"like:{like}"
        if self.enabled and n_given == k:
            return np.zeros(k, np.float32), "given"
        if self.enabled and self.bank is None:
            self.bank_alpha(first_pitch, np.random.default_rng(0))  # raises the no-bank error
        return None, None

    # ------------------------------------------------------------------ teacher and like=
    @property
    def teacher(self):
        """The checkpoint's teacher (loaded on first use, on this device)."""
        if self._teacher is None:
            from darkgan.teacher import load_teacher

            tid = str(self.cfg.teacher.get("id", ""))
            if not tid:
                raise CheckpointError(f"{self.cfg.path / 'config.json'}: no teacher id recorded; cannot label audio")
            dev = self.device
            self._teacher = load_teacher(tid, device=str(dev) if dev is not None and dev.type == "cuda" else "cpu")
            want = str(self.cfg.teacher.get("weights_sha256", ""))
            if want and self._teacher.weights_sha256 and want != self._teacher.weights_sha256:
                warnings.warn(f"teacher {tid}: weights differ from the checkpoint's (sha256 {want[:12]} vs "
                              f"{self._teacher.weights_sha256[:12]}); its labels may not match the training labels",
                              GenerationWarning, stacklevel=2)
        return self._teacher

    def logits_to_alpha(self, logits) -> np.ndarray:
        """Teacher logits ``[..., C]`` -> ``sigmoid(z[..., class_indices] / T)`` float32 (Eq. 1)."""
        from darkgan.teacher.labels import soft_labels

        z = np.asarray(logits, dtype=np.float64)[..., np.asarray(self.cfg.class_indices, dtype=np.int64)]
        return soft_labels(z, self.temperature).astype(np.float32)

    def teacher_attributes(self, wave) -> np.ndarray:
        """The teacher's soft labels of 16 kHz audio ``[B, T]`` as conditioning vectors ``[B, K]``."""
        if not self.enabled:
            raise DarkGANError(BASELINE)
        return self.logits_to_alpha(self.teacher.logits(wave).detach().cpu().numpy())

    def like_attributes(self, like, like_data=None) -> np.ndarray:
        """Conditioning vector ``[K]`` of an audio file or of a note of a labelled dataset.

        Raises:
            DataError: unreadable or silent file, unknown note, dataset missing.
            DarkGANError: ``like`` not a path or note name, the baseline, no dataset given.
        """
        if not self.enabled:
            raise DarkGANError("this checkpoint is the no-attribute baseline: like= needs attributes")
        if not isinstance(like, (str, os.PathLike)) or not str(like).strip():
            raise DarkGANError(f"like= must be an audio file path or a dataset note name, got {like!r}")
        p = Path(like)
        if p.is_file() or p.suffix.lower() in AUDIO_SUFFIXES:
            return self.teacher_attributes(load_note(p)[None])[0]
        data = Path(like_data) if like_data is not None else self.data
        if data is None:
            raise DarkGANError(f"like={str(like)!r}: not an audio file; for a dataset note give the dataset "
                               "folder (like_data=DIR, CLI --data DIR)")
        return self.dataset_note(str(like), data)

    def dataset_note(self, note: str, data: Path) -> np.ndarray:
        """Conditioning vector ``[K]`` of dataset note ``note`` of folder ``data``: its stored
        teacher logits, or the teacher on ``audio/<note>.wav`` for an unlabelled dataset.

        Raises:
            DataError: no such dataset folder or note (closest names listed).
        """
        from darkgan.generation.bank import read_dataset_labels

        data = Path(data)
        if not data.is_dir():
            raise DataError(f"{data}: dataset folder not found")
        tid = str(self.cfg.teacher.get("id", ""))
        key = str(data.resolve())
        if key not in self._labels and (data / "labels" / f"{tid}.npz").is_file():
            names, logits = read_dataset_labels(data, tid)
            self._labels[key] = ({s: i for i, s in enumerate(names.tolist())}, logits)
        if key in self._labels:
            pos, logits = self._labels[key]
            if note in pos:
                return self.logits_to_alpha(logits[pos[note]])
            known = list(pos)
        else:
            wav = data / "audio" / f"{note}.wav"
            if "/" not in note and "\\" not in note and wav.is_file():  # unlabelled: label it on the fly
                return self.teacher_attributes(load_note(wav, trim=False)[None])[0]
            known = [p.stem for p in (data / "audio").glob("*.wav")] if (data / "audio").is_dir() else []
        close = difflib.get_close_matches(note, known, n=3, cutoff=0.6)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise DataError(f"{data}: no note {note!r} (neither an audio file nor a note of this dataset){hint}")

    # ------------------------------------------------------------------ one vector
    def vector(self, attributes=None, base=None, seed: int | None = None, pitch: int | None = None,
               scale: str = "user", steer: str = "data") -> np.ndarray:
        """The conditioning vector ``alpha [K]`` float32 for ``attributes`` over ``base`` (raw
        ``[K]``; ``None``: a random bank note, of MIDI ``pitch`` when given, drawn with ``seed``),
        the others steered as :meth:`apply`."""
        check_steer(steer)
        idx, vals, _ = self.overrides(attributes, scale)
        k = len(self.names)
        if base is not None:
            vec = self.check_vectors(base, 1, "base")[0]
        elif len(idx) == k:
            vec = np.zeros(k, np.float32)
        else:
            p = np.array([pitch if pitch is not None else self.cfg.pitch_range[0]])
            vec = self.bank_alpha(p, np.random.default_rng(seed), match_pitch=pitch is not None)[0][0]
        return self.apply(vec[None], idx, vals, steer)[0]
