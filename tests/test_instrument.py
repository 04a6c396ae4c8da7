"""Instruments and MIDI rendering (issue 21), on the shipped student and real players.

The exported SoundFont is played by FluidSynth (the real player, pyfluidsynth) and the notes it
plays are checked for pitch (pYIN, the project's tracker) and timing; the SFZ is parsed with
sfzlint (the SFZ reference grammar and opcode spec: no Debian/PyPI SFZ *player* installs here,
sfizz and liquidsfz are not packaged for this Debian release nor on PyPI); the SF2 is also read
back with sf2utils (an independent parser).
"""
from __future__ import annotations

import numpy as np
import pytest

SR = 16000


@pytest.fixture(scope="module")
def student():
    import darkgan

    return darkgan.DarkGAN.load("student")


@pytest.fixture(scope="module")
def exported(student, tmp_path_factory):
    """``(instrument, folder)``: a 27-key x 2-layer brass instrument (4 candidates compared as
    played), both formats."""
    from darkgan.instrument.config import get_config
    from darkgan.instrument.export import build_instrument
    from darkgan.instrument.save import save_instrument

    cfg = get_config("default", ["candidates=4", "velocities=2", "key_spacing=1", "select=played"])
    inst = build_instrument(student, {"Brass instrument": 0.9}, config=cfg, seed=0, name="brass")
    out = tmp_path_factory.mktemp("inst") / "brass"
    save_instrument(inst, out, "both", cfg)
    return inst, out


