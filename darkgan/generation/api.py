"""The Python API of DarkGAN: load a checkpoint, generate 1 s notes from pitch + attributes.

Quick start::

    import darkgan
    g = darkgan.DarkGAN.load()                      # the shipped checkpoint, on the CPU
    g.attributes[:3]                                # AudioSet display names of the K inputs
    audio = g.generate(pitch=60, attributes={"Tuning fork": 0.8}, n=4, seed=0)   # [4, 16000]
    audio = g.generate(pitch=52, like="my_note.wav")                             # timbre transfer

The generator (paper Sec. 4.3.2) is ``G(z, p, alpha)``: noise ``z ~ N(0, I_Z)``, the pitch
one-hot over the trained MIDI range and ``alpha``, the teacher's soft labels
``sigmoid(z_teacher / T)`` at the training temperature T (Eq. 1). :class:`DarkGAN` joins two
parts:

- the *conditioner* (:class:`darkgan.generation.conditioning.Conditioner`): attribute names,
  the user scale, the attribute bank, ``like=`` and the teacher -> ``alpha [n, K]``. Each note's
  vector is a *base* (the teacher's soft labels of ``like``, else a random validation note of the
  same pitch from the checkpoint's attribute bank, as in the paper, Sec. 4.4) with the user's
  attributes put over it and, by default (``steer="data"``), the other attributes moved with
  them as they move in the data (:mod:`darkgan.generation.steer`). User values are on the **user scale** by default
  (:mod:`darkgan.generation.scale`): 0 = the dataset's typical note (median), 1 = its 99th
  percentile, > 1 beyond the data (allowed, with a :class:`GenerationWarning`); ``scale="raw"``
  takes teacher probabilities as they are;
- the *synthesiser* (:class:`darkgan.generation.synthesis.Synthesiser`): ``alpha`` -> audio,
  with the per-note peak limiter (a gain, never a clip; counted in ``last_report["stats"]``).
  A non-finite output raises :class:`DarkGANError` in :meth:`DarkGAN.generate`.

Randomness: ``seed`` seeds two independent numpy streams, one for z (standard normal, float64
cast to float32) and one for the bank draws; both are consumed note by note, so a note's
output does not depend on the batch size, and z is the same on CPU and GPU.
"""
from __future__ import annotations

import os
import secrets
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from darkgan.errors import CheckpointError, DarkGANError, DataError
from darkgan.generation.conditioning import (  # noqa: F401  (re-exported: the API's names)
    AUDIO_SUFFIXES, LIKE_TRIM_DB, LIKE_TRIM_KEEP, LIKE_TRIM_MIN, BASELINE, Conditioner, GenerationWarning, check_scale,
    load_note)
from darkgan.generation.steer import STEER_MODES, check_steer  # noqa: F401
from darkgan.generation.synthesis import (  # noqa: F401
    DEFAULT_BATCH, SILENCE_DB, OutputStats, Synthesiser, as_int, limit_peaks)

#: Most notes :meth:`DarkGAN.generate` returns in one array (10 000 x 64 KB = 640 MB); larger
#: requests use :meth:`DarkGAN.iter_generate` (streamed chunks) or the CLI (files).
MAX_NOTES = 10_000
#: ``last_report`` lists every note's pitch and attribute source up to this many notes.
REPORT_MAX_NOTES = 100_000


