"""General MIDI programs -> NSynth instrument labels.

NSynth (Engel et al., 2017) labels every note with an ``instrument_family`` (11 classes, ids in
the order of :data:`FAMILIES`) and an ``instrument_source`` (:data:`SOURCES`: acoustic = 0,
electronic = 1, synthetic = 2). A General MIDI SoundFont preset is identified by (bank, program);
the program number (0-127) fixes which GM instrument it imitates, the variation banks (1-127) hold
alternative sounds of the same GM instrument, bank 128 holds drum kits.

The mapping below is our judgement of the closest NSynth class for each GM program:

* GM piano and chromatic keyboard instruments -> ``keyboard``; tuned percussion (glockenspiel,
  marimba, tubular bells, timpani, kalimba, tinkle bell, steel drums) -> ``mallet``;
* organs and accordions -> ``organ``; harmonica, saxophones, double reeds, clarinet, bagpipe,
  shanai -> ``reed``; pipes (piccolo ... ocarina) -> ``flute``;
* guitars and plucked folk instruments (sitar, banjo, shamisen, koto) -> ``guitar``;
  bowed strings, harp, string ensembles, fiddle -> ``string``;
* basses -> ``bass``; brass and brass sections -> ``brass``; choir/voice -> ``vocal``;
* synth leads, pads and synth effects 96-103 -> ``synth_lead`` (NSynth has no "pad" class).

Sources: samples of acoustic instruments are ``acoustic``; electric pianos/organs/guitars/basses
``electronic``; synthesizer programs ``synthetic``. A whole SoundFont can be declared synthetic
(:data:`SYNTHETIC_FONTS`: the OPL-3 FM font imitates every GM instrument with FM synthesis).

Unpitched programs are excluded (:func:`is_pitched` is False): percussive 113 (Agogo) and 115-119
(Woodblock, Taiko, Melodic Tom, Synth Drum, Reverse Cymbal), the sound effects 120-127, Orchestra
Hit 55 (a chord sample, not a note) and every preset of the drum bank 128.
"""
from __future__ import annotations

import operator
from pathlib import Path

#: NSynth instrument families; the index is the NSynth ``instrument_family`` id.
FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string",
            "synth_lead", "vocal")
#: NSynth instrument sources; the index is the NSynth ``instrument_source`` id.
SOURCES = ("acoustic", "electronic", "synthetic")

#: The General MIDI level 1 program names, index = program number 0-127.
GM_PROGRAM_NAMES = (
    # 0-7 piano
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    # 8-15 chromatic percussion
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone",
    "Tubular Bells", "Dulcimer",
    # 16-23 organ
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion",
    "Harmonica", "Tango Accordion",
    # 24-31 guitar
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar",
    "Guitar Harmonics",
    # 32-39 bass
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    # 40-47 strings
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings",
    "Orchestral Harp", "Timpani",
    # 48-55 ensemble
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs",
    "Voice Oohs", "Synth Voice", "Orchestra Hit",
    # 56-63 brass
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section",
    "Synth Brass 1", "Synth Brass 2",
    # 64-71 reed
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon",
    "Clarinet",
    # 72-79 pipe
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    # 80-87 synth lead
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    # 88-95 synth pad
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)",
    "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    # 96-103 synth effects
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    # 104-111 ethnic
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    # 112-119 percussive
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom",
    "Synth Drum", "Reverse Cymbal",
    # 120-127 sound effects
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring",
    "Helicopter", "Applause", "Gunshot",
)

_A, _E, _S = 0, 1, 2
#: program -> (family name, source id); programs absent here are unpitched.
_PROGRAM_LABELS: dict[int, tuple[str, int]] = {}


def _put(programs, family: str, source: int) -> None:
    for p in programs:
        _PROGRAM_LABELS[p] = (family, source)


