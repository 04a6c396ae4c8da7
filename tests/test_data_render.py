"""SoundFont rendering: real notes from real SoundFonts (darkgan.data.gm/synth/quality/render)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from darkgan.data import gm
from darkgan.data.quality import harmonicity, midi_to_hz
from darkgan.data.render import render_dataset, render_note
from darkgan.data.splits import make_splits
from darkgan.errors import DataError

REPO = Path(__file__).resolve().parent.parent


def _f0_autocorr(wave: np.ndarray, sr: int = 16000, fmin: float = 50.0, fmax: float = 1000.0) -> float:
    """Independent pitch estimate: autocorrelation peak of 0.1-0.6 s, parabolic refinement."""
    x = wave[int(0.1 * sr):int(0.6 * sr)].astype(np.float64)
    x -= x.mean()
    n = 1 << int(np.ceil(np.log2(2 * x.size)))
    spec = np.fft.rfft(x, n)
    ac = np.fft.irfft(np.abs(spec) ** 2, n)[: x.size]
    ac /= ac[0]
    lo, hi = int(sr / fmax), int(sr / fmin)
    lag = lo + int(np.argmax(ac[lo:hi]))
    # prefer the shortest lag whose peak is nearly as high (avoid picking 2x the period)
    for cand in range(lo, lag):
        if ac[cand] > 0.9 * ac[lag] and ac[cand] >= ac[cand - 1] and ac[cand] >= ac[cand + 1]:
            lag = cand
            break
    a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    return sr / (lag + shift)


def _cents(f: float, ref: float) -> float:
    return 1200.0 * np.log2(f / ref)


# ----------------------------------------------------------------------------- GM labels


def test_gm_labels_follow_the_program():
    cases = {0: ("keyboard", "acoustic"), 4: ("keyboard", "electronic"), 24: ("guitar", "acoustic"),
             30: ("guitar", "electronic"), 33: ("bass", "electronic"), 38: ("bass", "synthetic"),
             40: ("string", "acoustic"), 56: ("brass", "acoustic"), 66: ("reed", "acoustic"),
             73: ("flute", "acoustic"), 81: ("synth_lead", "synthetic"), 52: ("vocal", "acoustic"),
             12: ("mallet", "acoustic"), 19: ("organ", "acoustic")}
    for program, (family, source) in cases.items():
        lab = gm.gm_labels(program)
        assert (lab["instrument_family_str"], lab["instrument_source_str"]) == (family, source), program
        assert gm.FAMILIES[lab["instrument_family"]] == family
        assert gm.SOURCES[lab["instrument_source"]] == source
    # NSynth ids: bass=0 ... vocal=10; acoustic=0, electronic=1, synthetic=2
    assert gm.FAMILIES.index("bass") == 0 and gm.FAMILIES.index("vocal") == 10
    assert gm.gm_labels(40)["instrument_family"] == 8
    # variation banks keep the family; the OPL-3 FM font is synthetic
    assert gm.gm_labels(25, bank=8)["instrument_family_str"] == "guitar"
    assert gm.gm_labels(0, soundfont="/x/OPL-3_FM_128M.sf2")["instrument_source_str"] == "synthetic"
    # unpitched: drums bank, percussive, effects, orchestra hit
    for program in (113, 115, 116, 117, 118, 119, 55, *range(120, 128)):
        assert gm.gm_labels(program) is None and not gm.is_pitched(program)
    assert gm.gm_labels(0, bank=128) is None
    assert gm.program_name(40) == "Violin" and gm.program_name(127) == "Gunshot"
    with pytest.raises(ValueError):
        gm.program_name(128)


# ----------------------------------------------------------------------------- single notes


def test_note_timing_onset_noteoff_and_length(fluidr3):
    piano = render_note(fluidr3, 0, 60, 100)
    assert piano.dtype == np.float32 and piano.shape == (64000,)
    peak = np.abs(piano).max()
    assert 0.05 < peak < 1.0
    onset = int(np.argmax(np.abs(piano) > 1e-3 * peak))
    assert onset < 32, f"note starts at sample {onset}, expected at 0 (no leading silence)"
    assert np.abs(piano[:64]).max() > 1e-3  # sound within the first 4 ms block
    # a sustained violin: loud before note-off (3 s = 48000), released after it
    violin = render_note(fluidr3, 40, 60, 100)
    before = np.sqrt(np.mean(violin[40000:48000] ** 2))
    after = np.sqrt(np.mean(violin[60000:64000] ** 2))
    assert before > 0.01
    assert after < 0.1 * before, (before, after)


@pytest.mark.parametrize("program,pitch", [(0, 48), (0, 60), (0, 67), (40, 60), (56, 67), (73, 67)])
def test_rendered_pitch_matches_midi(fluidr3, program, pitch):
    wave = render_note(fluidr3, program, pitch, 100)
    f0 = _f0_autocorr(wave)
    assert abs(_cents(f0, midi_to_hz(pitch))) < 40, (program, pitch, f0)


def test_render_is_deterministic_and_history_free(fluidr3, timgm):
    a = render_note(fluidr3, 24, 60, 100)
    render_note(timgm, 0, 48, 127)  # other notes in between (other font, other voices)
    render_note(fluidr3, 56, 67, 50)
    b = render_note(fluidr3, 24, 60, 100)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render_note(fluidr3, 24, 60, 101))  # velocity matters
    # int16 grid: exactly representable as q / 32768
    q = a * 32768.0
    assert np.array_equal(q, np.round(q))


def test_harmonicity_separates_drums_and_effects_from_pitched_notes(fluidr3):
    pitched = [(0, 0, 48), (0, 0, 67), (0, 40, 60), (0, 56, 60), (0, 73, 67)]
    unpitched = [(128, 0, 38), (128, 0, 42), (128, 0, 60), (0, 127, 60), (0, 122, 60), (0, 119, 60)]
    for bank, program, pitch in pitched:
        h, f0 = harmonicity(render_note(fluidr3, program, pitch, 100, bank=bank), pitch)
        assert h > 0.9, (bank, program, pitch, h)
        assert abs(_cents(f0, midi_to_hz(pitch))) <= 50
    for bank, program, pitch in unpitched:
        h, _ = harmonicity(render_note(fluidr3, program, pitch, 100, bank=bank), pitch)
        assert h < 0.5, (bank, program, pitch, h)


def test_render_note_bad_inputs(tmp_path, fluidr3):
    with pytest.raises(DataError, match="missing.sf2"):
        render_note(tmp_path / "missing.sf2", 0, 60, 100)
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00sfbk" + os.urandom(2000))
    with pytest.raises(DataError, match="junk.sf2"):
        render_note(junk, 0, 60, 100)
    with pytest.raises(DataError, match="bank 5, program 0"):
        render_note(fluidr3, 0, 60, 100, bank=5)  # FluidR3 has no bank 5
    with pytest.raises(ValueError):
        render_note(fluidr3, 0, 128, 100)


# ----------------------------------------------------------------------------- datasets


def test_dataset_layout_labels_and_audio(rendered_dataset, fluidr3, timgm):
    ex = json.loads((rendered_dataset / "examples.json").read_text())
    assert len(ex) == 30
    insts = {r["instrument_str"] for r in ex.values()}
    assert len(insts) == 10
    fonts = {"FluidR3_GM.sf2": fluidr3, "TimGM6mb.sf2": timgm}
    for note_str, r in ex.items():
        assert r["note_str"] == note_str == f"{r['instrument_str']}-{r['pitch']:03d}-{r['velocity']:03d}"
        lab = gm.gm_labels(r["program"], r["bank"], r["soundfont"])
        assert r["instrument_family"] == lab["instrument_family"]
        assert r["instrument_family_str"] == lab["instrument_family_str"]
        assert r["instrument_source_str"] == lab["instrument_source_str"] == "acoustic"
        assert r["instrument_str"].startswith(f"{r['instrument_family_str']}_acoustic_")
        assert r["sample_rate"] == 16000 and r["qualities"] == [0] * 10 and r["qualities_str"] == []
        assert r["soundfont"] in fonts and r["bank"] == 0 and r["program"] in (0, 24, 40, 56, 73)
    assert sorted(r["note"] for r in ex.values()) == list(range(30))
    # the WAVs are exactly what render_note gives
    for note_str in list(ex)[::7]:
        r = ex[note_str]
        info = sf.info(str(rendered_dataset / "audio" / f"{note_str}.wav"))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 64000, "PCM_16")
        wav, _ = sf.read(str(rendered_dataset / "audio" / f"{note_str}.wav"), dtype="float32")
        ref = render_note(fonts[r["soundfont"]], r["program"], r["pitch"], r["velocity"], bank=r["bank"])
        assert np.array_equal(wav, ref), note_str
    report = json.loads((rendered_dataset / "render_report.json").read_text())
    assert report["counts"]["notes"] == 30 and report["counts"]["instruments"] == 10
    assert report["counts"]["max_peak"] < 1.0


def test_dataset_render_is_byte_identical_across_runs_and_processes(tmp_path, rendered_dataset, fluidr3, timgm):
    # other preset set, other order, two worker processes: the shared notes must be identical
    out = tmp_path / "again"
    render_dataset(out, soundfonts=[timgm, fluidr3], programs=[0, 40, 56], banks=[0], pitches=[60, 67],
                   velocities=[100], jobs=2, progress=False, verbose=False)
    mine = json.loads((out / "examples.json").read_text())
    ref = json.loads((rendered_dataset / "examples.json").read_text())
    key = lambda r: (r["soundfont"], r["bank"], r["program"], r["pitch"], r["velocity"])  # noqa: E731
    ref_by_key = {key(r): n for n, r in ref.items()}
    compared = 0
    for n, r in mine.items():
        other = ref_by_key[key(r)]
        a = (out / "audio" / f"{n}.wav").read_bytes()
        b = (rendered_dataset / "audio" / f"{other}.wav").read_bytes()
        assert a == b, (n, other)
        compared += 1
    assert compared == 12


def test_splits_have_no_instrument_leakage_and_are_reproducible(rendered_dataset):
    ex = json.loads((rendered_dataset / "examples.json").read_text())
    sp = json.loads((rendered_dataset / "splits.json").read_text())
    assert sp["scheme"] == "instrument" and sp["seed"] == 0
    assert set(sp["splits"]) == set(ex)
    by_inst: dict[str, set] = {}
    for n, r in ex.items():
        by_inst.setdefault(r["instrument_str"], set()).add(sp["splits"][n])
    assert all(len(s) == 1 for s in by_inst.values()), by_inst
    per_split = [s for v in by_inst.values() for s in v]
    assert sorted((s, per_split.count(s)) for s in set(per_split)) == [("test", 1), ("train", 8), ("valid", 1)]
    assert make_splits(ex, "instrument", 0) == sp
    # the paper's random 90/10 note split
    rnd = make_splits(ex, "random", 3)
    values = list(rnd["splits"].values())
    assert values.count("train") == 27 and values.count("valid") == 3
    assert make_splits(ex, "random", 3) == rnd


def test_probe_drops_inharmonic_preset_and_duplicates(tmp_path, fluidr3, timgm):
    # FluidR3 again under another file name: every preset of it is an exact duplicate
    copy = tmp_path / "FluidR3_copy.sf2"
    copy.symlink_to(fluidr3)
    out = tmp_path / "ds"
    report = render_dataset(out, soundfonts=[fluidr3, copy, timgm], programs=[0, 40, 112], banks=[0],
                            pitches=[48, 60, 67], velocities=[100], jobs=1, progress=False, verbose=False)
    kept = {(k["soundfont"], k["program"]) for k in report["kept"]}
    dropped = {(d["soundfont"], d["program"]): d for d in report["dropped"]}
    # TimGM's "Tinker Bell" (GM 112, a mallet) sounds at no harmonic series of the key: dropped
    assert dropped[("TimGM6mb.sf2", 112)]["reason"] == "inharmonic"
    assert ("TimGM6mb.sf2", 0) in kept and ("TimGM6mb.sf2", 40) in kept  # similar, not duplicates
    for program in (0, 40):
        assert ("FluidR3_GM.sf2", program) in kept
        d = dropped[("FluidR3_copy.sf2", program)]
        assert d["reason"] == "duplicate" and "FluidR3_GM.sf2" in d["detail"]
    ex = json.loads((out / "examples.json").read_text())
    assert {r["soundfont"] for r in ex.values()} == {"FluidR3_GM.sf2", "TimGM6mb.sf2"}


def test_resume_keeps_valid_wavs_and_rerenders_missing_or_corrupt(tmp_path, fluidr3):
    out = tmp_path / "ds"
    kw = dict(soundfonts=[fluidr3], programs=[0, 24], banks=[0], pitches=[55, 62], velocities=[80, 120],
              jobs=1, progress=False, verbose=False)
    render_dataset(out, **kw)
    wavs = sorted((out / "audio").glob("*.wav"))
    original = {p.name: p.read_bytes() for p in wavs}
    # complete dataset: refused without force
    with pytest.raises(DataError, match="already holds a rendered dataset"):
        render_dataset(out, **kw)
    report = render_dataset(out, force=True, **kw)  # force: everything rendered again
    assert report["counts"]["notes_written_now"] == 8
    assert {p.name: p.read_bytes() for p in (out / "audio").glob("*.wav")} == original
    # an interrupted render leaves the plan and some WAVs but no examples.json
    (out / "examples.json").unlink()
    wavs[0].unlink()
    wavs[1].write_bytes(original[wavs[1].name][:5000])  # truncated
    report = render_dataset(out, **kw)
    assert report["counts"]["notes_already_present"] == 6
    assert report["counts"]["notes_written_now"] == 2
    assert {p.name: p.read_bytes() for p in (out / "audio").glob("*.wav")} == original
    # other settings on an interrupted render: refused, nothing touched
    (out / "examples.json").unlink()
    with pytest.raises(DataError, match="other settings"):
        render_dataset(out, **{**kw, "velocities": [81]})
    assert {p.name: p.read_bytes() for p in (out / "audio").glob("*.wav")} == original


# ----------------------------------------------------------------------------- CLI


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "darkgan", "data", *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_errors_are_one_line_with_exit_2(tmp_path, rendered_dataset):
    res = _cli("render", "--out", rendered_dataset, "--soundfont", tmp_path / "nope.sf2")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "nope.sf2" in res.stderr and "darkgan: error:" in res.stderr
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont at all")
    res = _cli("render", "--out", tmp_path / "x", "--soundfont", bad)
    assert res.returncode == 2 and "bad.sf2" in res.stderr and res.stderr.strip().count("\n") == 0
    res = _cli("render", "--out", tmp_path / "x", "--pitches", "44-200")
    assert res.returncode == 2 and "--pitches" in res.stderr
    res = _cli("info", tmp_path / "missing")
    assert res.returncode == 2 and "missing" in res.stderr and res.stderr.strip().count("\n") == 0


def test_cli_render_refuses_existing_dataset_and_info_counts(tmp_path, rendered_dataset, timgm):
    before = (rendered_dataset / "examples.json").read_bytes()
    res = _cli("render", "--out", rendered_dataset, "--soundfont", timgm, "--programs", "0",
               "--pitches", "60", "--velocities", "100")
    assert res.returncode == 2 and "already holds a rendered dataset" in res.stderr
    assert (rendered_dataset / "examples.json").read_bytes() == before  # untouched
    res = _cli("info", rendered_dataset)
    assert res.returncode == 0, res.stderr
    assert "30 notes, 10 instruments" in res.stdout
    assert "train 24 notes / 8 instruments" in res.stdout
    # a real render through the CLI
    out = tmp_path / "cli"
    res = _cli("render", "--out", out, "--soundfont", timgm, "--programs", "0,73", "--banks", "0",
               "--pitches", "60-61", "--velocities", "64", "--split", "random", "--jobs", "1", "--no-progress")
    assert res.returncode == 0, res.stderr
    ex = json.loads((out / "examples.json").read_text())
    assert sorted((r["program"], r["pitch"]) for r in ex.values()) == [(0, 60), (0, 61), (73, 60), (73, 61)]
    assert json.loads((out / "splits.json").read_text())["scheme"] == "random"
