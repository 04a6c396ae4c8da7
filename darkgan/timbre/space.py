"""The Python API of a trained timbre space: encode notes, map them, travel and synthesise.

``TimbreSpace.load()`` opens the shipped default space (``darkgan/assets/timbre-default``) or a
checkpoint folder from :func:`darkgan.timbre.train.train_space`. A note's position is the mean
encoder mean over K frames of its first second (Esling et al. 2018, Sec. 3); synthesis of a latent
point moves real notes there frame by frame (:mod:`darkgan.timbre.synthesis`) and inverts them to
audio with the front end's phase retrieval (:mod:`darkgan.timbre.frontends`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from darkgan.data.constants import N_SAMPLES, SAMPLE_RATE
from darkgan.errors import DarkGANError, DataError

DEFAULT_SPACE = Path(__file__).resolve().parent.parent / "assets" / "timbre-default"
MIN_SAMPLES = SAMPLE_RATE // 4  #: shortest audio that can be encoded (0.25 s)
SILENCE_RMS = 1e-4  #: RMS (full scale 1) below which audio counts as silent
FADE_IN, FADE_OUT = 0.01, 0.05  #: seconds of the envelope put on synthesised notes


class TimbreSpace:
    """A trained timbre space.

    Attributes:
        model: the :class:`~darkgan.timbre.model.TimbreVAE` (eval mode, CPU).
        config: its :class:`~darkgan.timbre.train.TimbreConfig`.
        ratings: the :class:`~darkgan.timbre.ratings.Ratings` it was regularised with.
        centroids: ``{instrument: np.ndarray [Z]}`` for the rated and novel instruments.
        metrics: what training measured (``fit``: Pearson/Spearman of centroid distances).
    """

    def __init__(self, model, config, ratings, centroids, metrics):
        from darkgan.timbre.frontends import get_front_end

        self.model, self.config, self.ratings, self.metrics = model, config, ratings, metrics
        self.centroids = {k: np.asarray(v, dtype=np.float32) for k, v in centroids.items()}
        self.front_end = get_front_end(config.model.front_end)
        self._plane = None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> TimbreSpace:
        """Open a timbre space folder (default: the shipped one).

        Raises:
            CheckpointError: not a timbre space folder, or unreadable weights.
        """
        from darkgan.timbre.train import load_space_files

        return cls(*load_space_files(DEFAULT_SPACE if path is None else path))

    @property
    def latent_dim(self) -> int:
        return self.config.model.latent_dim

    @property
    def pitch_range(self) -> tuple[int, int]:
        return self.config.model.pitch_lo, self.config.model.pitch_hi

    # ------------------------------------------------------------------ encoding
    def encode(self, wave: np.ndarray, pitch: float | None = None, name: str = "audio") -> np.ndarray:
        """Latent position ``[Z]`` of a note ``[T]`` (16 kHz mono float).

        Args:
            pitch: MIDI pitch; default: estimated with pYIN. Clamped to :attr:`pitch_range`.
            name: how errors name the input.

        Raises:
            DataError: audio shorter than 0.25 s, silent, or with no detectable pitch.
        """
        import torch

        crop = check_note(wave, name)
        if pitch is None:
            pitch = estimate_pitch(crop, name)
        pitch = float(np.clip(pitch, *self.pitch_range))
        spec = self.front_end.analyze(crop)
        idx = self.position_frames(spec.shape[1], len(crop))
        with torch.no_grad():
            mu, _ = self.model.encode(torch.from_numpy(spec[:, idx].T.copy()),
                                      torch.full((len(idx),), pitch))
        return mu.mean(0).numpy()

    def encode_file(self, path: str | os.PathLike, pitch: float | None = None) -> np.ndarray:
        """Latent position of a WAV/FLAC/OGG file (mixed to mono, resampled to 16 kHz).

        Raises:
            DataError: unreadable file, or see :meth:`encode`.
        """
        return self.encode(read_audio(path), pitch, name=str(path))

    # ------------------------------------------------------------------ synthesis
    def instrument(self, name: str) -> np.ndarray:
        """Latent centroid ``[Z]`` of a rated or novel instrument (case-insensitive).

        Raises:
            DarkGANError: unknown name (lists the known ones).
        """
        for k, v in self.centroids.items():
            if k.lower() == name.lower():
                return v.copy()
        raise DarkGANError(f"unknown instrument {name!r}; known: {', '.join(self.centroids)}")

    def decode_frames(self, z: np.ndarray, pitch: float):
        """``[B, Z]`` latents -> ``[B, F]`` log-magnitude frames (torch, differentiable)."""
        import torch

        z = torch.as_tensor(np.asarray(z, dtype=np.float32)) if not torch.is_tensor(z) else z
        z = z.reshape(-1, self.latent_dim)
        return self.model.decode(z, torch.full((z.shape[0],), float(pitch)))

    def position_frames(self, n_frames: int, n_samples: int) -> np.ndarray:
        """Indices ``[K]`` of the analysis frames (of ``n_frames``, for ``n_samples`` of audio at
        16 kHz) whose mean encoding is a note's position (K = ``config.data.frames_per_note``)."""
        from darkgan.timbre.data import frame_positions

        used = max(2, round(n_frames * min(1.0, n_samples / N_SAMPLES)))
        return frame_positions(used, self.config.data.frames_per_note)

    def check_point(self, z, pitch: float) -> tuple[np.ndarray, float]:
        """``(z [Z] float32, pitch)`` checked for synthesis.

        Raises:
            DarkGANError: ``z`` of the wrong size or not finite; pitch outside :attr:`pitch_range`.
        """
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        if z.shape != (self.latent_dim,) or not np.all(np.isfinite(z)):
            raise DarkGANError(f"latent point must be {self.latent_dim} finite numbers (got {z.shape[0]})")
        lo, hi = self.pitch_range
        if not lo <= pitch <= hi:
            raise DarkGANError(f"pitch {pitch:g} outside the space's range {lo}-{hi}")
        return z, float(pitch)

    def synth(self, z: np.ndarray, pitch: float, n_iter: int = 32, note: np.ndarray | None = None) -> np.ndarray:
        """Audio ``[16000]`` float32 of latent point ``z`` ``[Z]`` at MIDI ``pitch`` (rounded to a
        semitone): real notes of the nearest instruments (or the user's ``note``, played at its own
        pitch) moved to ``z`` frame by frame, so the note keeps a real attack and decay
        (:func:`darkgan.timbre.synthesis.point_synth`, which also returns what it used).

        Raises:
            DarkGANError: ``z`` of the wrong size or not finite; pitch outside :attr:`pitch_range`.
        """
        from darkgan.timbre.synthesis import point_synth

        return point_synth(self, z, pitch, note, n_iter=n_iter)[0]

    def synth_held(self, z: np.ndarray, pitch: float, n_iter: int = 32) -> np.ndarray:
        """The synthesis before session 25, kept as the benchmarks' baseline: the decoded frame of
        ``z`` held for 1 s, inverted, 10 ms fade-in, 50 ms fade-out, peak limited to 0.99
        (``[16000]`` float32). It has no attack or decay and mostly loses the instrument
        (docs/timbre.md).

        Raises:
            DarkGANError: as :meth:`check_point`.
        """
        import torch

        z, pitch = self.check_point(z, pitch)
        n = self.front_end.analyze(np.zeros(16)).shape[1]
        with torch.no_grad():
            frame = self.decode_frames(z, pitch)[0].numpy()
        wave = self.front_end.invert(np.repeat(frame[:, None], n, 1), n_iter)
        return _envelope(wave)

    def path(self, a: str, b: str, pitch: float, steps: int = 5, n_iter: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Audio along the straight latent path from instrument ``a`` to ``b``: ``steps`` notes of
        1 s, one per evenly spaced point, each made from the two instruments' real notes moved to
        it (:func:`darkgan.timbre.synthesis.path_synth`). Returns ``(wave [steps * 16000],
        latents [steps, Z])``.

        Raises:
            DarkGANError: unknown instrument; ``steps`` < 2; pitch outside :attr:`pitch_range`.
        """
        from darkgan.timbre.synthesis import path_synth

        return path_synth(self, a, b, pitch, steps, n_iter)

    # ------------------------------------------------------------------ the map (principal axes)
    def principal_axes(self, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(origin [Z], axes [k, Z], explained [k])``: the first ``k`` principal axes (PCA) of the
        rated centroids, and the share of their variance each one explains (0-1).

        Raises:
            DarkGANError: ``k`` not in 1..Z.
        """
        if not 1 <= k <= self.latent_dim:
            raise DarkGANError(f"{k} map dimensions: choose 1 to {self.latent_dim}")
        if self._plane is None:
            c = np.stack([self.centroids[n] for n in self.ratings.instruments])
            origin = c.mean(0)
            _, sv, vt = np.linalg.svd(c - origin, full_matrices=False)
            self._plane = (origin, vt, sv ** 2 / np.sum(sv ** 2))
        origin, vt, share = self._plane
        return origin, vt[:k], share[:k]

    def to_axes(self, z: np.ndarray, k: int) -> np.ndarray:
        """``[..., Z]`` latents -> ``[..., k]`` coordinates on the first ``k`` principal axes."""
        origin, axes, _ = self.principal_axes(k)
        return (np.asarray(z) - origin) @ axes.T

    def plane(self) -> tuple[np.ndarray, np.ndarray]:
        """``(origin [Z], axes [2, Z])``: the principal plane of the rated centroids (PCA)."""
        return self.principal_axes(2)[:2]

    def to_plane(self, z: np.ndarray) -> np.ndarray:
        """``[..., Z]`` latents -> ``[..., 2]`` map coordinates."""
        return self.to_axes(z, 2)

    def from_plane(self, xy) -> np.ndarray:
        """``[2]`` map coordinates -> ``[Z]`` latent point on the plane."""
        origin, axes = self.plane()
        return (origin + np.asarray(xy, dtype=np.float32) @ axes).astype(np.float32)


def _envelope(wave: np.ndarray) -> np.ndarray:
    n_in, n_out = int(FADE_IN * SAMPLE_RATE), int(FADE_OUT * SAMPLE_RATE)
    env = np.ones(len(wave), dtype=np.float32)
    env[:n_in] = np.linspace(0, 1, n_in)
    env[-n_out:] = np.linspace(1, 0, n_out)
    wave = wave * env
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    return (wave * (0.99 / peak) if peak > 0.99 else wave).astype(np.float32)


def check_note(wave: np.ndarray, name: str = "audio") -> np.ndarray:
    """The first second ``[<= 16000]`` float32 of a note that the space can use.

    Raises:
        DataError: shorter than 0.25 s, or silent in its first second.
    """
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if len(wave) < MIN_SAMPLES:
        raise DataError(f"{name}: too short to encode ({len(wave)} samples at 16 kHz; need >= {MIN_SAMPLES})")
    crop = wave[:N_SAMPLES]
    if float(np.sqrt(np.mean(crop.astype(np.float64) ** 2))) < SILENCE_RMS:
        raise DataError(f"{name}: silent in its first second (RMS below {SILENCE_RMS:g}); nothing to encode")
    return crop


def estimate_pitch(wave: np.ndarray, name: str = "audio") -> float:
    """Median pYIN f0 (Mauch & Dixon 2014) of the voiced frames, as a MIDI pitch (float).

    Raises:
        DataError: no voiced frame.
    """
    import librosa

    f0, voiced, _ = librosa.pyin(np.asarray(wave, dtype=np.float32), fmin=30.0, fmax=2000.0,
                                 sr=SAMPLE_RATE, frame_length=2048)
    f0 = f0[voiced & np.isfinite(f0)]
    if f0.size == 0:
        raise DataError(f"{name}: no pitch found (pYIN found no voiced frame); pass the pitch explicitly")
    return float(librosa.hz_to_midi(np.median(f0)))


def read_audio(path: str | os.PathLike) -> np.ndarray:
    """A sound file as mono float32 at 16 kHz.

    Raises:
        DataError: missing or unreadable file.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise DataError(f"{path}: not a readable audio file ({str(e).splitlines()[0]})") from None
    wave = wave.mean(1)
    if sr != SAMPLE_RATE and len(wave):
        import soxr

        wave = soxr.resample(wave, sr, SAMPLE_RATE).astype(np.float32)
    return wave