_put((0, 1, 3, 6), "keyboard", _A)             # grand, bright, honky-tonk, harpsichord
_put((2, 4, 5, 7), "keyboard", _E)             # electric grand, electric pianos, clavinet
_put((8,), "keyboard", _A)                     # celesta (a keyboard instrument)
_put((9, 10, 11, 12, 13, 14, 15), "mallet", _A)  # glockenspiel ... tubular bells, dulcimer
_put((16, 17, 18), "organ", _E)                # drawbar, percussive, rock organ
_put((19, 20, 21, 23), "organ", _A)            # church, reed organ, accordions
_put((22,), "reed", _A)                        # harmonica (free reed)
_put((24, 25), "guitar", _A)
_put((26, 27, 28, 29, 30, 31), "guitar", _E)
_put((32,), "bass", _A)
_put((33, 34, 35, 36, 37), "bass", _E)
_put((38, 39), "bass", _S)
_put((40, 41, 42, 43, 44, 45, 46, 48, 49), "string", _A)
_put((47,), "mallet", _A)                      # timpani: pitched membrane, struck
_put((50, 51), "string", _S)
_put((52, 53), "vocal", _A)
_put((54,), "vocal", _S)
_put((56, 57, 58, 59, 60, 61), "brass", _A)
_put((62, 63), "brass", _S)
_put(range(64, 72), "reed", _A)
_put(range(72, 80), "flute", _A)
_put(range(80, 104), "synth_lead", _S)         # leads, pads, synth effects
_put((104, 105, 106, 107), "guitar", _A)       # sitar, banjo, shamisen, koto
_put((108,), "mallet", _A)                     # kalimba
_put((109, 111), "reed", _A)                   # bagpipe, shanai
_put((110,), "string", _A)                     # fiddle
_put((112, 114), "mallet", _A)                 # tinkle bell, steel drums

#: Drum-kit bank of General MIDI SoundFonts (never pitched).
DRUM_BANK = 128

#: SoundFont file names whose every preset is a synthesizer imitation (source "synthetic").
SYNTHETIC_FONTS = frozenset({"OPL-3_FM_128M.sf2"})


def program_name(program: int) -> str:
    """General MIDI name of ``program`` (0-127), e.g. ``program_name(40) == "Violin"``.

    Raises:
        ValueError: ``program`` outside 0-127.
    """
    _check_program(program)
    return GM_PROGRAM_NAMES[int(program)]


def is_pitched(program: int, bank: int = 0) -> bool:
    """Whether a GM preset plays pitched notes that map to an NSynth family.

    False for the drum bank 128, the unpitched percussive programs (113, 115-119), the sound
    effects 120-127 and Orchestra Hit 55. This is the label-level filter; the renderer also
    measures harmonicity of real renders (:func:`darkgan.data.render.harmonicity`).
    """
    _check_program(program)
    return bank != DRUM_BANK and int(program) in _PROGRAM_LABELS


def gm_labels(program: int, bank: int = 0, soundfont: str | Path | None = None) -> dict | None:
    """NSynth labels of a GM preset, or ``None`` when it is unpitched (:func:`is_pitched`).

    Args:
        program: GM program 0-127.
        bank: SoundFont bank (0-127 melodic; 128 drums -> None). Variation banks keep the
            program's GM instrument.
        soundfont: SoundFont path or file name; fonts in :data:`SYNTHETIC_FONTS` force the
            source to ``synthetic``.

    Returns:
        ``{"instrument_family": int, "instrument_family_str": str, "instrument_source": int,
        "instrument_source_str": str, "gm_name": str}``.

    Raises:
        ValueError: ``program`` outside 0-127.
    """
    if not is_pitched(program, bank):
        return None
    program = int(program)
    family, source = _PROGRAM_LABELS[program]
    if soundfont is not None and Path(soundfont).name in SYNTHETIC_FONTS:
        source = _S
    return {
        "instrument_family": FAMILIES.index(family),
        "instrument_family_str": family,
        "instrument_source": source,
        "instrument_source_str": SOURCES[source],
        "gm_name": GM_PROGRAM_NAMES[program],
    }


def _check_program(program: int) -> None:
    try:
        ok = 0 <= operator.index(program) <= 127
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"GM program {program!r}: expected an integer 0-127")
