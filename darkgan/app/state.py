"""The app's state and logic as plain functions: no browser, no Gradio, no model.

Everything the web app (:mod:`darkgan.app.app`) does to user input goes through here, so the
rules are unit-testable (``tests/test_app_state.py``):

- :class:`Settings`: what reproduces a note exactly (checkpoint id, MIDI pitch, seed, the full
  attribute vector) and its JSON form (:meth:`Settings.to_json`, :func:`parse_settings`).
- validation of pitch, seed and attribute values (:func:`parse_pitch`, :func:`parse_seed`,
  :func:`validate_attributes`): out-of-range values are clipped, NaN and non-numbers keep the
  previous value, never passed to the model, and every correction comes back as a one-line
  message for the UI.
- uploads (:func:`load_upload`): at most :data:`MAX_UPLOAD_BYTES` and :data:`MAX_UPLOAD_SECONDS`,
  read by the project's audio reader (:func:`darkgan.teacher.resample.load_audio`: down-mixed,
  resampled to 16 kHz), not silent.
- pictures: the spectrogram (:func:`spectrogram_image`) and the 2-D pad (:func:`pad_image`,
  :func:`pad_click_to_xy`, :func:`pad_vector`).
- the attribute search (:func:`filter_attributes`) and the responsiveness order
  (:func:`order_by_responsiveness`).

Units: audio is float32 in [-1, 1] at :data:`SAMPLE_RATE` Hz; pitch is a MIDI note number;
attribute values are on the user scale (:mod:`darkgan.generation.scale`: 0 = the data's typical
note, 1 = its 99th percentile, > 1 beyond the data), within [:data:`ATTR_MIN`, :data:`ATTR_MAX`].
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from darkgan.data.magif import N_SAMPLES, SAMPLE_RATE  # noqa: F401  (16 kHz, 1 s notes)
from darkgan.errors import DarkGANError, DataError
from darkgan.generation.steer import STEER_MODES

MAX_UPLOAD_SECONDS = 30.0  #: longer uploads are refused (the teacher hears 1 s anyway)
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  #: larger uploads are refused before decoding
#: Slider range on the user scale: every note of the shipped attribute bank lies within [-2.3, 2.3]
#: (so "start from a note" is not clipped) and values up to 3 reach beyond the data (the paper's
#: out-of-distribution regime).
ATTR_MIN, ATTR_MAX = -3.0, 3.0
SEED_MAX = 2**31 - 1  #: seeds are integers in [0, SEED_MAX]
N_TOP = 12  #: attributes shown before any search
SETTINGS_FORMAT = "darkgan-app-settings"  #: the ``format`` field of a settings JSON
#: 3: ``steer`` (sliders left at 0 follow the moved ones); 2: attribute values on the user scale
#: (read as ``steer = "none"``); 1 (read too): raw probabilities
SETTINGS_VERSION = 3
PAD_SIZE = 320  #: pixels, the square 2-D pad picture
RANDOM_DIRECTION = "(random direction)"  #: pad axis choice meaning "a random direction"


class SettingsError(DarkGANError):
    """A settings JSON that cannot be used (not JSON, wrong format, missing fields)."""


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Everything that reproduces one generated note exactly.

    Attributes:
        checkpoint_id: :func:`checkpoint_id` of the generator that made it.
        pitch: MIDI note number, inside the checkpoint's pitch range.
        seed: integer in [0, :data:`SEED_MAX`]; the noise z of ``DarkGAN.generate(seed=...)``.
        attributes: ``{display name: value}`` for *every* attribute of the vocabulary, in
            vocabulary order (the full conditioning vector alpha, so no random validation note
            is drawn when it is replayed).
        steer: ``"data"``: the attributes at 0 followed the moved ones as in the data
            (:meth:`darkgan.app.controller.Studio.conditioning`); ``"none"``: every value as is.
    """

    checkpoint_id: str
    pitch: int
    seed: int
    attributes: dict[str, float] = field(default_factory=dict)
    steer: str = "data"

    def vector(self, names: Sequence[str]) -> np.ndarray:
        """The attribute values in the order of ``names``: float64 ``[K]``."""
        return np.array([self.attributes[n] for n in names], dtype=np.float64)

    def to_dict(self) -> dict:
        """JSON-ready dict (``format``, ``version``, then the fields)."""
        return {
            "format": SETTINGS_FORMAT,
            "version": SETTINGS_VERSION,
            "attribute_scale": "user",
            "checkpoint_id": self.checkpoint_id,
            "pitch": int(self.pitch),
            "seed": int(self.seed),
            "attributes": {k: float(v) for k, v in self.attributes.items()},
            "steer": self.steer,
        }

    def to_json(self) -> str:
        """The settings as indented JSON text (floats in shortest round-trip form: exact)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def parse_settings(
    source: str | bytes | Mapping | Path,
    names: Sequence[str],
    pitch_range: tuple[int, int],
    checkpoint: str | None = None,
    to_user: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[Settings, list[str]]:
    """Read a settings JSON (text, bytes, dict or file path) and validate it for a model.

    Args:
        source: the JSON (as written by :meth:`Settings.to_json`).
        names: the loaded model's vocabulary, in order.
        pitch_range: ``(lowest, highest)`` MIDI pitch of the loaded model, inclusive.
        checkpoint: the loaded model's :func:`checkpoint_id`; a different id in the file gives
            a message (the state is still restored: the same vocabulary steers any checkpoint).
        to_user: raw probabilities ``[K]`` -> user-scale values ``[K]`` (the model's
            ``AttributeScale.to_user``), to read version-1 files (raw values).

    Returns:
        ``(settings, messages)``: settings with a value for every name in ``names`` (attributes
        missing from the file keep 0.0 = typical, unknown ones are dropped, values clipped into
        the slider range), and one message a correction.

    Raises:
        SettingsError: not JSON, not a settings file, a pitch/seed that is not a number, or a
            version-1 file without ``to_user``.
    """
    data = _settings_dict(source)
    messages: list[str] = []
    pitch, m = parse_pitch(data["pitch"], pitch_range)
    messages += m
    seed, m = parse_seed(data["seed"])
    messages += m
    vec, m = _settings_vector(data, names, to_user)
    messages += m
    file_ckpt = str(data.get("checkpoint_id", ""))
    if checkpoint is not None and file_ckpt != checkpoint:
        messages.append(
            f"settings were made with checkpoint {file_ckpt or '(unknown)'}, this app runs {checkpoint}: "
            "the sound will differ"
        )
    steer = data.get("steer", "none")  # files before version 3 were made without steering
    if steer not in STEER_MODES:
        raise SettingsError(f"settings field 'steer' must be one of {', '.join(STEER_MODES)}, got {steer!r}")
    return Settings(checkpoint or file_ckpt, pitch, seed, dict(zip(names, map(float, vec))), steer), messages


def _settings_dict(source) -> dict:
    """The JSON object of a settings file, with its format, version and fields checked."""
    if isinstance(source, Path):
        try:
            source = source.read_bytes()
        except OSError as e:
            raise SettingsError(f"{source}: cannot read settings file ({e.strerror})") from None
    if isinstance(source, (bytes, bytearray)):
        try:
            source = bytes(source).decode("utf-8")
        except UnicodeDecodeError:
            raise SettingsError("settings file is not UTF-8 text (expected a .json file)") from None
    if isinstance(source, str):
        try:
            data = json.loads(source)
        except json.JSONDecodeError as e:
            raise SettingsError(f"settings file is not valid JSON ({e.msg}, line {e.lineno})") from None
    else:
        data = dict(source)
    if not isinstance(data, dict) or data.get("format") != SETTINGS_FORMAT:
        raise SettingsError(f"not a DarkGAN app settings file (expected \"format\": \"{SETTINGS_FORMAT}\")")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SETTINGS_VERSION:
        raise SettingsError(f"settings version {version!r} is not supported (this app reads 1..{SETTINGS_VERSION})")
    for key in ("pitch", "seed", "attributes"):
        if key not in data:
            raise SettingsError(f"settings file has no {key!r} field")
    if not isinstance(data["attributes"], dict):
        raise SettingsError("settings field 'attributes' must be an object {name: value}")
    return data


def _settings_vector(data: dict, names: Sequence[str], to_user) -> tuple[np.ndarray, list[str]]:
    """The user-scale vector ``[K]`` of a checked settings dict (version 1: raw, converted)."""
    if data["version"] >= 2:
        return validate_attributes(data["attributes"], names)
    if to_user is None:
        raise SettingsError("settings version 1 holds raw probabilities; this model cannot convert them")
    raw, messages = validate_attributes(data["attributes"], names, lo=0.0, hi=1.0)
    user = np.asarray(to_user(np.clip(raw, 1e-6, 1 - 1e-6)), dtype=np.float64)
    vec, m = validate_attributes(list(user), names)
    return vec, messages + ["settings version 1: raw probabilities converted to the user scale"] + m


def make_settings(checkpoint: str, pitch: int, seed: int, names: Sequence[str], values: Iterable[float],
                  steer: str = "data") -> Settings:
    """Settings from already validated values (``values`` in the order of ``names``)."""
    values = [float(v) for v in values]
    if len(values) != len(names):
        raise ValueError(f"{len(values)} attribute values for {len(names)} attributes")
    return Settings(checkpoint, int(pitch), int(seed), dict(zip(names, values)), steer)


# --------------------------------------------------------------------------- validation


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return x


def parse_pitch(value: Any, pitch_range: tuple[int, int]) -> tuple[int, list[str]]:
    """A MIDI pitch from user input, rounded and clipped into ``pitch_range`` (inclusive).

    Returns ``(pitch, messages)``. Raises :class:`SettingsError` when ``value`` is not a
    finite number.
    """
    lo, hi = int(pitch_range[0]), int(pitch_range[1])
    x = _as_float(value)
    if x is None or not math.isfinite(x):
        raise SettingsError(f"pitch {value!r} is not a number (MIDI {lo}..{hi})")
    p = int(round(x))
    if p < lo or p > hi:
        c = min(max(p, lo), hi)
        return c, [f"pitch {value} is outside the trained range {lo}..{hi}: using {c}"]
    return p, []


def parse_seed(value: Any) -> tuple[int, list[str]]:
    """A seed from user input: an integer in [0, :data:`SEED_MAX`] (rounded, then wrapped).

    Returns ``(seed, messages)``. Raises :class:`SettingsError` when not a finite number.
    """
    x = _as_float(value)
    if x is None or not math.isfinite(x):
        raise SettingsError(f"seed {value!r} is not a number (an integer 0..{SEED_MAX})")
    s = int(round(x))
    if 0 <= s <= SEED_MAX:
        return s, []
    w = s % (SEED_MAX + 1)
    return w, [f"seed {value} is outside 0..{SEED_MAX}: using {w}"]


def validate_attributes(
    values: Mapping[str, Any] | Sequence[Any],
    names: Sequence[str],
    fallback: Sequence[float] | np.ndarray | None = None,
    lo: float = ATTR_MIN,
    hi: float = ATTR_MAX,
) -> tuple[np.ndarray, list[str]]:
    """Turn user attribute values into a safe conditioning vector.

    Args:
        values: ``{name: value}`` (names matched exactly, then case-insensitively) or a
            sequence in the order of ``names``.
        names: the vocabulary, ``K`` names.
        fallback: ``[K]`` values used for missing, non-numeric or NaN entries (default 0, the
            typical value on the user scale).
        lo, hi: allowed range; finite values outside it are clipped (``inf`` too).

    Returns:
        ``(vector float64 [K], messages)``; one message per kind of correction, naming up to
        three attributes.

    Raises:
        SettingsError: a sequence of the wrong length.
    """
    k = len(names)
    fb = np.zeros(k) if fallback is None else np.asarray(fallback, dtype=np.float64)
    out = fb.copy()
    raw: list[Any] = [None] * k
    messages: list[str] = []
    if isinstance(values, Mapping):
        index = {n: i for i, n in enumerate(names)}
        lower = {n.lower(): i for i, n in enumerate(names)}
        unknown = []
        for name, v in values.items():
            i = index.get(name, lower.get(str(name).lower()))
            if i is None:
                unknown.append(str(name))
            else:
                raw[i] = v
        if unknown:
            messages.append(f"unknown attribute(s) ignored: {_few(unknown)}")
    else:
        values = list(values)
        if len(values) != k:
            raise SettingsError(f"expected {k} attribute values, got {len(values)}")
        raw = values
    bad, clipped = [], []
    for i, v in enumerate(raw):
        if v is None:
            continue
        x = _as_float(v)
        if x is None or math.isnan(x):
            bad.append(names[i])
            continue
        if x < lo or x > hi:
            clipped.append(f"{names[i]}={v}")
            x = min(max(x, lo), hi)
        out[i] = x
    if bad:
        what = "set to 0 (typical)" if fallback is None else "kept the previous value"
        messages.append(f"not a number, {what}: {_few(bad)}")
    if clipped:
        messages.append(f"outside [{lo:g}, {hi:g}], clipped: {_few(clipped)}")
    return out, messages


def _few(items: Sequence[str], n: int = 3) -> str:
    items = list(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


# --------------------------------------------------------------------------- uploads


def load_upload(
    path: str | Path, max_seconds: float = MAX_UPLOAD_SECONDS, max_bytes: int = MAX_UPLOAD_BYTES
) -> tuple[np.ndarray, list[str]]:
    """Check an uploaded audio file and read it for the teacher.

    Size and length are checked from the header before decoding; the file is then read by the
    project's reader (:func:`darkgan.teacher.resample.load_audio`: any format libsndfile reads,
    channel mean, soxr resampling to 16 kHz).

    Args:
        path: the uploaded file.
        max_seconds: longer files are refused (seconds, at the file's own rate).
        max_bytes: larger files are refused before decoding.

    Returns:
        ``(wave float32 [T] at 16 kHz, messages)`` with ``T <= max_seconds * 16000``.

    Raises:
        DataError: missing, empty, not audio, too long/large, NaN/inf samples, or digital silence.
    """
    import soundfile as sf

    from darkgan.teacher.resample import load_audio

    path = Path(path)
    name = path.name
    if not path.is_file():
        raise DataError(f"{name}: file not found")
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(f"{name}: {size / 1e6:.1f} MB is too large (at most {max_bytes / 1e6:.0f} MB)")
    try:
        info = sf.info(str(path))
    except Exception:
        raise DataError(f"{name}: not an audio file (expected WAV, FLAC, OGG or MP3)") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise DataError(f"{name}: the audio file is empty")
    seconds = info.frames / info.samplerate
    if seconds > max_seconds:
        raise DataError(f"{name}: {seconds:.1f} s is too long (at most {max_seconds:g} s; trim it to the note)")
    mono = load_audio(path, SAMPLE_RATE)
    messages: list[str] = []
    if info.channels > 1:
        messages.append(f"{name}: {info.channels} channels down-mixed to mono")
    if info.samplerate != SAMPLE_RATE:
        messages.append(f"{name}: resampled from {info.samplerate} Hz to {SAMPLE_RATE} Hz")
    if not np.all(np.isfinite(mono)):
        raise DataError(f"{name}: the audio contains NaN or infinite samples")
    if mono.size == 0 or float(np.abs(mono).max()) < 1e-5:
        raise DataError(f"{name}: the audio is silent")
    return np.clip(mono, -1.0, 1.0).astype(np.float32), messages


# --------------------------------------------------------------------------- audio out


def wav_bytes(wave: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    """``wave`` float ``[T]`` in [-1, 1] as a 16-bit PCM mono WAV file (bytes)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1, 1), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def concat_notes(notes: np.ndarray, fade: int = 160) -> np.ndarray:
    """Concatenate notes ``[P, T]`` into one ``[P * T]`` signal with a short fade at each end
    (``fade`` samples, 10 ms) so the joins do not click."""
    notes = np.array(notes, dtype=np.float32, copy=True)
    if notes.ndim != 2:
        raise ValueError(f"expected notes [P, T], got {list(notes.shape)}")
    if fade > 0 and notes.shape[1] > 2 * fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        notes[:, :fade] *= ramp
        notes[:, -fade:] *= ramp[::-1]
    return notes.reshape(-1)


