"""Sample-exact, deterministic float rendering of single notes with libfluidsynth.

pyfluidsynth only exposes dithered 16-bit output, so we declare the few extra libfluidsynth
(2.x) functions we need through pyfluidsynth's own ``cfunc`` helper (same loaded library):
``fluid_synth_write_float`` (float output: no clipping, no dither), ``fluid_synth_add_sfont`` /
``fluid_synth_remove_sfont`` (share one loaded SoundFont between synths) and
``fluid_set_log_function`` (silence fluidsynth's console warnings).

Why a fresh synth per note: libfluidsynth's mixer ramps each voice's output gain over the first
64-sample block from the value the *previous* voice in the same slot ended with, so on a reused
synth the first block of a note depends on what was played before (measured: differences up to
2e-2 in samples 1-63). A fresh ``fluid_synth_t`` per note removes all history; it costs ~1 ms
because the parsed SoundFont (``fluid_sfont_t``, loaded once per process by a long-lived holder
synth) is attached to the new synth with ``fluid_synth_add_sfont`` instead of being re-read.
Result: a note's samples depend only on (font, bank, program, pitch, velocity, gain), whatever
was rendered before, in whichever process.

Timing: the note-on is sent before the first sample is computed and fluidsynth renders in blocks
of 64 samples, so the note starts at sample 0 (the first 64 samples carry fluidsynth's
gain ramp-in from 0); note-off is sent after exactly ``NOTE_OFF`` samples (both multiples of 64).
"""
from __future__ import annotations

import os
from ctypes import c_float, c_int, c_void_p
from pathlib import Path

import numpy as np

from darkgan.errors import DataError

from darkgan.data.constants import SAMPLE_RATE  # noqa: E402 (16 kHz)
NOTE_SAMPLES = 64000  #: samples per note (4 s), as NSynth
NOTE_OFF = 48000  #: note-off after 3 s, as NSynth
MAX_VOICES = 64  #: polyphony of the per-note synth (one note uses a few voices)

_fs = None  # the pyfluidsynth module, imported lazily
_c: dict = {}  # extra ctypes prototypes
_fonts: dict[str, "LoadedFont"] = {}  # per-process cache: resolved path -> LoadedFont


def _lib():
    """Import pyfluidsynth and declare the extra libfluidsynth functions (once per process)."""
    global _fs
    if _fs is not None:
        return _fs
    try:
        import fluidsynth
    except ImportError as e:  # the shared library is missing
        raise DataError(f"pyfluidsynth/libfluidsynth not usable: {e}") from None
    cf = fluidsynth.cfunc
    _c["write_float"] = cf("fluid_synth_write_float", c_int,
                           ("synth", c_void_p, 1), ("len", c_int, 1),
                           ("lout", c_void_p, 1), ("loff", c_int, 1), ("lincr", c_int, 1),
                           ("rout", c_void_p, 1), ("roff", c_int, 1), ("rincr", c_int, 1))
    _c["add_sfont"] = cf("fluid_synth_add_sfont", c_int, ("synth", c_void_p, 1), ("sfont", c_void_p, 1))
    _c["remove_sfont"] = cf("fluid_synth_remove_sfont", c_int, ("synth", c_void_p, 1),
                            ("sfont", c_void_p, 1))
    _c["get_sfont_by_id"] = cf("fluid_synth_get_sfont_by_id", c_void_p, ("synth", c_void_p, 1),
                               ("id", c_int, 1))
    _c["sfont_get_preset"] = cf("fluid_sfont_get_preset", c_void_p, ("sfont", c_void_p, 1),
                                ("bank", c_int, 1), ("prenum", c_int, 1))
    _c["set_gain"] = cf("fluid_synth_set_gain", None, ("synth", c_void_p, 1), ("gain", c_float, 1))
    missing = [k for k, v in _c.items() if v is None]
    if missing:
        raise DataError(f"libfluidsynth {fluidsynth.lib}: missing functions {missing} (need fluidsynth >= 2.0)")
    set_log = cf("fluid_set_log_function", c_void_p, ("level", c_int, 1), ("fun", c_void_p, 1),
                 ("data", c_void_p, 1))
    if set_log is not None:  # FLUID_PANIC=0 ERR=1 WARN=2 INFO=3 DBG=4: we check return codes
        for level in (1, 2, 3, 4):
            set_log(level, None, None)
    _fs = fluidsynth
    return fluidsynth


