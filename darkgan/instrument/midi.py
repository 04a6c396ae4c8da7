"""Play a MIDI file with DarkGAN instruments: polyphonic, velocity-sensitive, note lengths kept.

MIDI is read with pretty_midi (tempo maps, note on/off pairing); every note is a *voice* of the
sampler model of SoundFont 2 / SFZ players, applied to an :class:`Instrument`:

- the sample of the zone covering the key, re-pitched by ``2 ** ((key - root) / 12)`` (linear
  interpolation) when the key is a stretched edge key;
- the velocity layer of the note's velocity, at gain ``(v / 127) ** 2`` (:func:`velocity_gain`);
- held past the sample's loop end, the loop ``[start, end)`` repeats until note-off (a note
  shorter than the sample is cut at note-off); one-shot instruments end with the sample;
- after note-off the release envelope: linear in dB down to -100 dB over ``release_s`` (SF2
  ``releaseVolEnv`` semantics).

Voices are summed; a mix whose peak exceeds 1 is scaled down to peak 1 (a gain, never a clip;
reported). Notes outside the instrument's keys follow ``out_of_range`` (:data:`POLICIES`).
Drum-channel notes (channel 10) are skipped with a warning: the models are pitched.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
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


class RenderWarning(UserWarning):
    """A MIDI rendering that went on with a change (transposed/skipped notes, drums, a gain)."""


@dataclass
class MidiNote:
    """One note: ``start``/``end`` in seconds, MIDI ``pitch`` and ``velocity``, GM ``program``."""

    start: float
    end: float
    pitch: int
    velocity: int
    program: int


def read_notes(path: str | os.PathLike) -> tuple[list[MidiNote], int]:
    """The pitched notes of a MIDI file, sorted by start, and the number of drum notes left out.

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
        notes += [MidiNote(float(n.start), float(n.end), int(n.pitch), int(n.velocity), int(ins.program))
                  for n in ins.notes if n.end > n.start and n.velocity > 0]
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
            kept.append(MidiNote(n.start, n.end, p, n.velocity, n.program))
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
    y = np.interp(pos, np.arange(n), src, right=0.0)
    env = np.ones(len(y))
    env[n_hold:] = 10.0 ** (RELEASE_DB / 20.0 * np.arange(n_rel) / n_rel)
    return (y * env * velocity_gain(velocity)).astype(np.float32)


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
                out_of_range: str = "octave", progress: bool = False) -> tuple[np.ndarray, dict]:
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

    Returns:
        ``(audio [T] float32 mono at 16 kHz, report)``; the report counts notes, transposed,
        skipped and drum notes, the peak before the limiter and each instrument's info.

    Raises:
        DataError: not a MIDI file, no pitched notes. DarkGANError: a note out of range with
        ``error``, bad attributes (as ``generate``), a bad policy.
    """
    if out_of_range not in POLICIES:
        raise DarkGANError(f"out-of-range policy {out_of_range!r}: choose one of {', '.join(POLICIES)}")
    notes, drums = read_notes(path)
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
    audio, peak = limit_mix(mix_notes(notes, per, default, progress))
    report = {"midi": str(path), "notes": len(notes), "drum_notes_skipped": drums, **counts, "peak": peak,
              "seconds": len(audio) / default.sample_rate, "sample_rate": default.sample_rate,
              "instruments": {"default": default.info, **{str(p): i.info for p, i in per.items()}}}
    return audio, report


def fluidsynth_render(sf2: str | os.PathLike, notes: list[MidiNote], sr: int = 16000, tail_s: float = 0.5,
                      program: int = 0, bank: int = 0) -> np.ndarray:
    """Play ``notes`` through a SoundFont with FluidSynth (the real player; pyfluidsynth), reverb
    and chorus off, gain 1: ``[T]`` float32 mono (left channel) at ``sr``. A reference for
    :func:`mix_notes` and the proof that an exported ``.sf2`` plays (tests, benchmarks).

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
        events = sorted([(n.start, 1, n) for n in notes] + [(n.end, 0, n) for n in notes], key=lambda e: (e[0], e[1]))
        chunks, t = [], 0
        for when, on, n in events:
            k = int(round(when * sr)) - t
            if k > 0:
                chunks.append(fs.get_samples(k)[0::2])
                t += k
            fs.noteon(0, n.pitch, n.velocity) if on else fs.noteoff(0, n.pitch)
        chunks.append(fs.get_samples(int(tail_s * sr))[0::2])
    finally:
        fs.delete()
    return (np.concatenate(chunks).astype(np.float32) / 32768.0)