def _device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DarkGANError(f"device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DarkGANError(f"device {device!r}: CUDA is not available on this machine; use device='cpu'")
    return dev


def _load_bank(cfg, data) -> tuple[object, str]:
    """The checkpoint's attribute bank, else one built in memory from ``data``: ``(bank, problem)``."""
    from darkgan.generation.bank import load_bank, make_bank

    if not (cfg.attributes_enabled and cfg.attributes):
        return None, ""
    teacher_id = str(cfg.teacher.get("id", "")) or None
    bank = load_bank(cfg.path, cfg.attributes, teacher_id)
    if bank is None and data is not None and teacher_id:
        try:  # data= may serve like= only (an unlabelled dataset): fail later, if at all
            return make_bank(data, cfg.class_indices, cfg.attributes, teacher_id, cfg.pitch_range), ""
        except DataError as e:
            return None, str(e)
    return bank, ""


class DarkGAN:
    """A loaded DarkGAN generator with its vocabulary, pitch range, attribute bank and user scale.

    Build it with :meth:`DarkGAN.load`. Attributes (read-only properties):
        attributes: K attribute names (AudioSet display names), in input order.
        pitch_range: ``(lo, hi)`` MIDI, inclusive.
        temperature: the distillation temperature T the checkpoint was trained at.
        attribute_scale: the user scale (:class:`darkgan.generation.scale.AttributeScale`).
        config: the :class:`darkgan.models.checkpoint.CheckpointConfig`.
        device: where the generator runs.
        conditioner, synthesiser: the two parts (see the module docstring).
        last_report: what the last :meth:`generate` / :meth:`iter_generate` did (seed, stats,
            per-note pitch and attribute source).
    """

    def __init__(self, generator, config, device: torch.device, bank=None, data: str | os.PathLike | None = None,
                 bank_problem: str = ""):
        self._cfg = config
        self._device = device
        self.synthesiser = Synthesiser(generator, config, device)
        self.conditioner = Conditioner(config, bank, data, device, bank_problem)
        self.last_report: dict = {}

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
             data: str | os.PathLike | None = None, weights: str = "default") -> "DarkGAN":
        """Load a checkpoint for generation.

        Args:
            path: a checkpoint folder, a run folder (its latest checkpoint), the name of a shipped
                checkpoint (``"default"``, ``"student"``) or ``None`` for the shipped default.
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
            data: optional labelled dataset folder: the default ``like_data`` for dataset notes,
                and the source of the attribute bank when the checkpoint carries none.
            weights: ``"default"`` (EMA weights when trained with EMA) or ``"raw"``.

        Raises:
            CheckpointError: missing, incomplete, corrupt or incompatible checkpoint, or a
                corrupt attribute bank. DarkGANError: unavailable device.
        """
        from darkgan.models.checkpoint import load_generator

        dev = _device(device)
        if path is None:
            from darkgan.paths import shipped_checkpoint

            path = shipped_checkpoint()
            if not Path(path).exists():
                raise CheckpointError(f"{path}: the shipped checkpoint is not installed; pass a checkpoint path")
        generator, cfg = load_generator(path, dev, weights)
        bank, problem = _load_bank(cfg, data)
        return cls(generator, cfg, dev, bank, data, problem)

    # --------------------------------------------------------------------------- properties
    @property
    def attributes(self) -> list[str]:
        """The K attribute names (AudioSet display names), in input order ([] for a baseline)."""
        return list(self.conditioner.names)

    @property
    def has_attributes(self) -> bool:
        """False for the paper's baseline (no attribute conditioning)."""
        return self.conditioner.enabled

    @property
    def pitch_range(self) -> tuple[int, int]:
        """``(lo, hi)`` trained MIDI pitches, inclusive."""
        return tuple(self._cfg.pitch_range)

    @property
    def temperature(self) -> float:
        return float(self._cfg.temperature)

    @property
    def attribute_scale(self):
        """The user scale of attribute values (fitted on the attribute bank at T).

        Raises:
            DarkGANError: the checkpoint has no attribute bank.
        """
        return self.conditioner.scale

    @property
    def latent_dim(self) -> int:
        return self.synthesiser.latent_dim

    @property
    def generator(self):
        return self.synthesiser.generator

    @property
    def normalizer(self):
        return self.synthesiser.normalizer

    @property
    def bank(self):
        return self.conditioner.bank

    @property
    def data(self) -> Path | None:
        return self.conditioner.data

    @property
    def config(self):
        return self._cfg

    @property
    def checkpoint_path(self) -> Path | None:
        return self._cfg.path

    @property
    def synthesis_fingerprint(self) -> str:
        """What besides the generator's weights decides this model's notes, as canonical JSON: the
        scale it generates at, the weights chosen (EMA or raw), the pitch range, the normaliser and
        the whole model config, ``synthesis_fade`` included. Caches of notes or of measures on them
        key on it with the weights (:mod:`darkgan.evaluation.models`, the app's responsiveness):
        the same weights played with another fade (``export-generator --synthesis-fade``) are
        another instrument."""
        import dataclasses
        import json

        cfg = self._cfg
        return json.dumps([cfg.scale, cfg.alpha, cfg.generator_weights, list(cfg.pitch_range),
                           cfg.get_normalizer().to_dict(), dataclasses.asdict(self.synthesiser.generator.cfg)],
                          sort_keys=True, default=str)

    @property
    def device(self) -> torch.device:
        return self._device

    def __repr__(self) -> str:
        lo, hi = self.pitch_range
        return (f"<DarkGAN {self._cfg.config.preset} K={len(self.attributes)} pitch {lo}..{hi} "
                f"T={self.temperature:g} step={self._cfg.step} device={self._device} path={self._cfg.path}>")

    # --------------------------------------------------------------------------- conditioning
    def attribute_index(self, name: str) -> int:
        """Input index of attribute ``name`` (case-insensitive, surrounding spaces ignored).

        Raises:
            DarkGANError: unknown name; the message lists the closest vocabulary names.
        """
        return self.conditioner.index(name)

    def closest_attributes(self, name: str, n: int = 5) -> list[str]:
        """Up to ``n`` vocabulary names closest to ``name`` (difflib ratio, then substrings)."""
        return self.conditioner.closest(name, n)

    def attribute_vector(self, attributes: Mapping[str, float] | None = None, base=None,
                         seed: int | None = None, pitch: int | None = None, scale: str = "user",
                         steer: str = "data") -> np.ndarray:
        """The conditioning vector ``alpha [K]`` float32 (raw) for ``attributes`` over ``base``.

        Args:
            attributes: ``{name: value}`` overrides (names case-insensitive), on ``scale``.
            base: ``[K]`` raw starting vector; ``None``: a random validation note of the
                attribute bank (of MIDI ``pitch`` when given), drawn with ``seed``.
            seed, pitch: see ``base``.
            scale: ``"user"`` (0 typical, 1 = 99th percentile) or ``"raw"`` (probabilities).
            steer: ``"data"``: the attributes not given follow the given ones as in the data
                (:mod:`darkgan.generation.steer`); ``"none"``: they keep the base's values.

        Raises:
            DarkGANError: unknown name, non-numeric or non-finite value, base of the wrong shape
                or non-finite, no bank to draw a base from or to define the user scale.
        """
        return self.conditioner.vector(attributes, base, seed, pitch, scale, steer)

    def validation_attributes(self, pitch: int | None = None) -> np.ndarray | None:
        """The attribute bank as conditioning vectors ``[M, K]`` float32 (``sigmoid(z / T)``),
        only the notes of MIDI ``pitch`` when given; ``None`` when the checkpoint has no bank."""
        return self.conditioner.validation_attributes(pitch)

    @property
    def teacher(self):
        """The checkpoint's teacher (loaded on first use, on this device)."""
        return self.conditioner.teacher

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
        return self.conditioner.teacher_attributes(wave)

    def like_attributes(self, like: str | os.PathLike, like_data: str | os.PathLike | None = None) -> np.ndarray:
        """Conditioning vector ``[K]`` (raw) of ``like``: an audio file, or a note of a dataset.

        Args:
            like: a path to an audio file (any rate/channels; down-mixed, resampled to 16 kHz,
                leading silence trimmed, first 1 s kept, zero-padded: :func:`load_note`), or
                a ``note_str`` of the dataset ``like_data`` (its stored teacher logits, or the
                teacher on ``audio/<note_str>.wav``'s first second when the dataset is unlabelled).
            like_data: the dataset folder for a ``note_str`` (default: ``data`` given to load).

        Raises:
            DataError: unreadable or silent file, unknown note (closest names listed), dataset
                folder missing. DarkGANError: ``like`` not a str/path, a baseline checkpoint.
        """
        return self.conditioner.like_attributes(like, like_data)

    # --------------------------------------------------------------------------- synthesis
    def _pitches(self, pitch, n: int) -> np.ndarray:
        """MIDI pitches ``[n]`` int64 (one for all notes: a broadcast view, no per-note memory)."""
        lo, hi = self.pitch_range
        if isinstance(pitch, (str, bytes)):
            raise DarkGANError(f"pitch must be a MIDI note number, got {pitch!r}")
        if isinstance(pitch, (Sequence, np.ndarray, torch.Tensor)):
            vals = [as_int(p, "pitch") for p in (pitch.tolist() if hasattr(pitch, "tolist") else pitch)]
            if len(vals) != n:
                raise DarkGANError(f"pitch: {len(vals)} values for n={n} notes (give one, or n)")
        else:
            vals = [as_int(pitch, "pitch")]
        bad = sorted({v for v in vals if not lo <= v <= hi})
        if bad:
            raise DarkGANError(f"pitch {bad[0]} is outside this checkpoint's trained range, MIDI {lo}..{hi}")
        if len(vals) == 1 and not isinstance(pitch, (Sequence, np.ndarray, torch.Tensor)):
            return np.broadcast_to(np.int64(vals[0]), (n,))
        return np.asarray(vals, dtype=np.int64)

    def _batch_inputs(self, z, pitch, attributes):
        """Validated ``(z [n, Z], pitch index [n], alpha [n, K] or None)`` CPU tensors."""
        z_t = torch.as_tensor(np.asarray(z.detach().cpu() if isinstance(z, torch.Tensor) else z, dtype=np.float32))
        if z_t.dim() != 2 or z_t.shape[1] != self.latent_dim:
            raise DarkGANError(f"z must be [n, {self.latent_dim}], got {list(z_t.shape)}")
        n = z_t.shape[0]
        if n < 1:
            raise DarkGANError("generate_batch needs at least one note")
        if not torch.isfinite(z_t).all():
            raise DarkGANError("z must be finite (found NaN or inf)")
        p_np = pitch.detach().cpu().numpy() if isinstance(pitch, torch.Tensor) else np.asarray(pitch)
        p_t = torch.from_numpy(self._pitches(p_np.reshape(-1), n) - self.pitch_range[0])
        if self.has_attributes:
            if attributes is None:
                raise DarkGANError(f"attributes [n, {len(self.attributes)}] are required by this checkpoint")
            return z_t, p_t, torch.from_numpy(self.conditioner.check_vectors(attributes, n, "attributes"))
        if attributes is not None and np.asarray(attributes).size:
            raise DarkGANError(BASELINE)
        return z_t, p_t, None

    def generate_batch(self, z, pitch, attributes=None, batch_size: int | None = None, limit: bool = True,
                       return_stats: bool = False):
        """Generate from explicit inputs, in chunks (bounded memory) — for evaluation.

        Args:
            z: ``[n, Z]`` noise (numpy or torch; Z = :attr:`latent_dim`).
            pitch: ``[n]`` MIDI pitches within :attr:`pitch_range`.
            attributes: ``[n, K]`` (or ``[K]``) raw conditioning vectors alpha; ``None`` for the baseline.
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
        out, stats = self.synthesiser.run(z_t, p_t, a_t, self.synthesiser.batch_size(batch_size), limit)
        return (out, stats) if return_stats else out

    def generate_magif(self, z, pitch, attributes=None, batch_size: int | None = None) -> torch.Tensor:
        """The generator's MAG-IF spectrograms for explicit inputs, before the inverse STFT — for
        research on the representation itself (DarkGAN, Sec. 4.3.1; GANSynth, Sec. 3).

        Args:
            z, pitch, attributes, batch_size: as :meth:`generate_batch`.

        Returns:
            ``[n, 2, 1024, 32]`` float32 CPU tensor, de-normalised: channel 0 the natural-log STFT
            magnitude, channel 1 the instantaneous frequency in units of pi rad per hop (the
            layout of :func:`darkgan.data.magif.wave_to_magif`). ``magif_to_note`` of it is the
            waveform :meth:`generate_batch` returns with ``limit=False``.

        Raises:
            DarkGANError: as :meth:`generate_batch`.
        """
        z_t, p_t, a_t = self._batch_inputs(z, pitch, attributes)
        bs = self.synthesiser.batch_size(batch_size)
        with torch.inference_mode():
            return torch.cat([self.synthesiser.magif(z_t[s:s + bs], p_t[s:s + bs], None if a_t is None else a_t[s:s + bs])
                              .cpu() for s in range(0, len(z_t), bs)])

    def iter_generate(self, pitch=60, attributes=None, n: int = 1, seed: int | None = None, like=None,
                      like_data=None, batch_size: int | None = None, match_pitch: bool = True,
                      scale: str = "user", steer: str = "data") -> Iterator[np.ndarray]:
        """:meth:`generate` as a stream of chunks ``[b, 16000]`` float32 (b <= batch_size):
        memory stays bounded for any n. :attr:`last_report` is complete once exhausted.
        Arguments, errors and output as :meth:`generate` (no ``MAX_NOTES`` cap). Arguments are
        validated here, before the first chunk is asked for."""
        n = as_int(n, "n")
        if n < 1:
            raise DarkGANError(f"n must be >= 1, got {n}")
        pitches = self._pitches(pitch, n)
        bs = self.synthesiser.batch_size(batch_size)
        check_steer(steer)
        idx, vals, given = self.conditioner.overrides(attributes, scale)
        if steer == "data" and 0 < len(idx) < len(self.attributes):
            self.conditioner.prior  # noqa: B018 (raises the no-bank error before any generation)
        base, base_source = self.conditioner.base(like, like_data, len(idx), pitches[:1])
        if seed is None:
            seed = secrets.randbits(63)
        seed = as_int(seed, "seed")
        if seed < 0:
            raise DarkGANError(f"seed must be >= 0, got {seed}")
        n_keep = n <= REPORT_MAX_NOTES  # per-note provenance only for n <= REPORT_MAX_NOTES
        self.last_report = {
            "seed": seed, "n": n, "scale": scale, "steer": steer, "checkpoint": str(self._cfg.path), "attributes": given,
            "pitch": pitches.tolist() if n_keep else (int(pitches[0]) if pitches.strides == (0,) else None),
            "sources": [] if n_keep else None, "stats": asdict(OutputStats()),
            "like": None if like is None else str(like), "complete": False}
        return self._stream(pitches, idx, vals, base, base_source, seed, bs, match_pitch, steer)

    def _alpha_chunk(self, p, idx, vals, base, base_source, a_rng, match_pitch, steer):
        """``(alpha [b, K] tensor or None, sources [b])`` for the pitches ``p`` of one chunk."""
        b = len(p)
        if not self.has_attributes:
            return None, ["none"] * b
        if base is not None:
            a, src = np.repeat(base[None], b, axis=0), [base_source] * b
        else:
            a, src = self.conditioner.bank_alpha(p, a_rng, match_pitch)
        a = self.conditioner.apply(a, idx, vals, steer)
        return torch.from_numpy(np.ascontiguousarray(a)), src

    def _stream(self, pitches, idx, vals, base, base_source, seed, bs, match_pitch, steer) -> Iterator[np.ndarray]:
        n = len(pitches)
        z_rng, a_rng = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])
        stats, sources = OutputStats(), self.last_report["sources"]
        with torch.inference_mode():
            for s in range(0, n, bs):
                p = pitches[s:s + bs]
                z = torch.from_numpy(z_rng.standard_normal((len(p), self.latent_dim)).astype(np.float32))
                a_t, src = self._alpha_chunk(p, idx, vals, base, base_source, a_rng, match_pitch, steer)
                w, st = limit_peaks(self.synthesiser.wave(z, torch.from_numpy(p - self.pitch_range[0]), a_t))
                stats.add(st)
                if sources is not None:
                    sources.extend(src)
                self.last_report["stats"] = asdict(stats)
                if st.nonfinite:
                    raise DarkGANError(f"{self._cfg.path}: the generator produced non-finite audio for {st.nonfinite} "
                                       f"of {len(p)} notes (seed {seed}); the checkpoint may be corrupt or diverged")
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
                 match_pitch: bool = True, scale: str = "user", steer: str = "data") -> np.ndarray:
        """Generate ``n`` one-second notes.

        Args:
            pitch: MIDI pitch within :attr:`pitch_range` (one for all notes, or a sequence of n).
            attributes: ``{AudioSet display name: value}``, names case-insensitive. On the user
                scale (default): 0 = the dataset's typical (median) note, 1 = its 99th
                percentile, > 1 beyond the data (allowed, with a warning), < 0 less than typical.
                Attributes not given take the values of ``like`` or of a random validation note
                (one per note).
            n: number of notes, 1..``MAX_NOTES`` (use :meth:`iter_generate` for more).
            seed: makes the result reproducible (``None``: random; the seed used is in
                ``last_report["seed"]``).
            like: an audio file or a dataset ``note_str`` whose teacher labels are the base
                vector (timbre transfer; see :meth:`like_attributes`).
            like_data: the dataset folder for a ``note_str`` ``like``.
            batch_size: notes per generator call (memory bound); default by device.
            match_pitch: draw base vectors among validation notes of the same pitch.
            scale: ``"user"`` or ``"raw"`` (values are teacher probabilities ``alpha`` as the
                generator takes them; outside [0, 1] warns).
            steer: ``"data"`` (default): the attributes not given move with the given ones as
                they do in the data (a Gaussian over the bank's logits; without it a single
                raised attribute is a vector no training note has, and the generator barely
                follows it: docs/generation.md, "Steering"); ``"none"``: they keep the values
                of ``like`` or of the drawn note (the paper's single-attribute edits).

        Returns:
            ``[n, 16000]`` float32 numpy array at 16 kHz within [-1, 1] (see the limiter in the
            module docstring; counts in ``last_report["stats"]``).

        Raises:
            DarkGANError: unknown attribute (closest names listed), non-numeric/NaN value, pitch
                outside the trained range, n < 1 or n > MAX_NOTES, no attribute bank to fill in
                attributes or define the user scale, a bad ``scale`` or ``like``, non-finite
                generator output. DataError: unreadable ``like``.
        """
        n_int = as_int(n, "n")
        if n_int > MAX_NOTES:
            raise DarkGANError(f"n={n_int} notes would need {n_int * 64 / 1e6:.1f} GB in one array (limit {MAX_NOTES}); "
                               "use DarkGAN.iter_generate (streamed chunks) or `darkgan generate -n N --out DIR`")
        chunks = list(self.iter_generate(pitch, attributes, n_int, seed, like, like_data, batch_size, match_pitch,
                                         scale, steer))
        return np.concatenate(chunks, axis=0)