def _tuned_keys(inst, n=3):
    """Up to ``n`` generated keys the export screened stable and retuned (residual 0)."""
    res = np.asarray(inst.info["yin_cents_after_retune"], dtype=float)
    keys = [int(p) for p, r in zip(inst.pitches, res) if r == 0]
    return keys[::max(1, len(keys) // n)][:n]


def _cents(segments, midi):
    from darkgan.generation.pitch import estimate_f0

    f0 = estimate_f0(np.stack(segments), fmax_midi=88)
    return 1200 * np.log2(f0 / (440.0 * 2 ** ((np.asarray(midi) - 69) / 12)))


def _onset(x, start_s, thresh_db=-30):
    """First 5 ms frame from 50 ms before ``start_s`` whose RMS is within ``thresh_db`` of the
    segment's peak frame: seconds."""
    a, hop = int((start_s - 0.05) * SR), 80
    seg = x[a:a + int(0.4 * SR)]
    rms = np.sqrt((seg[:len(seg) // hop * hop].reshape(-1, hop) ** 2).mean(1)) + 1e-12
    db = 20 * np.log10(rms / rms.max())
    return (a + int(np.argmax(db > thresh_db)) * hop) / SR


def _rms_db(x, a_s, b_s):
    seg = x[int(a_s * SR):int(b_s * SR)]
    return 20 * np.log10(np.sqrt((seg ** 2).mean()) + 1e-12)


def test_export_is_consistent_and_in_tune(exported, student):
    inst, _ = exported
    n = len(inst.pitches)
    assert inst.samples.shape == (2, n, 16000) and np.isfinite(inst.samples).all()
    assert n + len(inst.info["dropped_roots"]) == 27 and n >= 20  # unpitched roots are left out
    assert np.abs(inst.samples).max() <= 1.0 and inst.playable == (32, 82)
    info = inst.info
    # candidates compared as played: every key re-pitched from its root
    assert info["select"] == "played" and len(info["played_consistency"]) == 4
    sel = np.asarray(info["selection_score"])
    assert info["chosen"] == int(np.argmin(sel))
    at_selection = info["dropped_at_selection"][info["chosen"]]
    assert sel[info["chosen"]] == pytest.approx(info["played_consistency"][info["chosen"]] + 0.5 * at_selection / 27)
    # roots pYIN rejects after the selection are dropped too (never fewer than at the selection)
    assert len(info["dropped_roots"]) >= at_selection
    assert len(info["dropped_roots"]) == at_selection or info["pyin_rejected_roots"]
    from darkgan.instrument.export import played_consistency

    assert played_consistency(student.teacher, [inst], 44, 70)[0] == pytest.approx(
        info["played_consistency_final"], abs=1e-6)  # after pYIN's check and repair
    assert np.all(np.asarray(info["yin_cents_after_retune"], dtype=float) == 0)  # every kept key retuned
    # the softer layer is darker: a far smaller share of its energy above 8 harmonics of f0
    # (brightness layers; energy, not summed magnitudes, which the noise floor's many bins dominate)
    power = np.abs(np.fft.rfft(inst.samples[:, 10], axis=-1)) ** 2
    f = np.fft.rfftfreq(16000, 1 / SR)
    hi = power[:, f > 8 * inst.info["f0_hz"][10]].sum(1) / power.sum(1)
    assert hi[0] < 0.2 * hi[1], hi


def test_sfz_follows_the_reference_grammar(exported):
    from sfzlint.parser import SFZValidatorConfig, validate

    inst, out = exported
    path = out / "brass.sfz"
    problems = []
    sfz = validate(path, err_cb=lambda sev, msg, tok, fp: problems.append((sev, msg)),
                   config=SFZValidatorConfig(file_path=path, spec_versions={"v1"}))
    assert problems == []
    regions = sfz.regions
    n = len(inst.pitches)
    assert len(regions) == 2 * n
    r = {k: str(v) for k, v in regions[2 * n - 1].items()}  # loudest layer, top key
    assert (r["lokey"], r["hikey"], r["pitch_keycenter"]) == (str(inst.key_ranges[-1][0]), "82", str(inst.pitches[-1]))
    assert int(r["loop_end"]) == int(inst.loops[-1][1]) - 1 and int(r["loop_start"]) == int(inst.loops[-1][0])
    assert all((out / str(reg["sample"])).is_file() for reg in regions)
    import soundfile as sf

    wav, sr = sf.read(out / str(regions[0]["sample"]))
    assert sr == SR and np.abs(wav - inst.samples[0, 0]).max() < 1e-4


def test_sf2_reads_back(exported):
    from sf2utils.sf2parse import Sf2File

    inst, out = exported
    with open(out / "brass.sf2", "rb") as f:
        sf2 = Sf2File(f)
        n = len(inst.pitches)
        assert len(sf2.samples) == 2 * n + 1  # + the EOS record
        bag = sf2.instruments[0].bags[n + 5]  # loudest layer, 6th key
        assert list(bag.key_range) == list(inst.key_ranges[5]) and list(bag.velocity_range) == [65, 127]
        s = bag.sample
        assert (s.original_pitch, s.sample_rate, s.end - s.start) == (inst.pitches[5], SR, 16000)
        assert (s.start_loop, s.end_loop) == tuple(int(v) for v in inst.loops[5])  # relative to the sample
        s.sm24_offset = None
        pcm = np.frombuffer(s.raw_sample_data, dtype="<i2") / 32767.0
        assert np.abs(pcm - inst.samples[1, 5]).max() < 1e-4


@pytest.fixture(scope="module")
def played(exported):
    """The same notes played by FluidSynth from the .sf2 and by our renderer."""
    from darkgan.instrument.midi import MidiNote, fluidsynth_render, mix_notes

    inst, out = exported
    keys = _tuned_keys(inst)
    top = inst.pitches[-1] + 5 if inst.info["yin_cents_after_retune"][-1] == 0 else None
    notes = [MidiNote(0.2 + 0.8 * i, 0.8 + 0.8 * i, k, 100, 0) for i, k in enumerate(keys)]
    if top is not None:  # a stretched key: the top sample re-pitched by the player
        notes.append(MidiNote(0.2 + 0.8 * len(notes), 0.8 + 0.8 * len(notes), int(top), 100, 0))
    held = MidiNote(0.2 + 0.8 * len(notes), 3.0 + 0.8 * len(notes), keys[0], 100, 0)  # 2.8 s > 1 s notes
    notes.append(held)
    return notes, fluidsynth_render(out / "brass.sf2", notes, SR), mix_notes(notes, {}, inst)


def test_fluidsynth_plays_the_sf2_in_time_and_in_tune(played):
    notes, fs, ours = played
    for x in (fs, ours):
        assert max(abs(_onset(x, n.start) - n.start) for n in notes) <= 0.02
        segs = [x[int((n.start + 0.1) * SR):int((n.start + 0.6) * SR)] for n in notes[:-1]]
        cents = _cents(segs, [n.pitch for n in notes[:-1]])
        assert np.all(np.abs(cents) <= 50), cents


def test_held_notes_sustain_past_the_sample_and_release(played):
    notes, fs, ours = played
    h = notes[-1]
    for x in (fs, ours):
        body = _rms_db(x, h.start + 0.6, h.start + 0.9)
        assert _rms_db(x, h.start + 1.5, h.start + 2.7) > body - 10  # the loop holds the level
        assert _rms_db(x, h.end + 0.2, h.end + 0.28) < body - 40  # released (-100 dB at 0.3 s)
        late = _cents([x[int((h.start + 1.5) * SR):int((h.start + 2.5) * SR)]], [h.pitch])
        assert abs(late[0]) <= 50, late  # still in tune inside the loop


def test_loop_on_a_real_note_is_seamless(rendered_dataset):
    """A real FluidR3 flute note: the chosen loop with its baked crossfade has no jump at the wrap;
    a loop that ignores the waveform's phase has one."""
    import soundfile as sf

    from darkgan.instrument.loops import crossfade_loop, find_loop

    wav = sorted((rendered_dataset / "audio").glob("flute_*-060-100.wav"))[0]
    x = sf.read(wav, dtype="float32")[0][:16000]
    f0 = 440 * 2 ** ((60 - 69) / 12)
    s, e = find_loop(x, f0)
    assert 0.15 * SR <= e - s <= 0.4 * SR and e <= 0.9 * SR
    y = crossfade_loop(x, s, e, 800)
    step = np.abs(np.diff(y[s:e])).max()
    assert abs(y[s] - y[e - 1]) <= 1.5 * step
    bad_s = s + int(SR / f0 / 2)  # half a period off
    assert abs(x[bad_s] - x[e - 1]) > abs(y[s] - y[e - 1])


def test_repitched_voice_matches_band_limited_resampling(rendered_dataset):
    """A real FluidR3 flute note re-pitched by +2 semitones, as a voice reads it (cubic), is close to
    soxr's band-limited resampling of the same note; linear interpolation (the old reader) is
    several times further; integer positions read the sample exactly; a loop wraps its neighbours."""
    import soundfile as sf
    import soxr

    from darkgan.instrument.midi import read_cubic

    wav = sorted((rendered_dataset / "audio").glob("flute_*-060-100.wav"))[0]
    x = sf.read(wav, dtype="float32")[0][:16000].astype(np.float64)
    f = 2.0 ** (2 / 12)
    ref = soxr.resample(x, SR * f, SR, quality="VHQ")
    pos = np.arange(len(ref)) * f
    keep = slice(200, len(ref) - 200)
    err = lambda y: np.sqrt(np.mean((y[keep] - ref[keep]) ** 2)) / np.sqrt(np.mean(ref[keep] ** 2))  # noqa: E731
    cubic, linear = err(read_cubic(x, pos)), err(np.interp(pos, np.arange(len(x)), x))
    assert cubic < 0.5 * linear and cubic < 0.02, (cubic, linear)
    assert np.allclose(read_cubic(x, np.arange(100.0)), x[:100])
    ramp = np.arange(10.0)
    assert read_cubic(ramp, np.array([7.0, 8.0]), loop=(4, 8)).tolist() == [7.0, 4.0]


def _midi(path, notes, drums=False, pedal=()):
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    ins = pretty_midi.Instrument(program=0, is_drum=drums)
    ins.notes += [pretty_midi.Note(v, p, a, b) for p, v, a, b in notes]
    ins.control_changes += [pretty_midi.ControlChange(64, v, t) for t, v in pedal]
    pm.instruments.append(ins)
    pm.write(str(path))
    return path


def test_midi_bad_input_and_range_policy(tmp_path):
    from darkgan.errors import DarkGANError, DataError
    from darkgan.instrument.midi import place_notes, read_notes

    (tmp_path / "not.mid").write_bytes(b"RIFF....WAVEfmt not a midi file")
    with pytest.raises(DataError, match="not a readable MIDI file"):
        read_notes(tmp_path / "not.mid")
    with pytest.raises(DataError, match="no notes"):
        read_notes(_midi(tmp_path / "empty.mid", []))
    with pytest.raises(DataError, match="only 1 drum notes"):
        read_notes(_midi(tmp_path / "drums.mid", [(36, 100, 0, 0.5)], drums=True))
    notes, _ = read_notes(_midi(tmp_path / "wide.mid", [(20, 90, 0, 0.5), (60, 90, 0.5, 1), (100, 90, 1, 2)]))
    kept, c = place_notes(notes, (32, 82), "octave")
    assert [n.pitch for n in kept] == [32, 60, 76] and c == {"transposed": 2, "skipped": 0}
    kept, c = place_notes(notes, (32, 82), "skip")
    assert [n.pitch for n in kept] == [60] and c["skipped"] == 2
    with pytest.raises(DarkGANError, match="note 20 at 0.00 s is outside"):
        place_notes(notes, (32, 82), "error")


def test_sustain_pedal_holds_notes(tmp_path):
    """CC 64: notes released under the pedal end when it comes up, or when the key is struck
    again; notes after it, and every note with the pedal ignored, end as written."""
    from darkgan.instrument.midi import read_notes

    notes = [(60, 90, 0.0, 0.2), (64, 90, 0.3, 0.5), (64, 90, 1.0, 1.2), (67, 90, 1.6, 1.8),
             (72, 90, 2.0, 2.1), (50, 90, 2.0, 3.0)]
    song = _midi(tmp_path / "pedal.mid", notes, pedal=[(0.1, 127), (1.5, 0), (2.0, 100)])  # never up again
    held, _ = read_notes(song)
    ends = {(n.pitch, round(n.start, 2)): (round(n.end, 3), n.sustained) for n in held}
    assert ends == {(60, 0.0): (1.5, True), (64, 0.3): (1.0, True), (64, 1.0): (1.5, True),
                    (67, 1.6): (1.8, False), (72, 2.0): (3.0, True), (50, 2.0): (3.0, False)}
    dry, _ = read_notes(song, sustain_pedal=False)
    assert sorted((n.pitch, round(n.start, 2), round(n.end, 2)) for n in dry) == sorted(
        (p, a, b) for p, _, a, b in notes) and not any(n.sustained for n in dry)


def test_pedal_sounds_as_fluidsynth_plays_it(played, exported):
    """A 0.3 s note under the pedal held to 1.6 s: our renderer and FluidSynth (sent the same
    CC 64 events) both hold it past its note-off and the sample's end, and release it at pedal-up."""
    from darkgan.instrument.midi import MidiNote, apply_sustain, fluidsynth_render, mix_notes

    inst, out = exported
    note = MidiNote(0.2, 0.5, played[0][0].pitch, 100, 0)
    fs = fluidsynth_render(out / "brass.sf2", [note], SR, controls=[(0.1, 64, 127), (1.6, 64, 0)])
    ours = mix_notes(apply_sustain([note], [(0.1, 1.6)]), {}, inst)
    dry = mix_notes([note], {}, inst)
    for x in (fs, ours):
        body = _rms_db(x, 0.3, 0.45)
        assert _rms_db(x, 1.2, 1.5) > body - 12  # held by the pedal (the loop past the 1 s sample)
        assert _rms_db(x, 1.8, 1.88) < body - 40  # released at pedal-up (-100 dB at 0.3 s)
    assert len(dry) <= round(0.8 * SR)  # without the pedal: note-off at 0.5 s, the 0.3 s release, the end


@pytest.mark.slow  # ~5 s of CPU, but two model loads and builds: 20 s wall on the loaded 2-core machine
def test_cli_export_and_render(tmp_path, exported, capsys):
    """The commands end to end (fixed z: fast), and their refusals (exit 2, nothing damaged)."""
    from darkgan.cli import main

    song = _midi(tmp_path / "song.mid", [(60, 100, 0, 0.5), (64, 60, 0.5, 1.5), (90, 100, 1.0, 1.3)])
    out = tmp_path / "inst"
    args = ["export-instrument", "--checkpoint", "student", "--attr", "Brass instrument=0.9", "--preset", "fixed-z",
            "--velocities", "1", "--format", "sf2", "--out", str(out)]
    assert main(args) == 0 and sorted(p.name for p in out.iterdir()) == ["darkgan.sf2", "instrument.json"]
    before = (out / "darkgan.sf2").read_bytes()
    assert main(args) == 2 and "exists and is not empty" in capsys.readouterr().err
    assert main(args[:-2] + ["--format", "sfz", "--out", str(out), "--set", "release_s=0"]) == 2
    assert (out / "darkgan.sf2").read_bytes() == before  # refused before anything was written
    wav = tmp_path / "song.wav"
    r = ["render", str(song), "--checkpoint", "student", "--preset", "fixed-z", "--out", str(wav)]
    assert main(r) == 0 and "1 transposed" in capsys.readouterr().out
    import soundfile as sf

    audio, sr = sf.read(wav)
    assert sr == SR and 1.5 < len(audio) / SR < 2.0 and np.abs(audio).max() > 0.001
    assert main(r) == 2 and "exists" in capsys.readouterr().err
    hi = tmp_path / "song44.wav"
    assert main(r[:-1] + [str(hi), "--sample-rate", "44100"]) == 0
    audio44, sr44 = sf.read(hi)
    from darkgan.teacher.resample import resample_np

    assert sr44 == 44100 and abs(len(audio44) / sr44 - len(audio) / SR) < 1e-3
    back = resample_np(audio44, 44100, SR)[:len(audio)]
    assert np.corrcoef(back, audio[:len(back)])[0, 1] > 0.99  # the same song, resampled
    spec = np.abs(np.fft.rfft(audio44 * np.hanning(len(audio44)))) ** 2  # windowed: no edge leakage
    f = np.fft.rfftfreq(len(audio44), 1 / sr44)
    assert spec[f > 8500].sum() < 1e-6 * spec.sum()  # nothing made up above 8 kHz (measured: the PCM-16 floor, -78 dB)
    assert main(r[:-1] + [str(tmp_path / "y.wav"), "--sample-rate", "1000"]) == 2 and "--sample-rate" in \
        capsys.readouterr().err
    assert main(r[:-1] + [str(tmp_path / "x.wav"), "--out-of-range", "error"]) == 2
    assert not (tmp_path / "x.wav").exists()


def test_failed_export_leaves_the_folder_as_it_was(exported, tmp_path, monkeypatch):
    import darkgan.instrument.sf2 as sf2mod
    from darkgan.instrument.save import save_instrument

    inst, _ = exported
    out = tmp_path / "keep"
    save_instrument(inst, out, "sfz")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(sf2mod, "write_sf2", broken)
    with pytest.raises(OSError, match="disk full"):
        save_instrument(inst, out, "both", overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".keep.partial-*"))


def test_app_download_as_instrument(student, tmp_path):
    """The app's "Make instrument" action: an SFZ zip and an SF2 that FluidSynth loads."""
    import zipfile

    from darkgan.app.controller import Studio

    studio = Studio(student, None, out_dir=tmp_path)
    sfz_zip, sf2, _ = studio.export_instrument(3, {"Brass instrument": 0.9})
    names = zipfile.ZipFile(sfz_zip).namelist()
    wavs = sum(n.endswith(".wav") for n in names)  # 3 layers x a key every 3 semitones (10 or fewer)
    assert wavs % 3 == 0 and 3 * 6 <= wavs <= 3 * 10 and any(n.endswith(".sfz") for n in names)
    import fluidsynth

    fs = fluidsynth.Synth()
    try:
        assert fs.sfload(str(sf2)) >= 0
    finally:
        fs.delete()
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # no staging folder left


def test_one_shot_like_a_real_note_ends_with_the_sample(student, rendered_dataset, tmp_path):
    """``like=`` a real flute note, preset ``one-shot``: no loops (SF2 sampleModes 0, SFZ
    one_shot); FluidSynth's held note ends with the 1 s sample instead of sustaining."""
    from darkgan.instrument.config import get_config
    from darkgan.instrument.export import build_instrument
    from darkgan.instrument.midi import MidiNote, fluidsynth_render
    from darkgan.instrument.save import save_instrument

    wav = sorted((rendered_dataset / "audio").glob("flute_*-060-100.wav"))[0]
    cfg = get_config("one-shot", ["candidates=2", "velocities=1"])
    inst = build_instrument(student, like=wav, config=cfg, seed=1, name="flute")
    assert inst.loops is None and inst.info["base"] == f"like:{wav}"
    save_instrument(inst, tmp_path / "f", "both", cfg)
    assert "loop_mode=one_shot" in (tmp_path / "f" / "flute.sfz").read_text()
    key = int(inst.pitches[len(inst.pitches) // 2])
    x = fluidsynth_render(tmp_path / "f" / "flute.sf2", [MidiNote(0.1, 2.6, key, 100, 0)], SR)
    body = _rms_db(x, 0.3, 0.6)
    assert body > -60 and _rms_db(x, 1.2, 2.5) < body - 40


def test_pyin_rejects_a_root_heard_an_octave_low_and_repair_takes_the_other_candidate(fluidr3):
    """Real trumpet notes (FluidR3): a note at MIDI 48 offered as the root of key 60 is on the key
    for the octave-folded YIN screen, an octave low for pYIN: ``verify_pitch`` rejects it and key
    repair takes the other candidate's real 60; the winner's in-tune root is kept."""
    from darkgan.data.render import render_note
    from darkgan.instrument.config import InstrumentConfig
    from darkgan.instrument.export import repair_keys, verify_pitch, yin_screen

    real = {p: render_note(fluidr3, 56, p, 100)[:16000] for p in (48, 60, 62)}
    notes = np.stack([np.stack([real[48], real[62]]), np.stack([real[60], real[62]])])  # [C=2, P=2, N]
    pitches = np.array([60, 62])
    cents, _ = yin_screen(notes.reshape(4, -1), np.tile(pitches, 2))
    assert np.all(np.abs(cents) <= 50), cents  # YIN (folded) passes all four, the octave-low one too
    emb = np.random.default_rng(0).standard_normal((2, 2, 8))
    scores = {"cents": cents.reshape(2, 2), "embedding": emb}
    assert verify_pitch(notes, pitches, scores, best=0) == [60]
    assert np.isnan(scores["cents"][0, 0]) and np.isfinite(scores["cents"][[0, 1, 1], [1, 0, 1]]).all()
    keys, src = repair_keys(notes[:, :, :], scores, 0, InstrumentConfig())
    assert src.tolist() == [1, 0] and np.array_equal(keys[0], real[60])


def test_path_search_is_exact_and_never_worse_than_the_winner(student):
    """``select = path`` on the real student's candidates: the dynamic programme finds the
    cheapest chain of roots (checked against every chain of 6 roots x 4 candidates), is never
    worse than the winning candidate alone, and the instrument plays the chain's notes."""
    import itertools

    from darkgan.instrument.config import get_config
    from darkgan.instrument.export import build_instrument, path_sources

    # without pYIN's second check: a root it rejects turns off-pitch after the candidates were
    # scored, so the winner's chain may then cost more than its score (that check is tested in
    # test_pyin_rejects_a_root_heard_an_octave_low_and_repair_takes_the_other_candidate)
    cfg = get_config("default", ["candidates=4", "velocities=1", "select=path", "verify_pitch=false"])
    inst = build_instrument(student, {"Flute": 0.9}, config=cfg, seed=3, name="flute")
    info = inst.info
    path = np.asarray(info["path"])
    assert info["select"] == "path" and len(path) == 10 and set(path) <= set(range(4))
    winner = info["chosen"]
    assert info["path_cost"] <= info["score"][winner] + 1e-6  # the winner alone is one of the chains
    kept = [i for i, p in enumerate([*range(44, 71, 3), 70]) if p not in info["dropped_roots"]]
    assert info["key_source"] == path[kept].tolist()

    # exactness on a 6-root slice of the same candidates' embeddings and pitch screen
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((4, 6, 16)) + 3 * rng.standard_normal((1, 6, 16))
    cents = np.where(rng.random((4, 6)) < 0.2, np.nan, 0.0)
    scores = {"embedding": emb, "cents": cents}
    src, cost = path_sources(scores, 1, cfg)
    unit = emb / np.linalg.norm(emb, axis=2, keepdims=True)

    def chain_cost(ch):
        pairs = np.mean([1 - unit[ch[q], q] @ unit[ch[q + 1], q + 1] for q in range(5)])
        anchor = np.mean([cfg.path_anchor * (1 - unit[ch[q], q] @ unit[1, q]) for q in range(6)])
        return pairs + anchor + cfg.pitch_weight * np.mean(np.isnan(cents[list(ch), range(6)]))

    best = min(itertools.product(range(4), repeat=6), key=chain_cost)
    assert tuple(src) == best and cost == pytest.approx(chain_cost(best))
