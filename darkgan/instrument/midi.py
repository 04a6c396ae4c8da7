"""Play a MIDI file with DarkGAN instruments: polyphonic, velocity-sensitive, note lengths kept.

MIDI is read with pretty_midi (tempo maps, note on/off pairing); every note is a *voice* of the
sampler model of SoundFont 2 / SFZ players, applied to an :class:`Instrument`:

- the sample of the zone covering the key, re-pitched by ``2 ** ((key - root) / 12)`` when the
  key is not the sample's root, read with 4-point cubic (Catmull-Rom) interpolation, the order
  FluidSynth uses by default (:func:`read_cubic`; linear interpolation dulls and aliases a
  re-pitched sample audibly);
- the velocity layer of the note's velocity, at gain ``(v / 127) ** 2`` (:func:`velocity_gain`);
- held past the sample's loop end, the loop ``[start, end)`` repeats until note-off (a note
  shorter than the sample is cut at note-off); one-shot instruments end with the sample;
- after note-off the release envelope: linear in dB down to -100 dB over ``release_s`` (SF2
  ``releaseVolEnv`` semantics).

The sustain (damper) pedal, controller 64 (values >= 64 down, MIDI 1.0; FluidSynth's reading):
a note released while its channel's pedal is down keeps sounding until the pedal comes up, or
until the same key is struck again, whichever comes first (:func:`apply_sustain`); then its
release. ``sustain_pedal=False`` (``--ignore-pedal``) plays the notes as written.

Voices are summed; a mix whose peak exceeds 1 is scaled down to peak 1 (a gain, never a clip;
reported). Notes outside the instrument's keys follow ``out_of_range`` (:data:`POLICIES`).
Drum-channel notes (channel 10) are skipped with a warning: the models are pitched.
"""
from __future__ import annotations

import bisect
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from darkgan.errors import DarkGANError, DataError
from darkgan.instrument.export import Instrument
from darkgan.instrument.loops import velocity_gain

#: What happens to a note outside the instrument's playable keys: ``octave`` transposes it by
#: whole octaves into the range (the default; counted and warned), ``skip`` leaves it out
#: (warned), ``error`` refuses the file.
POLICIES = ("octave", "skip", "error")
#: Release floor (dB): SF2's volume envelope ends at -100 dB.
RELEASE_DB = -100.0
#: Output sample rates :func:`render_midi` accepts, Hz (inclusive range).
OUTPUT_RATES = (8000, 192000)
#: The sustain (damper) pedal's controller number; a value >= 64 is "down" (MIDI 1.0 spec).
SUSTAIN_CC = 64


class RenderWarning(UserWarning):
    """A MIDI rendering that went on with a change (transposed/skipped notes, drums, a gain)."""


@dataclass
class MidiNote:
    """One note: ``start``/``end`` in seconds, MIDI ``pitch`` and ``velocity``, GM ``program``;
    ``sustained``: ``end`` was moved later by the sustain pedal."""

    start: float
    end: float
    pitch: int
    velocity: int
    program: int
    sustained: bool = False


def pedal_intervals(control_changes, end_time: float) -> list[tuple[float, float]]:
    """The ``(down, up)`` times in seconds of the sustain pedal (controller :data:`SUSTAIN_CC`)
    among pretty_midi ``control_changes`` (``.number``, ``.value``, ``.time``); a pedal still
    down at the end of the file comes up at ``end_time``."""
    out, down = [], None
    for cc in sorted((c for c in control_changes if c.number == SUSTAIN_CC), key=lambda c: c.time):
        if cc.value >= 64 and down is None:
            down = float(cc.time)
        elif cc.value < 64 and down is not None:
            out.append((down, float(cc.time)))
            down = None
    if down is not None:
        out.append((down, max(float(end_time), down)))
    return out


def apply_sustain(notes: list[MidiNote], intervals: list[tuple[float, float]]) -> list[MidiNote]:
    """Notes of one channel with its pedal ``intervals`` (:func:`pedal_intervals`): a note whose
    note-off falls while the pedal is down (``down <= end < up``) now ends at ``up``, or at the
    next onset of the same key if that comes first (never before its own note-off); marked
    ``sustained``. Other notes are returned as they are."""
    if not intervals:
        return list(notes)
    starts: dict[int, list[float]] = {}
    for n in notes:
        starts.setdefault(n.pitch, []).append(n.start)
    for v in starts.values():
        v.sort()
    out = []
    for n in notes:
        up = next((b for a, b in intervals if a <= n.end < b), None)
        if up is None:
            out.append(n)
            continue
        same = starts[n.pitch]
        i = bisect.bisect_right(same, n.start)
        end = max(n.end, min(up, same[i] if i < len(same) else up))
        out.append(replace(n, end=end, sustained=end > n.end))
    return out