# --------------------------------------------------------------------------- pictures


def spectrogram_image(wave: np.ndarray, sr: int = SAMPLE_RATE, title: str = "", width_px: int = 640,
                      height_px: int = 300) -> np.ndarray:
    """A log-magnitude spectrogram picture of ``wave`` (float ``[T]``) as uint8 RGB
    ``[height_px, width_px, 3]``: STFT 1024/256 Hann, dB relative to the peak, 80 dB range,
    frequency axis in kHz, time in seconds."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    n_fft, hop = 1024, 256
    if wave.size < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.size))
    frames = 1 + (wave.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(wave[idx] * np.hanning(n_fft).astype(np.float32), axis=1)).T
    db = 20 * np.log10(spec + 1e-9)
    db -= db.max()
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    ax = fig.add_axes((0.09, 0.16, 0.89, 0.74 if title else 0.8))
    ax.imshow(np.maximum(db, -80), origin="lower", aspect="auto", cmap="magma",
              extent=(0, wave.size / sr, 0, sr / 2000), vmin=-80, vmax=0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("kHz")
    if title:
        ax.set_title(title, fontsize=10)
    return _render(fig)


def _render(fig) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def pad_image(x: float, y: float, xlabel: str, ylabel: str, size: int = PAD_SIZE) -> np.ndarray:
    """The 2-D pad: a ``size x size`` uint8 RGB picture of the unit square, (0, 0) bottom left,
    with a marker at ``(x, y)`` and the axis names written inside. Pixel ``(px, py)`` of the
    picture maps back with :func:`pad_click_to_xy`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(size / dpi, size / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    g = np.linspace(0, 1, 64)
    ax.imshow(g[None, :] * 0.5 + g[:, None] * 0.5, origin="lower", extent=(0, 1, 0, 1), cmap="Blues",
              vmin=-0.3, vmax=1.6, aspect="auto")
    for t in (0.25, 0.5, 0.75):
        ax.axhline(t, color="white", lw=0.6)
        ax.axvline(t, color="white", lw=0.6)
    ax.plot([x], [y], marker="o", ms=12, mfc="#e4572e", mec="white", mew=2)
    ax.text(0.98, 0.02, f"{xlabel} →", ha="right", va="bottom", fontsize=9, transform=ax.transAxes)
    ax.text(0.02, 0.98, f"↑ {ylabel}", ha="left", va="top", fontsize=9, transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    return _render(fig)


def pad_click_to_xy(px: float, py: float, width: int = PAD_SIZE, height: int = PAD_SIZE) -> tuple[float, float]:
    """Pixel coordinates of a click on :func:`pad_image` (origin top left, as the browser
    reports them) -> pad coordinates ``(x, y)`` in [0, 1]^2, (0, 0) bottom left, rounded to
    0.01 (the sliders' step)."""
    x = (float(px) + 0.5) / width
    y = 1.0 - (float(py) + 0.5) / height
    return round(min(max(x, 0.0), 1.0), 2), round(min(max(y, 0.0), 1.0), 2)


def random_directions(k: int, seed: int) -> np.ndarray:
    """Two random orthogonal unit directions in attribute space, float64 ``[2, k]``
    (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((k, 2)))
    return q.T.copy()


def pad_vector(
    base: np.ndarray,
    x: float,
    y: float,
    x_axis: int | None,
    y_axis: int | None,
    directions: np.ndarray | None = None,
    gain: float = 1.0,
) -> np.ndarray:
    """The attribute vector at pad position ``(x, y)``.

    Args:
        base: ``[K]`` the vector the pad starts from (the sliders' values).
        x, y: pad coordinates in [0, 1].
        x_axis, y_axis: attribute index steered by each axis (its value becomes ``x`` / ``y``),
            or ``None`` for a random direction: ``base + gain * (x - 0.5) * directions[0]``
            (and ``directions[1]`` for y).
        directions: ``[2, K]`` from :func:`random_directions` (needed when an axis is None).

    Returns:
        float64 ``[K]`` clipped to [:data:`ATTR_MIN`, :data:`ATTR_MAX`].
    """
    v = np.array(base, dtype=np.float64, copy=True)
    for axis, pos, row in ((x_axis, x, 0), (y_axis, y, 1)):
        if axis is None:
            if directions is None:
                raise ValueError("a random-direction pad axis needs directions [2, K]")
            v = v + gain * (pos - 0.5) * directions[row]
    for axis, pos in ((x_axis, x), (y_axis, y)):
        if axis is not None:
            v[axis] = pos
    return np.clip(v, ATTR_MIN, ATTR_MAX)


# --------------------------------------------------------------------------- attribute lists


def filter_attributes(query: str, names: Sequence[str], order: Sequence[int], n_top: int = N_TOP) -> list[bool]:
    """Which attribute sliders to show for a search box text.

    Empty query: the first ``n_top`` of ``order`` (most responsive first). Otherwise every name
    containing each word of the query (case-insensitive); ``*`` shows all.

    Returns:
        ``[K]`` booleans in vocabulary order.
    """
    q = (query or "").strip().lower()
    if not q:
        top = set(list(order)[:n_top])
        return [i in top for i in range(len(names))]
    if q == "*":
        return [True] * len(names)
    words = q.split()
    return [all(w in n.lower() for w in words) for n in names]


def order_by_responsiveness(names: Sequence[str], scores: Mapping[str, float] | None) -> list[int]:
    """Vocabulary indices sorted by descending responsiveness score (NaN/missing last,
    ties and the no-score case in vocabulary order)."""
    if not scores:
        return list(range(len(names)))

    def key(i: int) -> tuple[int, float, int]:
        s = scores.get(names[i])
        ok = s is not None and math.isfinite(float(s))
        return (0 if ok else 1, -float(s) if ok else 0.0, i)

    return sorted(range(len(names)), key=key)
