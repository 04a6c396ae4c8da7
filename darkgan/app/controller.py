"""The app's model-bound actions, without any UI: what each button does.

:class:`Studio` wraps one loaded :class:`darkgan.generation.api.DarkGAN` (loaded once) and turns
validated UI values into sound, pictures and files. The Gradio layer (:mod:`darkgan.app.app`)
only moves values between widgets and these methods, so everything here is testable without a
browser (``tests/test_app_controller.py``).

Files the user downloads (the note's WAV and its settings JSON) are written under
``Studio.out_dir`` (a private temporary folder by default), named after the settings so two
different notes never overwrite each other.

Attribute values are on the user scale of the generation API (:mod:`darkgan.generation.scale`:
0 = the data's typical note, 1 = its 99th percentile); "start from" converts the teacher's
probabilities of a sound to it (:meth:`Studio.to_user`).

"Start from a dataset note" serves only notes of the dataset given with ``--data`` (by NSynth
name) and uploads: no file path on the server is ever opened from a request, and an unknown
name gets the same answer whatever exists on the server.

Responsiveness (which 12 attributes the UI shows first), in this order of preference:

1. the checkpoint's own measurement: ``config.json`` ``extra`` key ``attribute_correlation``
   (or ``responsiveness``), ``{name: rho}`` (the paper's attribute correlation, Sec. 4.4.2);
2. a cache written by a previous start-up in the user cache folder,
   ``$DARKGAN_CACHE_DIR/app/responsiveness-<checkpoint id>.json`` (never in the checkpoint or
   the package);
3. measured once at start-up (:meth:`Studio.measure_responsiveness`): ``n`` notes with user-scale
   attribute values drawn uniformly in [0, 1] (seeded, pitches spread over the range) are
   generated and tagged by the checkpoint's teacher; the score of attribute i is the Pearson
   correlation between the value of attribute i and the teacher's soft label sigmoid(z_i / T)
   of the output. Then cached (2).
4. vocabulary order, when the teacher cannot be loaded (with a message).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from darkgan.app import state as st
from darkgan.errors import DarkGANError, DataError
from darkgan.generation.steer import check_steer

#: How the cached responsiveness scores were measured (a cache of another method is ignored).
RESPONSIVENESS_METHOD = "pearson(user value ~ U(0,1), teacher soft label)"
#: Files kept in ``Studio.out_dir`` (the oldest beyond this are deleted after each render).
KEEP_FILES = 256


@dataclass
class Rendered:
    """One generated sound and everything the UI shows about it.

    Attributes:
        wave: float32 ``[T]`` in [-1, 1] at 16 kHz (T = 16000 for a note, P * 16000 for a scale).
        settings: what reproduces it (:class:`darkgan.app.state.Settings`).
        wav_path: the 16-bit PCM WAV file of ``wave``.
        json_path: the settings JSON file.
        messages: corrections made to the input (clipped values...), one line each.
        seconds: server-side time of generation + WAV encoding (s).
    """

    wave: np.ndarray
    settings: st.Settings
    wav_path: Path
    json_path: Path
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def checkpoint_id(path: str | Path | None) -> str:
    """``"<folder name>@<first 12 hex of the generator weights' SHA-256>"``: names the exact
    weights a settings file was made with, and ``"+fade<N>"`` after it when the checkpoint plays
    them with another end-of-note fade than they were trained with (``export-generator
    --synthesis-fade``; ``extra.synthesis_fade_trained``): the same weights, another sound. Uses
    the SHA-256 recorded in ``config.json`` when present, else hashes the file."""
    from darkgan.models.checkpoint import GENERATOR_FILE, resolve_checkpoint

    if path is None:
        from darkgan.paths import shipped_checkpoint

        path = shipped_checkpoint()
    p = resolve_checkpoint(path)
    digest, suffix = "", ""
    try:
        cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
        digest = str((cfg.get("files") or {}).get(GENERATOR_FILE, ""))[:12]
        trained = (cfg.get("extra") or {}).get("synthesis_fade_trained")
        fade = (cfg.get("model") or {}).get("synthesis_fade")
        if trained is not None and fade != trained:
            suffix = f"+fade{fade}"
    except (OSError, ValueError, AttributeError):
        pass
    if not digest and (p / GENERATOR_FILE).is_file():
        from darkgan.utils.io import sha256_file

        digest = sha256_file(p / GENERATOR_FILE)[:12]
    return f"{p.name}@{digest}{suffix}"


class Studio:
    """One loaded generator plus the app's actions.

    Args:
        model: a loaded ``DarkGAN`` (``.attributes``, ``.pitch_range``, ``.generate``).
        checkpoint: the checkpoint folder it came from (for the id and the caches).
        out_dir: where downloadable files go (default: a new temporary folder).

    Raises:
        DarkGANError: a model without attributes (the no-attribute baseline has nothing to steer),
            or without the attribute bank that defines the sliders' scale.
    """

    def __init__(self, model: Any, checkpoint: str | Path | None, out_dir: str | Path | None = None):
        self.model = model
        self.names: list[str] = list(model.attributes)
        if not self.names:
            raise DarkGANError("this checkpoint has no attribute conditioning (baseline): nothing to steer in the app")
        self.scale = model.attribute_scale  # the sliders' scale (raises without a bank: pass --data DIR)
        lo, hi = model.pitch_range
        self.pitch_range = (int(lo), int(hi))
        self.checkpoint_path = Path(checkpoint) if checkpoint is not None else None
        self.checkpoint_id = checkpoint_id(checkpoint)
        # the weights' id does not see a fade changed after training (export-generator --synthesis-fade)
        fingerprint = str(getattr(model, "synthesis_fingerprint", ""))
        self.synthesis_id = hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
        self.out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="darkgan-app-"))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.order: list[int] = list(range(len(self.names)))
        self.ranking_source = "vocabulary order"
        self.load_messages: list[str] = []

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str = "cpu", out_dir: str | Path | None = None,
             data: str | Path | None = None) -> "Studio":
        """Load the checkpoint (``None``: the shipped one) once; ``data``: a labelled dataset
        folder for "start from a dataset note" (and the attribute bank when the checkpoint has
        none).

        Raises:
            CheckpointError: missing, incomplete, corrupt or incompatible checkpoint.
        """
        from darkgan.generation.api import DarkGAN
        from darkgan.models.checkpoint import resolve_checkpoint

        if checkpoint is None:
            from darkgan.paths import shipped_checkpoint

            checkpoint = shipped_checkpoint()
        path = resolve_checkpoint(checkpoint)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = DarkGAN.load(path, device=device, data=data)
        studio = cls(model, path, out_dir)
        studio.load_messages = [str(w.message) for w in caught]
        return studio

    @property
    def k(self) -> int:
        """Number of attributes K."""
        return len(self.names)

    @property
    def pitches(self) -> list[int]:
        """Every MIDI pitch of the trained range, ascending."""
        return list(range(self.pitch_range[0], self.pitch_range[1] + 1))

    def warm_up(self) -> None:
        """One throw-away note and spectrogram, so the first click does not pay for lazy
        initialisation (oneDNN kernels, matplotlib: ~2 s)."""
        self._generate(self.pitches[len(self.pitches) // 2], 0, np.zeros(self.k))
        st.spectrogram_image(np.zeros(st.N_SAMPLES, np.float32))
        st.pad_image(0.5, 0.5, "x", "y")

    # ------------------------------------------------------------------ generation

    def _validated(self, pitch: Any, seed: Any, values: Sequence[Any] | dict, fallback=None):
        messages: list[str] = []
        p, m = st.parse_pitch(pitch, self.pitch_range)
        messages += m
        s, m = st.parse_seed(seed)
        messages += m
        vec, m = st.validate_attributes(values, self.names, fallback=fallback)
        messages += m
        return p, s, vec, messages

    def conditioning(self, vec: np.ndarray, steer: str = "data") -> tuple[dict[str, float], str]:
        """What :meth:`DarkGAN.generate` is given for slider values ``vec [K]`` (user scale):
        ``(attributes, scale)``.

        ``steer="data"`` (new settings): the sliders left at 0 (typical) follow the moved ones as
        they move in the data (:mod:`darkgan.generation.steer`, over the typical vector), so one
        raised slider is heard; returned as raw probabilities of every attribute. ``"none"``
        (settings files before version 3): every value as it is, on the user scale.

        Raises:
            DarkGANError: an unknown ``steer``; no attribute bank to steer with.
        """
        check_steer(steer)
        moved = {n: float(v) for n, v in zip(self.names, vec) if v != 0.0}
        if steer == "none" or not moved or len(moved) == len(self.names):
            return {n: float(v) for n, v in zip(self.names, vec)}, "user"
        typical = self.model.attribute_vector({n: 0.0 for n in self.names}, steer="none")
        alpha = self.model.attribute_vector(moved, base=typical, steer="data")
        return {n: float(a) for n, a in zip(self.names, alpha)}, "raw"

    def _generate(self, pitch: int, seed: int, vec: np.ndarray, messages: list[str] | None = None,
                  steer: str = "data") -> np.ndarray:
        """One note ``[16000]`` float32 from validated inputs (the generation API's warnings,
        e.g. a peak-normalised or silent note, are appended to ``messages``)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            attrs, scale = self.conditioning(vec, steer)
            wave = self.model.generate(pitch, attributes=attrs, n=1, seed=seed, scale=scale)
        if messages is not None:
            messages += [str(w.message) for w in caught]
        wave = np.asarray(wave, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(wave)):
            raise DarkGANError("the generator produced NaN/inf samples for these settings")
        return wave

    def _scale_notes(self, seed: int, vec: np.ndarray, messages: list[str], steer: str = "data") -> np.ndarray:
        """Every pitch of the range with the same noise z and attributes: ``[P, 16000]``.

        One batched call (:meth:`DarkGAN.generate_batch`) with the z that ``generate(seed=seed)``
        draws for its first note (``numpy.random.default_rng([seed, 0])``, standard normal), so
        note i equals ``generate(pitches[i], attributes, seed=seed)`` (tested); models without
        ``generate_batch`` are called pitch by pitch."""
        pitches = self.pitches
        batch = getattr(self.model, "generate_batch", None)
        latent = getattr(self.model, "latent_dim", None)
        if batch is None or latent is None:
            return np.stack([self._generate(p, seed, vec, messages, steer) for p in pitches])
        z = np.random.default_rng([seed, 0]).standard_normal((1, int(latent))).astype(np.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            attrs, scale = self.conditioning(vec, steer)
            alpha = self.model.attribute_vector(attrs, scale=scale)  # as generate() does
            out = batch(np.repeat(z, len(pitches), axis=0), np.asarray(pitches), alpha)
        messages += [str(w.message) for w in caught]
        out = np.asarray(out.detach().cpu().numpy() if hasattr(out, "detach") else out, dtype=np.float32)
        if not np.all(np.isfinite(out)):
            raise DarkGANError("the generator produced NaN/inf samples for these settings")
        return out

    def render(self, pitch: Any, seed: Any, values: Sequence[Any] | dict, scale: bool = False,
               steer: str = "data") -> Rendered:
        """Generate one note (or, with ``scale``, the same timbre over every pitch).

        Args:
            pitch: MIDI pitch (clipped into the range with a message).
            seed: noise seed (an integer; wrapped into [0, 2^31 - 1] with a message).
            values: ``[K]`` user-scale attribute values in vocabulary order, or ``{name: value}``
                (missing names take 0, the typical value); NaN/non-numeric -> 0, outside
                [ATTR_MIN, ATTR_MAX] -> clipped (with messages).
            scale: generate every pitch of the range with the same seed and attributes and
                concatenate them (``[P * 16000]``, 10 ms fades at the joins).
            steer: ``"data"``: sliders left at 0 follow the moved ones (:meth:`conditioning`);
                ``"none"``: every value as it is (saved in the settings either way).

        Returns:
            :class:`Rendered` with the WAV and settings JSON written to :attr:`out_dir`.

        Raises:
            SettingsError: pitch or seed not a number.
        """
        t0 = time.perf_counter()
        p, s, vec, messages = self._validated(pitch, seed, values)
        if scale:
            wave = st.concat_notes(self._scale_notes(s, vec, messages, steer))
        else:
            wave = self._generate(p, s, vec, messages, steer)
        settings = st.make_settings(self.checkpoint_id, p, s, self.names, vec, steer)
        settings_dict = settings.to_dict()
        if scale:
            settings_dict["scale"] = True
        stem = self._stem(settings, scale)
        json_path = self.out_dir / f"{stem}.json"
        from darkgan.utils.io import write_json

        wav_path = self._write_wav(wave, stem)
        write_json(json_path, settings_dict)
        self._prune()
        return Rendered(wave, settings, wav_path, json_path, messages, time.perf_counter() - t0)

    def export_instrument(self, seed: Any, values: Sequence[Any] | dict,
                          steer: str = "data") -> tuple[Path, Path, list[str]]:
        """The current sound as a playable instrument over the whole pitch range (issue 21):
        ``(SFZ zip, SF2, messages)`` written to :attr:`out_dir`
        (:func:`darkgan.instrument.export.build_instrument`, the default preset with 3 velocity
        layers; the same seed gives the same instrument).

        Raises:
            SettingsError: seed not a number.
        """
        import shutil

        from darkgan.instrument.config import get_config
        from darkgan.instrument.export import build_instrument
        from darkgan.instrument.save import save_instrument, zip_sfz

        _, s, vec, messages = self._validated(self.pitch_range[0], seed, values)
        settings = st.make_settings(self.checkpoint_id, self.pitch_range[0], s, self.names, vec)
        stem = self._stem(settings, True).replace("-scale-", "-instrument-")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            attrs, scale = self.conditioning(vec, steer)
            inst = build_instrument(self.model, attrs, config=get_config("default", ["velocities=3"]), seed=s,
                                    scale=scale, name="darkgan")
        messages += [str(w.message) for w in caught]
        tmp = self.out_dir / f".{stem}"
        try:
            save_instrument(inst, tmp, "both", overwrite=True)
            sfz_zip = zip_sfz(tmp, self.out_dir / f"{stem}-sfz.zip")
            sf2 = self.out_dir / f"{stem}.sf2"
            os.replace(tmp / "darkgan.sf2", sf2)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._prune()
        return sfz_zip, sf2, messages

    def save_wav(self, wave: np.ndarray, stem: str) -> Path:
        """Write ``wave`` ``[T]`` (16 kHz float) to ``out_dir/<stem>.wav`` (16-bit, atomic) and
        prune :attr:`out_dir`, as every download of the app; for sounds made outside
        :meth:`render` (the timbre-map pad). Returns the path."""
        path = self._write_wav(wave, stem)
        self._prune()
        return path

    def _write_wav(self, wave: np.ndarray, stem: str) -> Path:
        from darkgan.utils.io import atomic_write

        path = self.out_dir / f"{stem}.wav"
        data = st.wav_bytes(wave)
        with atomic_write(path, "wb") as f:
            f.write(data)
        return path

    def _prune(self, keep: int = KEEP_FILES) -> None:
        """Delete all but the ``keep`` newest files of :attr:`out_dir` (a long session stays small)."""
        try:
            files = sorted((p for p in self.out_dir.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
        except OSError:
            return
        for p in files[:-keep] if len(files) > keep else []:
            try:
                p.unlink()
            except OSError:
                pass

    def _stem(self, settings: st.Settings, scale: bool) -> str:
        import hashlib

        h = hashlib.sha256(settings.to_json().encode()).hexdigest()[:8]
        what = "scale" if scale else f"p{settings.pitch}"
        return f"darkgan-{what}-s{settings.seed}-{h}"

    def reproduce(self, settings_source: Any) -> Rendered:
        """Re-generate exactly what a settings JSON (text, bytes, dict or path) describes.

        Raises:
            SettingsError: unusable file (see :func:`darkgan.app.state.parse_settings`).
        """
        settings, messages, scale = self.read_settings(settings_source)
        r = self.render(settings.pitch, settings.seed, settings.vector(self.names), scale=scale, steer=settings.steer)
        r.messages = messages + r.messages
        return r

    def read_settings(self, source: Any) -> tuple[st.Settings, list[str], bool]:
        """Parse a settings JSON for this model: ``(settings, messages, scale)``."""
        if isinstance(source, (str, os.PathLike)) and not str(source).lstrip().startswith("{"):
            source = Path(source)
        settings, messages = st.parse_settings(source, self.names, self.pitch_range, self.checkpoint_id,
                                               to_user=self.scale.to_user)
        scale = False
        try:
            raw = source if isinstance(source, dict) else json.loads(
                source.read_text(encoding="utf-8") if isinstance(source, Path) else source)
            scale = bool(raw.get("scale", False))
        except (OSError, ValueError, AttributeError, UnicodeDecodeError):
            pass
        return settings, messages, scale

    # ------------------------------------------------------------------ "start from"

    def soft_labels(self, waves: np.ndarray) -> np.ndarray:
        """The teacher's soft labels of this vocabulary for waves ``[B, T]`` (16 kHz):
        ``sigmoid(logits[:, class_indices] / T)``, float64 ``[B, K]`` (paper Eq. 1), through
        :meth:`DarkGAN.teacher_attributes`.

        Raises:
            WeightsError: the teacher's weights are missing; CheckpointError: no teacher recorded.
        """
        return np.asarray(self.model.teacher_attributes(np.asarray(waves, dtype=np.float32)), dtype=np.float64)

    def to_user(self, alpha) -> tuple[np.ndarray, list[str]]:
        """Raw probabilities ``[K]`` -> user-scale slider values ``[K]`` float64, clipped into
        [ATTR_MIN, ATTR_MAX] (``(values, messages)``; a message names the clipped attributes)."""
        a = np.clip(np.asarray(alpha, dtype=np.float64).reshape(-1), 1e-7, 1 - 1e-7)
        return st.validate_attributes(list(self.scale.to_user(a).astype(np.float64)), self.names)

    def from_wave_file(self, path: str | Path) -> tuple[np.ndarray, list[str]]:
        """User-scale attribute vector ``[K]`` of an uploaded audio file (timbre transfer).

        The file is checked first (:func:`darkgan.app.state.load_upload`: audio, <= 30 s,
        not silent; messages say when it is down-mixed or resampled), then labelled exactly as
        ``generate(like=FILE)`` does (:meth:`DarkGAN.like_attributes`: mono, 16 kHz, leading
        silence below ``LIKE_TRIM_DB`` = -60 dB re. peak trimmed, the first second, teacher soft
        labels at the checkpoint's T), and converted to the user scale (:meth:`to_user`).

        Raises:
            DataError: not audio, too long, silent...; WeightsError: no teacher weights.
        """
        _, messages = st.load_upload(path)
        vec, m = self.to_user(self.model.like_attributes(str(path)))
        return vec, messages + m

    def from_random_validation(self, seed: int, pitch: int | None = None) -> tuple[np.ndarray, str]:
        """User-scale attribute vector ``[K]`` of a random validation note (of MIDI ``pitch``
        when the checkpoint's attribute bank has notes of it), and a description of the note.

        Raises:
            DataError: the checkpoint has no attribute bank (``darkgan generate --build-bank``).
        """
        m = self.model
        pool = m.validation_attributes(int(pitch)) if pitch is not None else None
        rows_pitch = pitch
        if pool is None or len(pool) == 0:
            pool, rows_pitch = m.validation_attributes(), None
        if pool is None or len(pool) == 0:
            raise DataError("this checkpoint has no attribute bank of validation notes "
                            "(build one: darkgan generate --build-bank --data DIR --out COPY)")
        rng = np.random.default_rng(int(seed))
        j = int(rng.integers(len(pool)))
        name = f"validation note {j + 1} of {len(pool)}"
        bank = getattr(m, "bank", None)
        if bank is not None:
            rows = np.arange(len(bank)) if rows_pitch is None else np.flatnonzero(bank.pitch == int(rows_pitch))
            if len(rows) == len(pool) and j < len(rows) and bank.note_str and bank.note_str[rows[j]]:
                name = f"validation note {bank.note_str[rows[j]]}"
        return self.to_user(pool[j])[0], name

    def from_dataset_note(self, note: str) -> tuple[np.ndarray, int | None, str]:
        """User-scale attribute vector ``[K]`` (and the MIDI pitch, when the name says it) of a
        note of the dataset given with ``--data``, by NSynth ``note_str``. Only dataset notes:
        no file path on the server is opened (audio files are uploaded instead).

        Raises:
            DataError / DarkGANError: no dataset folder, a name that is not a note name, an
                unknown note (the closest dataset names listed).
        """
        note = (note or "").strip()
        if not note:
            raise DataError("type a dataset note name (e.g. keyboard_acoustic_004-060-100)")
        data = getattr(self.model, "data", None)
        if data is None:
            raise DarkGANError("no dataset folder: start the app with --data DIR to use its notes by name "
                               "(or upload an audio file)")
        if any(c in note for c in "/\\") or note.startswith(".") or len(note) > 200:
            raise DataError(f"{note[:60]!r} is not a dataset note name (e.g. keyboard_acoustic_004-060-100); "
                            "upload audio files instead")
        vec = self.model.conditioner.dataset_note(note, data)
        return self.to_user(vec)[0], _pitch_of_note(note), note

    # ------------------------------------------------------------------ responsiveness

    def rank(self, n: int = 64, cache: bool = True, measure: bool = True) -> tuple[list[int], str]:
        """Set :attr:`order` (most responsive attribute first) and return ``(order, source)``;
        see the module docstring for the sources tried."""
        scores, source = None, "vocabulary order"
        cfg = getattr(self.model, "config", None)
        extra = getattr(cfg, "extra", {}) or {}
        for key in ("attribute_correlation", "responsiveness"):
            if isinstance(extra.get(key), dict) and extra[key]:
                scores, source = extra[key], f"checkpoint ({key})"
                break
        if scores is None and cache:
            scores = self._read_cache()
            source = f"cached measurement ({self.cache_path()})"
        if scores is None and measure:
            try:
                scores = self.measure_responsiveness(n)
                source = f"measured at start-up on {n} notes"
                if cache:
                    self._write_cache(scores, n)
            except DarkGANError as e:
                source = f"vocabulary order (could not measure: {e})"
        if scores is None:
            source = "vocabulary order"
        self.order = st.order_by_responsiveness(self.names, scores)
        self.ranking_source = source
        return self.order, source

    def measure_responsiveness(self, n: int = 64, seed: int = 0) -> dict[str, float]:
        """Per-attribute correlation rho_i between the user-scale value of attribute i ~ U(0, 1)
        (typical to 99th percentile; all K drawn independently) and the teacher's soft label of
        the generated note, over ``n`` notes (pitches cycled over the range). Returns
        ``{name: rho}`` (NaN -> omitted). Pearson correlation of
        :func:`darkgan.evaluation.metrics.correlation.pearson_columns` (paper Sec. 4.4.2)."""
        from darkgan.evaluation.metrics.correlation import pearson_columns

        rng = np.random.default_rng(seed)
        user = rng.uniform(0.0, 1.0, size=(n, self.k))
        alpha = self.scale.to_raw(user)
        pitches = np.array([self.pitches[i % len(self.pitches)] for i in range(n)])
        z = rng.standard_normal((n, int(self.model.latent_dim))).astype(np.float32)
        out = self.model.generate_batch(z, pitches, alpha)
        waves = np.asarray(out.detach().cpu().numpy() if hasattr(out, "detach") else out, dtype=np.float32)
        rho = pearson_columns(user, self.soft_labels(waves))
        return {name: float(r) for name, r in zip(self.names, rho) if math.isfinite(r)}

    def cache_path(self) -> Path:
        """Where the responsiveness measurement is cached: the user cache folder
        (``$DARKGAN_CACHE_DIR/app/responsiveness-<checkpoint id>.json``), never the checkpoint."""
        from darkgan.paths import cache_dir

        safe = self.checkpoint_id.replace("/", "_").replace("@", "-")
        return cache_dir() / "app" / f"responsiveness-{safe}.json"

    def _read_cache(self) -> dict | None:
        try:
            d = json.loads(self.cache_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = (isinstance(d, dict) and d.get("checkpoint_id") == self.checkpoint_id
              and d.get("synthesis_id") == self.synthesis_id
              and d.get("method") == RESPONSIVENESS_METHOD and isinstance(d.get("scores"), dict))
        return d["scores"] if ok else None

    def _write_cache(self, scores: dict[str, float], n: int) -> Path | None:
        from darkgan.utils.io import write_json

        doc = {"checkpoint_id": self.checkpoint_id, "synthesis_id": self.synthesis_id, "method": RESPONSIVENESS_METHOD,
               "n_notes": n, "scores": scores}
        try:
            write_json(self.cache_path(), doc)
            return self.cache_path()
        except OSError:  # an unwritable cache costs a re-measurement next time, nothing else
            return None


def _pitch_of_note(note: str) -> int | None:
    """MIDI pitch of an NSynth note string ``family_source_NNN-PPP-VVV`` (else None)."""
    parts = Path(note).stem.split("-")
    if len(parts) >= 3 and parts[-2].isdigit():
        return int(parts[-2])
    return None