def read_notes(path: str | os.PathLike, sustain_pedal: bool = True) -> tuple[list[MidiNote], int]:
    """The pitched notes of a MIDI file, sorted by start, and the number of drum notes left out;
    with ``sustain_pedal`` each part's notes are held by its sustain pedal (:func:`apply_sustain`).

    Raises:
        DataError: missing file, not a MIDI file (any parse failure), or no pitched notes.
    """
    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: MIDI file not found")
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # pretty_midi/mido raise OSError, EOFError, KeyError, ValueError...
        raise DataError(f"{path}: not a readable MIDI file ({type(e).__name__}: {str(e)[:80]})") from None
    notes, drums = [], 0
    for ins in pm.instruments:
        if ins.is_drum:
            drums += len(ins.notes)
            continue
        part = [MidiNote(float(n.start), float(n.end), int(n.pitch), int(n.velocity), int(ins.program))
                for n in ins.notes if n.end > n.start and n.velocity > 0]
        if sustain_pedal:
            part = apply_sustain(part, pedal_intervals(ins.control_changes, pm.get_end_time()))
        notes += part
    if not notes:
        what = f"only {drums} drum notes" if drums else "no notes"
        raise DataError(f"{path}: has {what}; nothing pitched to render")
    return sorted(notes, key=lambda n: (n.start, n.pitch)), drums


def place_notes(notes: list[MidiNote], playable: tuple[int, int], policy: str = "octave",
                source: str = "MIDI") -> tuple[list[MidiNote], dict]:
    """Apply the out-of-range ``policy`` to ``notes`` for keys ``playable = (lo, hi)``.

    Returns:
        ``(notes kept, {"transposed": n, "skipped": n})``.

    Raises:
        DarkGANError: an unknown policy; with ``error``, the first note out of range.
    """
    if policy not in POLICIES:
        raise DarkGANError(f"out-of-range policy {policy!r}: choose one of {', '.join(POLICIES)}")
    lo, hi = playable
    kept, counts = [], {"transposed": 0, "skipped": 0}
    for n in notes:
        if lo <= n.pitch <= hi:
            kept.append(n)
        elif policy == "error":
            raise DarkGANError(f"{source}: note {n.pitch} at {n.start:.2f} s is outside the instrument's keys "
                               f"MIDI {lo}..{hi} (use the octave or skip policy)")
        elif policy == "skip":
            counts["skipped"] += 1
        else:
            p = n.pitch + 12 * int(np.ceil((lo - n.pitch) / 12)) if n.pitch < lo else \
                n.pitch - 12 * int(np.ceil((n.pitch - hi) / 12))
            if not lo <= p <= hi:  # a range narrower than an octave
                counts["skipped"] += 1
                continue
            kept.append(replace(n, pitch=p))
            counts["transposed"] += 1
    return kept, counts


def voice(inst: Instrument, pitch: int, velocity: int, duration_s: float) -> np.ndarray:
    """One note of ``inst``: ``[L]`` float32, held ``duration_s`` then released (see module doc).

    Raises:
        DarkGANError: ``pitch`` is outside every zone of ``inst``.
    """
    k = inst.key_index(int(pitch))
    if k < 0:
        raise DarkGANError(f"MIDI key {pitch} is outside the instrument's keys {inst.playable}")
    src = inst.samples[inst.layer_index(int(velocity)), k]
    sr, n = inst.sample_rate, src.shape[-1]
    n_hold = max(1, int(round(duration_s * sr)))
    n_rel = max(1, int(round(inst.release_s * sr)))
    pos = np.arange(n_hold + n_rel, dtype=np.float64) * 2.0 ** ((int(pitch) - int(inst.pitches[k])) / 12.0)
    if inst.loops is not None:
        s, e = (int(x) for x in inst.loops[k])
        past = pos >= e
        pos[past] = s + np.mod(pos[past] - e, e - s)
    y = read_cubic(src, pos, None if inst.loops is None else inst.loops[k])
    env = np.ones(len(y))
    env[n_hold:] = 10.0 ** (RELEASE_DB / 20.0 * np.arange(n_rel) / n_rel)
    return (y * env * velocity_gain(velocity)).astype(np.float32)