def _new_synth():
    fs = _lib()
    return fs.Synth(gain=1.0, samplerate=float(SAMPLE_RATE), channels=16, **{
        "synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": MAX_VOICES,
        "synth.cpu-cores": 1})


class LoadedFont:
    """A SoundFont parsed once in this process (held by a synth that never plays).

    Attributes:
        path: resolved path of the font file.
        name: file name (what datasets record as ``soundfont``).
        presets: ``[(bank, program, preset_name), ...]`` of every preset, sorted by bank, program.
    """

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        self._holder = _new_synth()
        sfid = self._holder.sfload(str(path))
        if sfid < 0:
            self._holder.delete()
            raise DataError(f"{path}: not a readable SoundFont (fluidsynth could not load it)")
        self._sfont = _c["get_sfont_by_id"](self._holder.synth, sfid)
        self.presets = []
        for bank in range(129):
            for prog in range(128):
                preset = _c["sfont_get_preset"](self._sfont, bank, prog)
                if preset:
                    name = self._holder.sfpreset_name(sfid, bank, prog) or ""
                    self.presets.append((bank, prog, name.strip()))

    def has_preset(self, bank: int, program: int) -> bool:
        return bool(_c["sfont_get_preset"](self._sfont, int(bank), int(program)))

    def render_stereo(self, bank: int, program: int, pitch: int, velocity: int,
                      n_samples: int = NOTE_SAMPLES, note_off: int | None = NOTE_OFF) -> np.ndarray:
        """Float render of one note on a fresh synth: ``[2, n_samples]`` float32 (L, R), unclipped.

        Note-on at sample 0, note-off after ``note_off`` samples (``None``: never). Synth gain 1.0,
        reverb and chorus off, 16 kHz.
        """
        if not self.has_preset(bank, program):
            raise DataError(f"{self.path}: no preset at bank {bank}, program {program}")
        synth = _new_synth()
        try:
            sfid = _c["add_sfont"](synth.synth, self._sfont)
            if sfid < 0:
                raise DataError(f"{self.path}: fluidsynth could not attach the SoundFont")
            try:
                if synth.program_select(0, sfid, int(bank), int(program)) != 0:
                    raise DataError(f"{self.path}: cannot select bank {bank}, program {program}")
                out = np.zeros((2, n_samples), dtype=np.float32)
                if synth.noteon(0, int(pitch), int(velocity)) != 0:
                    raise DataError(f"{self.path}: note-on failed (pitch {pitch}, velocity {velocity})")
                split = n_samples if note_off is None else min(int(note_off), n_samples)
                self._write(synth, out, 0, split)
                synth.noteoff(0, int(pitch))
                self._write(synth, out, split, n_samples)
            finally:
                _c["remove_sfont"](synth.synth, self._sfont)
        finally:
            synth.delete()
        return out

    @staticmethod
    def _write(synth, out: np.ndarray, start: int, stop: int) -> None:
        if stop <= start:
            return
        left = out[0].ctypes.data + 4 * start
        right = out[1].ctypes.data + 4 * start
        if _c["write_float"](synth.synth, stop - start, left, 0, 1, right, 0, 1) != 0:
            raise DataError("fluid_synth_write_float failed")


def load_font(path: str | os.PathLike) -> LoadedFont:
    """Parse a SoundFont (.sf2/.sf3) once per process and return it (cached by resolved path).

    Raises:
        DataError: the file is missing, unreadable, or not a SoundFont fluidsynth can load.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: SoundFont not found")
    if not p.is_file():
        raise DataError(f"{p}: not a file (expected a .sf2/.sf3 SoundFont)")
    if not os.access(p, os.R_OK):
        raise DataError(f"{p}: SoundFont not readable (permission denied)")
    key = str(p.resolve())
    if key not in _fonts:
        _fonts[key] = LoadedFont(Path(key))
    return _fonts[key]


def to_mono(stereo: np.ndarray) -> np.ndarray:
    """``[2, T]`` -> ``[T]``: the average of left and right (keeps centre-panned level / 2 per side
    summed back; hard-panned stereo samples keep both sides)."""
    return (0.5 * (stereo[0].astype(np.float64) + stereo[1])).astype(np.float32)


def quantize(wave: np.ndarray) -> np.ndarray:
    """Float wave in [-1, 1) -> int16, deterministically: ``clip(rint(x * 32768), -32768, 32767)``.

    Reading the int16 back with soundfile (``dtype="float32"``) gives exactly ``q / 32768``.
    """
    return np.clip(np.rint(np.asarray(wave, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)
