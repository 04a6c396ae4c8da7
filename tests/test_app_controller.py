"""Tests of the app's model-bound actions (darkgan.app.controller.Studio) on a tiny random-weight
checkpoint through the real generation API and the real teacher: exact reproduction from the
settings JSON, absurd inputs, the scale, timbre transfer from uploads, the responsiveness cache,
the CLI's errors. No browser (see test_app_browser.py)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

from darkgan.app import state as st
from darkgan.app.state import SettingsError
from darkgan.app.controller import Studio, checkpoint_id
from darkgan.errors import CheckpointError, DataError
from test_app_helpers import PITCH_RANGE, make_tiny_checkpoint, note_audio, write_note


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def studio(ckpt, tmp_path_factory):
    return Studio.load(ckpt, out_dir=tmp_path_factory.mktemp("out"))


def test_render_writes_wav_and_settings_that_reproduce_it_exactly(studio, tmp_path):
    rng = np.random.default_rng(1)
    values = rng.uniform(size=studio.k)
    r = studio.render(62, 321, values)
    assert r.wave.shape == (16000,) and r.wave.dtype == np.float32
    assert np.sqrt(np.mean(r.wave.astype(np.float64) ** 2)) > 1e-4
    wav, sr = sf.read(str(r.wav_path), dtype="float32")
    assert sr == 16000 and np.abs(wav - r.wave).max() <= 1 / 32768
    doc = json.loads(r.json_path.read_text())
    assert doc["pitch"] == 62 and doc["seed"] == 321 and doc["checkpoint_id"] == studio.checkpoint_id
    assert list(doc["attributes"]) == studio.names and list(doc["attributes"].values()) == values.tolist()
    # a fresh Studio on the same checkpoint, fed the downloaded JSON: the same WAV, byte for byte
    other = Studio.load(studio.checkpoint_path, out_dir=tmp_path)
    again = other.reproduce(r.json_path)
    assert again.messages == []
    assert again.wav_path.read_bytes() == r.wav_path.read_bytes()
    assert np.array_equal(again.wave, r.wave)
    # and the generation API agrees: the settings are a complete recipe
    assert doc["steer"] == "data"
    attrs, sc = studio.conditioning(np.array(list(doc["attributes"].values())), doc["steer"])
    api = studio.model.generate(62, attributes=attrs, n=1, seed=321, scale=sc)[0]
    assert np.array_equal(api, r.wave)


def test_a_moved_slider_is_followed_by_the_ones_left_at_typical(studio, tmp_path):
    """Sliders left at 0 follow the moved ones as in the data (steering); the settings say so
    and replay exactly; a version-2 file (made before steering) replays without it."""
    k = studio.k
    values = np.zeros(k)
    values[3] = 1.5
    attrs, sc = studio.conditioning(values)
    typical, _ = studio.conditioning(np.zeros(k))
    alpha = np.array(list(attrs.values()))
    assert sc == "raw" and alpha[3] == pytest.approx(studio.model.attribute_vector({studio.names[3]: 1.5})[3])
    moved = np.abs(alpha - studio.model.attribute_vector(typical)) > 1e-6
    assert moved[3] and moved.sum() > 1  # others followed
    r = studio.render(60, 5, values)
    doc = json.loads(r.json_path.read_text())
    assert doc["steer"] == "data" and doc["version"] == 3
    assert np.array_equal(studio.reproduce(r.json_path).wave, r.wave)
    fixed = studio.render(60, 5, values, steer="none")
    assert not np.array_equal(fixed.wave, r.wave)
    doc.pop("steer")
    doc["version"] = 2
    old = studio.reproduce(json.dumps(doc))
    assert np.array_equal(old.wave, fixed.wave)
    doc["steer"], doc["version"] = "sideways", 3
    with pytest.raises(SettingsError, match="'steer' must be one of data, none"):
        studio.reproduce(json.dumps(doc))


def test_settings_restore_for_the_ui(studio):
    r = studio.render(50, 9, [0.25] * studio.k)
    settings, messages, scale = studio.read_settings(r.json_path.read_text())
    assert messages == [] and not scale
    assert settings.pitch == 50 and settings.seed == 9 and settings.vector(studio.names).tolist() == [0.25] * studio.k
    doc = json.loads(r.json_path.read_text())
    doc["checkpoint_id"] = "someone-else@000000000000"
    _, messages, _ = studio.read_settings(json.dumps(doc))
    assert any("the sound will differ" in m for m in messages)


def test_absurd_values_are_clipped_with_messages_not_sent_to_the_model(studio):
    values = [1e9, -1e9, float("nan"), "loud", None] + [0.5] * (studio.k - 5)
    r = studio.render(1000, -5, values)
    text = " | ".join(r.messages)
    assert "outside the trained range 44..70: using 70" in text
    assert "seed -5" in text and "clipped" in text and "not a number" in text
    v = r.settings.vector(studio.names)
    assert v[0] == st.ATTR_MAX and v[1] == st.ATTR_MIN and v[2] == 0.0 and v[3] == 0.0 and v[4] == 0.0
    assert r.settings.pitch == 70 and 0 <= r.settings.seed <= st.SEED_MAX
    assert np.isfinite(r.wave).all()
    with pytest.raises(st.SettingsError):
        studio.render("sixty", 0, [0.5] * studio.k)
    with pytest.raises(st.SettingsError):
        studio.render(60, 0, [0.5] * (studio.k + 1))


def test_scale_plays_the_same_timbre_over_every_pitch(studio):
    values = np.linspace(0, 1, studio.k)
    r = studio.render(60, 4, values, scale=True)
    lo, hi = PITCH_RANGE
    n = hi - lo + 1
    assert r.wave.shape == (n * 16000,)
    assert json.loads(r.json_path.read_text())["scale"] is True
    attrs, sc = studio.conditioning(values)  # the first slider is at 0: it follows the others
    assert sc == "raw"
    for i in (0, n // 2, n - 1):  # note i = the single note at that pitch (same z, same attributes)
        single = studio.model.generate(lo + i, attributes=attrs, n=1, seed=4, scale=sc)[0]
        seg = r.wave[i * 16000:(i + 1) * 16000]
        assert np.abs(seg[200:-200] - single[200:-200]).max() < 5e-4  # float rounding: batch 27 vs 1
    _, _, scale = studio.read_settings(r.json_path)
    assert scale


def test_timbre_transfer_from_an_uploaded_stereo_44k_wav(studio, tmp_path):
    p = write_note(tmp_path / "pluck.wav", midi=55, sr=44100, channels=2, seconds=2.0)
    vec, messages = studio.from_wave_file(p)
    assert vec.shape == (studio.k,) and ((vec >= st.ATTR_MIN) & (vec <= st.ATTR_MAX)).all()
    assert messages[:2] == [f"pluck.wav: 2 channels down-mixed to mono", "pluck.wav: resampled from 44100 Hz to 16000 Hz"]
    # the same labels as generate(like=FILE) uses: the down-mixed, resampled note's first second
    # (after its leading silence) through the teacher at the checkpoint's temperature, on the user scale
    from darkgan.generation.api import load_note

    direct = studio.soft_labels(load_note(p)[None])[0]
    raw = studio.model.like_attributes(p)
    assert np.abs(raw - direct).max() < 1e-6
    expected = np.clip(studio.scale.to_user(raw), st.ATTR_MIN, st.ATTR_MAX)
    assert np.abs(vec - expected).max() < 1e-5
    # and the note generated from those sliders is conditioned on the teacher's probabilities
    np.testing.assert_allclose(studio.model.attribute_vector(dict(zip(studio.names, vec))),
                               np.where(expected == vec, raw, studio.scale.to_raw(vec)), rtol=1e-4, atol=1e-7)
    # a plucked string is heard as one: "Plucked string instrument" among the top of this vocabulary
    top = [studio.names[i] for i in np.argsort(-raw)[:6]]
    assert any(n in top for n in ("Plucked string instrument", "Guitar", "Musical instrument", "Music"))


def test_bad_uploads_are_refused_by_the_studio(studio, tmp_path):
    text = tmp_path / "x.wav"
    text.write_text("hello")
    with pytest.raises(DataError, match="not an audio file"):
        studio.from_wave_file(text)
    long = tmp_path / "long.flac"
    sf.write(str(long), np.tile(note_audio(60, 1.0), 40), 16000, format="FLAC")
    with pytest.raises(DataError, match="too long"):
        studio.from_wave_file(long)


def test_start_from_a_random_validation_note(studio):
    vec, what = studio.from_random_validation(5, pitch=60)
    pool = studio.model.validation_attributes(60)
    assert any(np.allclose(vec, studio.scale.to_user(row), atol=1e-5) for row in pool)
    assert "060-100" in what
    vec2, _ = studio.from_random_validation(5, pitch=60)
    assert np.array_equal(vec, vec2)
    with pytest.raises(DataError, match="type a dataset note"):
        studio.from_dataset_note("  ")


def test_start_from_serves_only_dataset_notes_no_server_paths(ckpt, rendered_dataset, tmp_path):
    """Issue 17: the "start from a note" box opens no server path, and its answer for a path does
    not depend on whether the file exists (no existence oracle); dataset notes still work."""
    from darkgan.errors import DarkGANError

    s = Studio.load(ckpt, out_dir=tmp_path / "o", data=rendered_dataset)  # an unlabelled dataset: teacher on the fly
    real = write_note(tmp_path / "keyboard_synthetic_000-052-100.wav", midi=52)
    answers = []
    for probe in (str(real), str(tmp_path / "missing.wav"), "/etc/passwd", "../../../etc/passwd",
                  "keyboard_synthetic_000-052-100.wav", ".hidden"):
        with pytest.raises(DarkGANError) as e:
            s.from_dataset_note(probe)
        answers.append(str(e.value).replace(probe[:60], "X"))
    assert answers[0] == answers[1] == answers[2] == answers[3]
    assert all("not a dataset note name" in a or "no note" in a for a in answers)
    name = sorted(p.stem for p in (rendered_dataset / "audio").glob("*.wav"))[0]
    vec, pitch, what = s.from_dataset_note(name)
    assert vec.shape == (s.k,) and pitch == int(name.split("-")[1]) and what == name


def test_responsiveness_is_measured_once_then_cached_in_the_user_cache(ckpt, tmp_path, monkeypatch):
    """The cache goes to $DARKGAN_CACHE_DIR/app, never into the checkpoint (issue 17)."""
    monkeypatch.setenv("DARKGAN_CACHE_DIR", str(tmp_path / "cache"))
    before = sorted(p.name for p in ckpt.iterdir())
    s = Studio.load(ckpt, out_dir=tmp_path / "o1")
    order, source = s.rank(n=12)
    assert source.startswith("measured") and sorted(order) == list(range(s.k))
    assert sorted(p.name for p in ckpt.iterdir()) == before  # nothing written next to the checkpoint
    files = list((tmp_path / "cache" / "app").glob("responsiveness-*.json"))
    assert files == [s.cache_path()]
    cached = json.loads(files[0].read_text())
    assert cached["checkpoint_id"] == s.checkpoint_id and cached["n_notes"] == 12
    s2 = Studio.load(ckpt, out_dir=tmp_path / "o2")
    order2, source2 = s2.rank(n=12)
    assert source2.startswith("cached") and order2 == order
    # the order follows the scores
    scores = cached["scores"]
    ranked = [scores.get(s.names[i], -2) for i in order if s.names[i] in scores]
    assert ranked == sorted(ranked, reverse=True)
    # no measuring allowed and no cache: vocabulary order
    s3 = Studio.load(ckpt, out_dir=tmp_path / "o3")
    assert s3.rank(cache=False, measure=False) == (list(range(s3.k)), "vocabulary order")
    # the same weights played with another end-of-note fade (export-generator --synthesis-fade): same
    # checkpoint id, another instrument, so the cached scores are not its own
    import shutil

    faded = tmp_path / "faded" / ckpt.name
    shutil.copytree(ckpt, faded)
    cfg = json.loads((faded / "config.json").read_text())
    cfg["model"]["synthesis_fade"] = 512
    (faded / "config.json").write_text(json.dumps(cfg))
    s4 = Studio.load(faded, out_dir=tmp_path / "o4")
    assert s4.checkpoint_id == s.checkpoint_id and s4.synthesis_id != s.synthesis_id
    assert s4.rank(n=12)[1].startswith("measured") and s2.rank(n=12)[1].startswith("measured")


def test_the_shipped_checkpoint_folder_gets_no_app_cache(tmp_path, monkeypatch):
    from darkgan.paths import shipped_checkpoint

    monkeypatch.setenv("DARKGAN_CACHE_DIR", str(tmp_path / "cache"))
    folder = shipped_checkpoint("student")
    before = sorted(p.name for p in folder.iterdir())
    s = Studio.load("student", out_dir=tmp_path / "o")
    s.rank(n=4)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert s.cache_path().is_file() and str(s.cache_path()).startswith(str(tmp_path / "cache"))


def test_checkpoint_id_and_missing_checkpoint(ckpt, tmp_path):
    cid = checkpoint_id(ckpt)
    assert cid.startswith("tiny@") and len(cid.split("@")[1]) == 12
    other = make_tiny_checkpoint(tmp_path / "tiny", seed=1)
    assert checkpoint_id(other) != cid
    # the same weights played with another end-of-note fade: another id, so a settings file made
    # with the trained fade says that the sound will differ
    from darkgan.models.checkpoint import export_generator

    faded = checkpoint_id(export_generator(ckpt, tmp_path / "faded" / "tiny", synthesis_fade=512))
    assert faded.endswith("+fade512") and faded.split("+")[0].startswith("tiny@") and faded != cid
    made = st.Settings(cid, 60, 1, {}).to_dict()
    assert any("will differ" in m for m in st.parse_settings(made, [], PITCH_RANGE, faded)[1])
    with pytest.raises(CheckpointError, match="not found"):
        Studio.load(tmp_path / "nowhere")


def test_cli_errors_before_serving(tmp_path, capsys):
    from darkgan.cli import main

    assert main(["app", "--checkpoint", str(tmp_path / "missing"), "--port", "0"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["app", "--port", "70000"]) == 2
    assert "not a TCP port" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["app", "--help"])
    assert "127.0.0.1" in capsys.readouterr().out  # loopback by default


def test_dataset_note_without_data(studio, tmp_path):
    from darkgan.errors import DarkGANError

    with pytest.raises(DarkGANError, match="--data DIR"):
        studio.from_dataset_note("guitar_acoustic_010-060-100")


def test_download_folder_keeps_only_the_newest_files(ckpt, tmp_path):
    s = Studio.load(ckpt, out_dir=tmp_path / "out")
    for seed in range(4):
        s.render(60, seed, [0.5] * s.k)
    assert len(list(s.out_dir.iterdir())) == 8
    s._prune(keep=3)
    left = list(s.out_dir.iterdir())
    assert len(left) == 3 and any("s3-" in p.name for p in left)