def read_cubic(src: np.ndarray, pos: np.ndarray, loop=None) -> np.ndarray:
    """``src`` ``[n]`` read at fractional positions ``pos`` ``[L]`` (samples, >= 0) by 4-point
    Catmull-Rom interpolation: exact at integer positions, continuous slope.

    Neighbours past a loop's end ``loop = (start, end)`` wrap to its start (``pos`` is already
    folded into the loop by the caller); without a loop, neighbours before 0 repeat sample 0 and
    positions at or past ``n - 1`` read silence, as a sampler's voice ends with its sample.
    Returns ``[L]`` float64.
    """
    n = src.shape[-1]
    i = np.floor(pos).astype(np.int64)
    t = pos - i
    idx = i[:, None] + np.arange(-1, 3)[None, :]
    if loop is not None:
        s, e = int(loop[0]), int(loop[1])
        idx = np.where(idx >= e, s + np.mod(idx - e, e - s), idx)
    x = np.asarray(src, np.float64)[np.clip(idx, 0, n - 1)]
    xm, x0, x1, x2 = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
    y = x0 + 0.5 * t * (x1 - xm + t * (2.0 * xm - 5.0 * x0 + 4.0 * x1 - x2 + t * (3.0 * (x0 - x1) + x2 - xm)))
    return np.where(pos <= n - 1, y, 0.0)


def mix_notes(notes: list[MidiNote], instruments: dict, default: Instrument, progress: bool = False) -> np.ndarray:
    """Sum the voices of ``notes`` (``instruments``: program -> Instrument, else ``default``):
    ``[T]`` float32 at the instruments' rate, T covering the last release."""
    from tqdm import tqdm

    sr = default.sample_rate
    voices = []
    for n in tqdm(notes, desc="render", unit="note", disable=not progress):
        voices.append((int(round(n.start * sr)), voice(instruments.get(n.program, default), n.pitch, n.velocity,
                                                       n.end - n.start)))
    out = np.zeros(max(s + len(v) for s, v in voices), dtype=np.float32)
    for s, v in voices:
        out[s:s + len(v)] += v
    return out


def limit_mix(mix: np.ndarray) -> tuple[np.ndarray, float]:
    """``(mix scaled to peak 1 when it exceeds 1, peak before)``: a gain, never a clip."""
    peak = float(np.abs(mix).max()) if mix.size else 0.0
    if peak > 1.0:
        warnings.warn(f"the mix peaked at {peak:.3g} and was scaled down to peak 1.0 (gain only, no clipping)",
                      RenderWarning, stacklevel=2)
        return (mix / peak).astype(np.float32), peak
    return mix, peak


def _instruments(model, notes, attributes, like, like_data, program_attributes, config, seed, scale, progress):
    """``(default Instrument, {program: Instrument})``: one per program given its own description."""
    from darkgan.instrument.export import build_instrument

    default = build_instrument(model, attributes, like, like_data, config, seed, scale, "render", progress)
    used = {n.program for n in notes}
    per = {p: build_instrument(model, a, None, None, config, seed, scale, f"program{p}", progress)
           for p, a in (program_attributes or {}).items() if p in used}
    return default, per


