"""Unit tests of the app's pure logic (darkgan.app.state): settings JSON, validation, uploads,
the 2-D pad, the attribute search and ranking. No model, no browser."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import soundfile as sf

from darkgan.app import state as st
from darkgan.errors import DataError
from test_app_helpers import note_audio, write_note

NAMES = ["Acoustic guitar", "Bass guitar", "Tuning fork", "Saxophone", "Chime", "Brass instrument"]
RANGE = (44, 70)


def test_settings_round_trip_is_exact():
    values = [0.1 + 0.2, 1 / 3, 0.0, 1.0, 2 ** -20, 0.7300000000000001]
    s = st.make_settings("ckpt@abc", 61, 12345, NAMES, values)
    text = s.to_json()
    back, messages = st.parse_settings(text, NAMES, RANGE, checkpoint="ckpt@abc")
    assert messages == []
    assert back == s
    assert back.vector(NAMES).tolist() == values  # bit-exact floats, vocabulary order
    assert list(json.loads(text)["attributes"]) == NAMES
    # also from bytes, a dict and a file
    assert st.parse_settings(text.encode(), NAMES, RANGE, "ckpt@abc")[0] == s
    assert st.parse_settings(json.loads(text), NAMES, RANGE, "ckpt@abc")[0] == s


def test_settings_file_path(tmp_path):
    s = st.make_settings("c@1", 44, 0, NAMES, [0.5] * len(NAMES))
    p = tmp_path / "s.json"
    p.write_text(s.to_json())
    assert st.parse_settings(p, NAMES, RANGE, "c@1")[0] == s
    with pytest.raises(st.SettingsError, match="cannot read"):
        st.parse_settings(tmp_path / "missing.json", NAMES, RANGE)


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ('{"pitch": 60}', "not a DarkGAN app settings file"),
    ('[1, 2]', "not a DarkGAN app settings file"),
    ('{"format": "darkgan-app-settings", "version": 99, "pitch": 60, "seed": 0, "attributes": {}}', "version 99"),
    ('{"format": "darkgan-app-settings", "version": 1, "seed": 0, "attributes": {}}', "no 'pitch'"),
    ('{"format": "darkgan-app-settings", "version": 1, "pitch": "high", "seed": 0, "attributes": {}}', "pitch 'high'"),
    ('{"format": "darkgan-app-settings", "version": 1, "pitch": 60, "seed": NaN, "attributes": {}}', "seed nan"),
    ('{"format": "darkgan-app-settings", "version": 1, "pitch": 60, "seed": 0, "attributes": [1]}', "must be an object"),
])
def test_bad_settings_files_are_refused_with_a_clear_message(text, match):
    with pytest.raises(st.SettingsError, match=match):
        st.parse_settings(text, NAMES, RANGE)
    with pytest.raises(st.SettingsError):
        st.parse_settings(b"\xff\xfe\x00binary", NAMES, RANGE)


def test_settings_corrections_are_reported():
    doc = {"format": st.SETTINGS_FORMAT, "version": 2, "checkpoint_id": "other@1", "pitch": 90.4, "seed": -3,
           "attributes": {"acoustic GUITAR": 5, "Cat": 0.3, "Chime": "loud", "Saxophone": 0.25}}
    s, messages = st.parse_settings(doc, NAMES, RANGE, checkpoint="mine@2")
    text = " | ".join(messages)
    assert s.pitch == 70 and "outside the trained range 44..70" in text
    assert s.seed == st.SEED_MAX - 2 and "seed -3" in text
    assert s.attributes["Acoustic guitar"] == st.ATTR_MAX and "clipped" in text  # case-insensitive name, clipped
    assert "unknown attribute(s) ignored: Cat" in text
    assert s.attributes["Chime"] == 0.0 and "not a number" in text
    assert s.attributes["Saxophone"] == 0.25 and s.attributes["Tuning fork"] == 0.0  # missing -> 0
    assert "checkpoint other@1" in text and s.checkpoint_id == "mine@2"


def test_version_1_settings_hold_raw_probabilities_and_are_converted():
    """Files of the app before the user scale (version 1) stored teacher probabilities."""
    doc = {"format": st.SETTINGS_FORMAT, "version": 1, "pitch": 60, "seed": 1,
           "attributes": {"Acoustic guitar": 0.5, "Saxophone": 0.0, "Chime": 0.9}}
    with pytest.raises(st.SettingsError, match="version 1"):
        st.parse_settings(doc, NAMES, RANGE)
    to_user = lambda a: np.log(a / (1 - a))  # noqa: E731  (a stand-in monotone scale: the logit)
    s, messages = st.parse_settings(doc, NAMES, RANGE, to_user=to_user)
    assert s.attributes["Acoustic guitar"] == pytest.approx(0.0) and s.attributes["Chime"] == pytest.approx(2.197, abs=1e-3)
    assert s.attributes["Saxophone"] == st.ATTR_MIN  # logit(1e-6) = -13.8, clipped into the slider range
    assert any("converted to the user scale" in m for m in messages) and any("clipped" in m for m in messages)
    out = json.loads(s.to_json())  # written back as the current version, the old file's meaning kept
    assert out["version"] == 3 and out["attribute_scale"] == "user" and out["steer"] == "none"


def test_validate_attributes_clips_absurd_values_and_keeps_fallback():
    fallback = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    vec, messages = st.validate_attributes([1e9, -5, math.inf, math.nan, "abc", True], NAMES, fallback)
    assert vec.tolist() == [st.ATTR_MAX, st.ATTR_MIN, st.ATTR_MAX, 0.4, 0.5, 0.6]
    assert len(messages) == 2
    assert "Acoustic guitar=1000000000.0" in messages[1] and "(+0 more)" not in messages[1]
    assert "Saxophone, Chime, Brass instrument" in messages[0]
    vec, messages = st.validate_attributes([0.5] * 6, NAMES)
    assert messages == [] and vec.tolist() == [0.5] * 6
    with pytest.raises(st.SettingsError, match="expected 6 attribute values, got 2"):
        st.validate_attributes([0.1, 0.2], NAMES)
    many = [f"a{i}" for i in range(10)]
    _, messages = st.validate_attributes([7.0] * 10, many)
    assert "(+7 more)" in messages[0]


def test_parse_pitch_and_seed():
    assert st.parse_pitch(60, RANGE) == (60, [])
    assert st.parse_pitch("59.6", RANGE) == (60, [])
    p, m = st.parse_pitch(-1e12, RANGE)
    assert p == 44 and m
    for bad in (None, "C4", math.nan, math.inf, True):
        with pytest.raises(st.SettingsError):
            st.parse_pitch(bad, RANGE)
    assert st.parse_seed(7) == (7, [])
    s, m = st.parse_seed(2**40)
    assert 0 <= s <= st.SEED_MAX and m
    with pytest.raises(st.SettingsError):
        st.parse_seed("random")


# ----------------------------------------------------------------------------------- uploads

def test_upload_mono_16k_real_note(tmp_path):
    p = write_note(tmp_path / "note.wav", midi=60, sr=16000, seconds=1.5)
    wave, messages = st.load_upload(p)
    assert messages == []
    assert wave.dtype == np.float32 and wave.shape == (24000,)
    ref = note_audio(60, 1.5, 16000)
    assert np.abs(wave - ref).max() < 2 / 32768  # 16-bit quantisation only


def test_upload_stereo_44k_is_downmixed_and_resampled(tmp_path):
    p = write_note(tmp_path / "stereo.wav", midi=57, sr=44100, channels=2, seconds=2.0)
    wave, messages = st.load_upload(p)
    assert any("2 channels down-mixed" in m for m in messages)
    assert any("resampled from 44100 Hz" in m for m in messages)
    assert abs(wave.shape[0] - 32000) <= 1
    # the pitch survives resampling: the strongest partial is a harmonic of 220 Hz (A3)
    spec = np.abs(np.fft.rfft(wave[4000:20000] * np.hanning(16000)))  # 1 Hz bins
    h = np.argmax(spec) / 220.0
    assert round(h) >= 1 and abs(h - round(h)) < 0.03


def test_upload_flac_and_other_formats(tmp_path):
    p = tmp_path / "note.flac"
    sf.write(str(p), note_audio(64, 1.0, 22050), 22050, format="FLAC")
    wave, messages = st.load_upload(p)
    assert wave.shape == (16000,) and "22050" in messages[0]


def test_bad_uploads_get_clear_errors(tmp_path):
    text = tmp_path / "readme.wav"
    text.write_text("not audio at all\n" * 10)
    with pytest.raises(DataError, match="readme.wav: not an audio file"):
        st.load_upload(text)
    png = tmp_path / "pic.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(DataError, match="not an audio file"):
        st.load_upload(png)
    long = tmp_path / "long.wav"
    sf.write(str(long), np.tile(note_audio(60, 1.0, 8000), 31), 8000)
    with pytest.raises(DataError, match="31.0 s is too long"):
        st.load_upload(long)
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(16000, np.float32), 16000)
    with pytest.raises(DataError, match="silent"):
        st.load_upload(silent)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), 16000)
    with pytest.raises(DataError, match="empty|not an audio"):
        st.load_upload(empty)
    with pytest.raises(DataError, match="too large"):
        st.load_upload(write_note(tmp_path / "big.wav"), max_bytes=1000)
    with pytest.raises(DataError, match="not found"):
        st.load_upload(tmp_path / "nope.wav")


def test_wav_bytes_and_concat():
    x = note_audio(60, 1.0)
    y, sr = sf.read(io.BytesIO(st.wav_bytes(x)), dtype="float32")
    assert sr == 16000 and y.shape == x.shape and np.abs(x - y).max() <= 1 / 32768
    notes = np.ones((3, 1000), np.float32)
    out = st.concat_notes(notes, fade=100)
    assert out.shape == (3000,) and out[0] == 0 and out[500] == 1 and out[999] == 0
    assert notes.min() == 1  # input untouched


# ---------------------------------------------------------------------------- pad & pictures

def test_pad_mapping():
    assert st.pad_click_to_xy(0, 0) == (0.0, 1.0)  # top left pixel -> x 0, y 1
    assert st.pad_click_to_xy(st.PAD_SIZE - 1, st.PAD_SIZE - 1) == (1.0, 0.0)
    assert st.pad_click_to_xy(0.8 * st.PAD_SIZE, 0.2 * st.PAD_SIZE) == (0.8, 0.8)
    base = np.full(6, 0.5)
    v = st.pad_vector(base, 0.9, 0.1, 2, 4)
    assert v[2] == 0.9 and v[4] == 0.1 and np.all(np.delete(v, [2, 4]) == 0.5)
    d = st.random_directions(6, seed=3)
    assert d.shape == (2, 6) and np.allclose(d @ d.T, np.eye(2))
    assert np.array_equal(d, st.random_directions(6, seed=3))
    centre = st.pad_vector(base, 0.5, 0.5, None, None, d)
    assert np.allclose(centre, base)
    moved = st.pad_vector(base, 1.0, 0.5, None, 1, d)
    assert np.allclose(np.delete(moved, 1), np.clip(base + 0.5 * d[0], st.ATTR_MIN, st.ATTR_MAX)[[0, 2, 3, 4, 5]])
    assert moved[1] == 0.5
    assert st.pad_vector(np.full(6, 0.99), 1.0, 1.0, None, None, d * 10).max() <= st.ATTR_MAX
    with pytest.raises(ValueError):
        st.pad_vector(base, 0.2, 0.2, None, 1)


def test_pictures():
    img = st.pad_image(0.25, 0.75, "Chime", "Brass instrument")
    assert img.shape == (st.PAD_SIZE, st.PAD_SIZE, 3) and img.dtype == np.uint8
    # the marker (orange-red) sits at 25 % from the left, 25 % from the top
    red = (img[..., 0] > 200) & (img[..., 1] < 120) & (img[..., 2] < 90)
    ys, xs = np.nonzero(red)
    assert abs(xs.mean() / st.PAD_SIZE - 0.25) < 0.03 and abs(ys.mean() / st.PAD_SIZE - 0.25) < 0.03
    spec = st.spectrogram_image(note_audio(60, 1.0), title="C4")
    assert spec.shape == (300, 640, 3) and spec.std() > 10


# ------------------------------------------------------------------------- search & ranking

def test_filter_attributes():
    order = [3, 5, 0, 1, 2, 4]
    assert st.filter_attributes("", NAMES, order, n_top=2) == [False, False, False, True, False, True]
    assert st.filter_attributes("  GUITAR ", NAMES, order) == [True, True, False, False, False, False]
    assert st.filter_attributes("bass guit", NAMES, order) == [False, True, False, False, False, False]
    assert st.filter_attributes("*", NAMES, order) == [True] * 6
    assert st.filter_attributes("zzz", NAMES, order) == [False] * 6


def test_order_by_responsiveness_and_correlation():
    scores = {"Chime": 0.4, "Saxophone": 0.9, "Bass guitar": float("nan"), "Tuning fork": -0.1}
    assert st.order_by_responsiveness(NAMES, scores) == [3, 4, 2, 0, 1, 5]
    assert st.order_by_responsiveness(NAMES, None) == list(range(6))