def render_midi(path: str | os.PathLike, model, attributes=None, like=None, like_data=None,
                program_attributes: dict | None = None, config=None, seed: int = 0, scale: str = "user",
                out_of_range: str = "octave", progress: bool = False,
                sustain_pedal: bool = True, sample_rate: int | None = None) -> tuple[np.ndarray, dict]:
    """Render a MIDI file with instruments of ``model`` (a :class:`darkgan.DarkGAN`).

    Args:
        path: a standard MIDI file (type 0 or 1).
        attributes, like, like_data, scale: the description of the instrument every program plays
            (as :meth:`DarkGAN.generate`).
        program_attributes: ``{GM program 0..127: {name: value}}``: programs with an instrument of
            their own (one instrument per program); the others play the default one.
        config: :class:`~darkgan.instrument.config.InstrumentConfig` of the instruments.
        seed: the instruments' seed.
        out_of_range: ``octave`` | ``skip`` | ``error`` (:data:`POLICIES`), for notes outside the
            instrument's keys (trained range stretched by ``config.extend``).
        progress: tqdm bars.
        sustain_pedal: hold notes with each part's sustain pedal (CC 64, :func:`apply_sustain`);
            False: ignore the pedal.
        sample_rate: the output rate in Hz (:data:`OUTPUT_RATES`; default the model's 16000): the
            mix is resampled (soxr, high quality, :func:`darkgan.teacher.resample.resample_np`) before
            the limiter. No content above the model's 8 kHz band limit is made up.

    Returns:
        ``(audio [T] float32 mono at ``sample_rate``, report)``; the report counts notes, transposed,
        skipped, sustained (held by the pedal) and drum notes, the peak before the limiter and each instrument's info.

    Raises:
        DataError: not a MIDI file, no pitched notes. DarkGANError: a note out of range with
        ``error``, bad attributes (as ``generate``), a bad policy, a sample rate outside
        :data:`OUTPUT_RATES`.
    """
    if out_of_range not in POLICIES:
        raise DarkGANError(f"out-of-range policy {out_of_range!r}: choose one of {', '.join(POLICIES)}")
    if sample_rate is not None and not OUTPUT_RATES[0] <= sample_rate <= OUTPUT_RATES[1]:
        raise DarkGANError(f"sample rate {sample_rate} Hz: choose one in {OUTPUT_RATES[0]}..{OUTPUT_RATES[1]} Hz "
                           f"(e.g. 44100 or 48000)")
    notes, drums = read_notes(path, sustain_pedal)
    default, per = _instruments(model, notes, attributes, like, like_data, program_attributes, config, seed, scale,
                                progress)
    notes, counts = place_notes(notes, default.playable, out_of_range, str(path))
    if not notes:
        raise DataError(f"{path}: every note is outside the instrument's keys MIDI {default.playable}")
    for what, k in (("transposed by octaves into", counts["transposed"]), ("skipped: outside", counts["skipped"])):
        if k:
            warnings.warn(f"{path}: {k} notes {what} the instrument's keys MIDI {default.playable[0]}.."
                          f"{default.playable[1]}", RenderWarning, stacklevel=2)
    if drums:
        warnings.warn(f"{path}: {drums} drum-channel notes skipped (the models are pitched)", RenderWarning,
                      stacklevel=2)
    from darkgan.teacher.resample import resample_np

    sr = int(sample_rate or default.sample_rate)
    audio, peak = limit_mix(resample_np(mix_notes(notes, per, default, progress), default.sample_rate, sr))
    report = {"midi": str(path), "notes": len(notes), "drum_notes_skipped": drums, **counts,
              "sustained": sum(n.sustained for n in notes), "peak": peak,
              "seconds": len(audio) / sr, "sample_rate": sr,
              "instruments": {"default": default.info, **{str(p): i.info for p, i in per.items()}}}
    return audio, report


def fluidsynth_render(sf2: str | os.PathLike, notes: list[MidiNote], sr: int = 16000, tail_s: float = 0.5,
                      program: int = 0, bank: int = 0, controls=()) -> np.ndarray:
    """Play ``notes`` through a SoundFont with FluidSynth (the real player; pyfluidsynth), reverb
    and chorus off, gain 1: ``[T]`` float32 mono (left channel) at ``sr``. A reference for
    :func:`mix_notes` and the proof that an exported ``.sf2`` plays (tests, benchmarks).
    ``controls``: ``(time s, controller, value)`` events sent on the same channel (e.g. the
    sustain pedal, 64).

    Raises:
        DataError: FluidSynth cannot load ``sf2``.
    """
    import fluidsynth

    fs = fluidsynth.Synth(gain=1.0, samplerate=float(sr))
    fs.setting("synth.reverb.active", 0)
    fs.setting("synth.chorus.active", 0)
    try:
        sfid = fs.sfload(str(sf2))
        if sfid < 0:
            raise DataError(f"{sf2}: FluidSynth could not load this SoundFont")
        fs.program_select(0, sfid, bank, program)
        events = sorted([(n.start, 1, lambda n=n: fs.noteon(0, n.pitch, n.velocity)) for n in notes]
                        + [(n.end, 0, lambda n=n: fs.noteoff(0, n.pitch)) for n in notes]
                        + [(float(w), 2, lambda c=c, v=v: fs.cc(0, int(c), int(v))) for w, c, v in controls],
                        key=lambda e: (e[0], e[1]))
        chunks, t = [], 0
        for when, _, send in events:
            k = int(round(when * sr)) - t
            if k > 0:
                chunks.append(fs.get_samples(k)[0::2])
                t += k
            send()
        chunks.append(fs.get_samples(int(tail_s * sr))[0::2])
    finally:
        fs.delete()
    return (np.concatenate(chunks).astype(np.float32) / 32768.0)
