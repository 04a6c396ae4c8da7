"""The timbre space (darkgan.timbre): ratings validation, front ends and their inverses, the
perceptual regulariser, training, the API and CLI, on real SoundFont renders."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from darkgan.cli import main as cli_main
from darkgan.data.render import render_note, write_wav
from darkgan.data.synth import quantize
from darkgan.errors import CheckpointError, DataError
from darkgan.timbre.ratings import REFERENCE_RATINGS, load_ratings, ratings_from_dict
from darkgan.utils.io import read_json


@pytest.fixture(scope="module")
def tiny_space(tmp_path_factory):
    """A tiny regularised space trained on real renders (FluidR3 + TimGM, 4 pitches, 1 velocity)."""
    from darkgan.timbre.train import get_preset, train_space

    root = tmp_path_factory.mktemp("timbre")
    metrics = train_space(root / "data", root / "space", get_preset("tiny"), load_ratings(), progress=False)
    return root, metrics


@pytest.fixture(scope="module")
def sax_wav(tmp_path_factory, fluidr3):
    path = tmp_path_factory.mktemp("wav") / "tenor-sax-62.wav"
    write_wav(path, quantize(render_note(fluidr3, 66, 62, 100)))
    return path


def _ratings_dict():
    return read_json(REFERENCE_RATINGS)


def test_reference_ratings_load():
    r = load_ratings()
    assert len(r.instruments) == 12 and r.programs[r.index("violin")] == 40
    assert np.allclose(r.dissimilarity, r.dissimilarity.T) and r.dissimilarity.max() <= 1


@pytest.mark.parametrize("break_it, words", [
    (lambda d: d["dissimilarity_gaussian_mean"][0].__setitem__(1, None), "missing rating for pair Clarinet-Saxophone"),
    (lambda d: d["pairs"].pop(3), "missing pair"),
    (lambda d: d["gm_program"].__setitem__("Kazoo", 5), "unknown instrument 'Kazoo'"),
    (lambda d: d["pairs"][0].__setitem__("a", "Kazoo"), "unknown instrument 'Kazoo'"),
    (lambda d: [row.__setitem__(j, 1.5 if j != i else 0) for i, row in enumerate(d["dissimilarity_gaussian_mean"])
                for j in range(12) if {i, j} == {2, 3}], "outside [0, 1]"),
    (lambda d: d["pairs"][5]["ratings_by_set"][0].__setitem__(0, -0.2), "outside [0, 1]"),
])
def test_bad_ratings_are_one_line_errors(break_it, words):
    d = _ratings_dict()
    break_it(d)
    with pytest.raises(DataError) as e:
        ratings_from_dict(d, "r.json")
    assert words in str(e.value) and "\n" not in str(e.value) and str(e.value).startswith("r.json")


@pytest.mark.parametrize("name", ["stft", "mel", "cqt", "nsgt"])
def test_front_end_inverse_keeps_the_pitch(name, fluidr3):
    from darkgan.timbre.frontends import get_front_end
    from darkgan.timbre.space import estimate_pitch

    fe = get_front_end(name)
    wave = render_note(fluidr3, 71, 64, 100)[:16000]  # clarinet E4
    spec = fe.analyze(wave)
    assert spec.shape[0] == fe.n_bins and np.all(np.isfinite(spec))
    back = fe.invert(spec, n_iter=16)
    assert abs(estimate_pitch(back) - 64) < 0.5
    assert np.corrcoef(fe.analyze(back).ravel(), spec.ravel())[0, 1] > 0.8


def test_regulariser_alone_recovers_the_rated_order():
    from scipy.stats import spearmanr

    from darkgan.timbre.model import perceptual_regularizer

    target = torch.tensor(load_ratings().dissimilarity, dtype=torch.float32)
    iu = np.triu_indices(12, 1)
    for kind in ("tsne", "stress"):
        c = torch.randn(12, 4, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
        opt = torch.optim.Adam([c], lr=0.05)
        before = perceptual_regularizer(c, target, kind).item()
        for _ in range(400):
            loss = perceptual_regularizer(c, target, kind)
            opt.zero_grad()
            loss.backward()
            opt.step()
        d = torch.cdist(c, c).detach().numpy()
        assert loss.item() < before
        assert spearmanr(d[iu], target.numpy()[iu])[0] > 0.8, kind


def test_training_fits_the_ratings_and_writes_a_loadable_space(tiny_space):
    from darkgan.timbre.space import TimbreSpace
    from darkgan.timbre.train import correlations

    root, metrics = tiny_space
    space = TimbreSpace.load(root / "space")
    assert set(space.ratings.instruments) < set(space.centroids) and len(space.centroids) == 20
    c = np.stack([space.centroids[n] for n in space.ratings.instruments])
    fit = correlations(np.linalg.norm(c[:, None] - c[None], axis=-1), space.ratings.dissimilarity)
    assert fit["spearman"] == pytest.approx(metrics["fit"]["spearman"], abs=1e-4)
    assert metrics["fit"]["spearman"] > 0.6


def test_regulariser_beats_the_unregularised_baseline(tiny_space, tmp_path):
    from darkgan.timbre.train import get_preset, train_space
    from darkgan.utils.config import apply_overrides

    root, metrics = tiny_space
    cfg = apply_overrides(get_preset("tiny"), ["train.reg_weight=0", "train.steps=300"])
    base = train_space(root / "data", tmp_path / "unreg", cfg, load_ratings(), progress=False)
    assert metrics["fit"]["spearman"] > base["fit"]["spearman"] + 0.3


def test_encode_cli_json_and_bad_audio(tiny_space, sax_wav, tmp_path, capsys):
    root, _ = tiny_space
    space = str(root / "space")
    assert cli_main(["timbre-space", "encode", "--space", space, str(sax_wav), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["file"] == str(sax_wav) and len(rows[0]["latent"]) == 4
    silent, short = tmp_path / "silent.wav", tmp_path / "short.wav"
    write_wav(silent, quantize(np.zeros(16000, np.float32)))
    write_wav(short, quantize(render_note(_font(), 66, 62, 100)[:2000]))
    for path, words in ((silent, "silent"), (short, "too short")):
        assert cli_main(["timbre-space", "encode", "--space", space, str(path)]) == 2
        err = capsys.readouterr().err
        assert words in err and str(path) in err and err.count("\n") == 1


def _font() -> Path:
    from darkgan.paths import find_soundfont

    return find_soundfont("FluidR3_GM.sf2")


def test_synth_path_and_map(tiny_space, sax_wav, tmp_path, capsys):
    from darkgan.timbre.space import TimbreSpace, estimate_pitch

    root, _ = tiny_space
    space = TimbreSpace.load(root / "space")
    waves = [space.synth(space.instrument(n), 64, n_iter=16) for n in space.ratings.instruments[:4]]
    assert all(w.shape == (16000,) and np.abs(w).max() < 1 for w in waves)
    # real carrier notes moved to the point: the pitch is the asked one
    assert all(abs(estimate_pitch(w) - 64) < 0.5 for w in waves)
    assert cli_main(["timbre-space", "path", "Cello", "Flute", "--space", str(root / "space"), "--steps", "2",
                     "--out", str(tmp_path / "path.wav")]) == 0
    from darkgan.timbre.space import read_audio

    path = read_audio(tmp_path / "path.wav")
    assert path.shape == (2 * 16000,)
    # the path starts with the cello's own note, as synthesis at the cello's centroid
    cello = quantize(space.synth(space.instrument("Cello"), 64)).astype(np.float32) / 32768
    assert np.abs(path[:16000] - cello).max() <= 1 / 32768
    assert cli_main(["timbre-space", "map", str(sax_wav), "--space", str(root / "space"),
                     "--out", str(tmp_path / "map.png")]) == 0
    coords = json.loads(capsys.readouterr().out.splitlines()[-1])["coords"]
    assert str(sax_wav) in coords and (tmp_path / "map.png").stat().st_size > 10_000
    xy = coords["Cello"]
    assert np.allclose(space.to_plane(space.from_plane(xy)), xy, atol=1e-4)


def test_map_3d_projects_user_wavs(tiny_space, sax_wav, tmp_path, capsys):
    from darkgan.timbre.space import TimbreSpace

    root, _ = tiny_space
    space = TimbreSpace.load(root / "space")
    png = tmp_path / "map3.png"
    assert cli_main(["timbre-space", "map", str(sax_wav), "--space", str(root / "space"), "--dims", "3",
                     "--out", str(png)]) == 0
    coords = json.loads(capsys.readouterr().out.splitlines()[-1])["coords"]
    assert png.stat().st_size > 30_000 and len(coords) == len(space.centroids) + 1
    assert all(len(v) == 3 for v in coords.values())
    # the first two coordinates are the 2-D map's; the user WAV lands where encode puts it
    assert np.allclose(coords["Cello"][:2], space.to_plane(space.instrument("Cello")), atol=1e-5)
    assert np.allclose(coords[str(sax_wav)], space.to_axes(space.encode_file(sax_wav), 3), atol=1e-4)
    # principal axes: decreasing spread of the rated centroids, and the 3-D map keeps more of the
    # latent distances than the plane
    rated = np.array([coords[n] for n in space.ratings.instruments])
    assert np.all(np.diff(rated.var(0)) <= 1e-6)
    c = np.stack([space.centroids[n] for n in space.ratings.instruments])
    full = np.linalg.norm(c[:, None] - c[None], axis=-1)
    d3 = np.linalg.norm(rated[:, None] - rated[None], axis=-1)
    d2 = np.linalg.norm(rated[:, None, :2] - rated[None, :, :2], axis=-1)
    assert np.all(d2 <= d3 + 1e-5) and np.all(d3 <= full + 1e-5) and np.abs(full - d3).sum() < np.abs(full - d2).sum()
    from darkgan.errors import DarkGANError
    from darkgan.timbre.explore import map_png

    with pytest.raises(DarkGANError, match="2 or 3 dimensions"):
        map_png(space, png, dims=4)


def test_descriptor_synthesis_moves_the_centroid(tiny_space, sax_wav, tmp_path, capsys):
    from darkgan.timbre.descriptors import audio_descriptors
    from darkgan.timbre.explore import descriptor_synth
    from darkgan.timbre.synthesis import instrument_note

    space = str(tiny_space[0] / "space")
    out = tmp_path / "brighter.wav"
    assert cli_main(["timbre-space", "synth", "--space", space, "--instrument", "Trumpet", "--descriptor",
                     "centroid", "--change", "0.25", "--out", str(out)]) == 0
    rep = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert abs(rep["achieved_audio"] - 0.25) < 0.05 and rep["error_audio"] == pytest.approx(abs(rep["achieved_audio"] - 0.25))
    # the report's change is the file's: the WAV against the unmodified note's resynthesis
    from darkgan.timbre.space import TimbreSpace, read_audio

    sp = TimbreSpace.load(space)
    _, again = descriptor_synth(sp, instrument_note(sp, "Trumpet", 64), 64, "centroid", 0.25)
    got = audio_descriptors(read_audio(out))["centroid"] / audio_descriptors(again["unmodified"])["centroid"] - 1
    assert got == pytest.approx(rep["achieved_audio"], abs=0.01)
    # a user's note; a darker one
    assert cli_main(["timbre-space", "synth", "--space", space, "--note", str(sax_wav), "--descriptor", "centroid",
                     "--change", "-0.2", "--out", str(out)]) == 0
    rep = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert rep["pitch"] == pytest.approx(62, abs=0.5) and abs(rep["achieved_audio"] + 0.2) < 0.05
    silent = tmp_path / "silent.wav"
    write_wav(silent, quantize(np.zeros(16000, np.float32)))
    assert cli_main(["timbre-space", "synth", "--space", space, "--note", str(silent), "--descriptor", "flatness",
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "silent" in err and str(silent) in err


def test_failed_training_leaves_a_space_intact(tiny_space, tmp_path):
    from darkgan.errors import DarkGANError
    from darkgan.timbre.train import get_preset, train_space
    from darkgan.utils.config import apply_overrides

    root, _ = tiny_space
    before = (root / "space" / "model.safetensors").read_bytes()
    cfg = apply_overrides(get_preset("tiny"), ["train.exclude=Kazoo"])
    with pytest.raises(DarkGANError, match="unknown instrument 'Kazoo'"):
        train_space(root / "data", root / "space", cfg, load_ratings(), progress=False)
    assert (root / "space" / "model.safetensors").read_bytes() == before
    with pytest.raises(CheckpointError):
        from darkgan.timbre.space import TimbreSpace

        TimbreSpace.load(tmp_path)


def test_app_pad_maps_clicks_to_the_plane(tiny_space):
    from darkgan.app.state import _render, pad_click_to_xy
    from darkgan.timbre.explore import pad_extent, pad_figure, pad_to_latent
    from darkgan.timbre.space import TimbreSpace

    space = TimbreSpace.load(tiny_space[0] / "space")
    img = _render(pad_figure(space, 0.5, 0.5, size=320))
    assert img.shape == (320, 320, 3) and img.dtype == np.uint8
    lo, hi = pad_extent(space)
    cello = (space.to_plane(space.instrument("Cello")) - lo) / (hi - lo)
    x, y = pad_click_to_xy(cello[0] * 320, (1 - cello[1]) * 320)
    z = pad_to_latent(space, x, y)
    assert np.allclose(space.to_plane(z), space.to_plane(space.instrument("Cello")), atol=0.02 * (hi - lo).max())


def test_shipped_default_space(sax_wav):
    from darkgan.timbre.space import DEFAULT_SPACE, TimbreSpace
    from darkgan.timbre.train import correlations

    size = sum(p.stat().st_size for p in DEFAULT_SPACE.iterdir())
    assert size < 30e6
    space = TimbreSpace.load()
    assert space.config.model.front_end == "nsgt" and space.config.train.reg_weight > 0
    c = np.stack([space.centroids[n] for n in space.ratings.instruments])
    fit = correlations(np.linalg.norm(c[:, None] - c[None], axis=-1), load_ratings().dissimilarity)
    assert fit["spearman"] == pytest.approx(space.metrics["fit"]["spearman"], abs=1e-4) and fit["spearman"] > 0.85
    z = space.encode_file(sax_wav)
    assert z.shape == (space.latent_dim,) and np.all(np.isfinite(z))


@pytest.fixture(scope="module")
def shipped_teacher(timgm):
    """``(space, nearest)``: the shipped space and ``nearest(wave) -> rated instrument`` whose mean
    teacher embedding (EfficientAT mn04, TimGM renders at MIDI 64, velocities 64/100/127) is the
    closest, by cosine, to the wave's (the carriers and sources are FluidR3 notes)."""
    from darkgan.teacher import load_teacher
    from darkgan.timbre.space import TimbreSpace

    space, teacher = TimbreSpace.load(), load_teacher("efficientat-mn04")
    r = space.ratings
    refs = torch.stack([teacher.embedding(torch.from_numpy(np.stack(
        [render_note(timgm, prog, 64, v)[:16000] for v in (64, 100, 127)]))).mean(0) for prog in r.programs])
    refs = torch.nn.functional.normalize(refs, dim=1)

    def nearest(wave):
        emb = torch.nn.functional.normalize(teacher.embedding(torch.from_numpy(wave[None])), dim=1)
        return r.instruments[int((refs @ emb[0]).argmax())]

    return space, nearest


def test_shipped_space_descriptor_change_keeps_the_instrument(shipped_teacher):
    """Issue 20's check on the shipped space: a brighter flute stays nearest, in the teacher's
    embedding, to real flutes among the 12 rated instruments (the source: the FluidR3 flute). The
    stationary centroid note failed this check for the flute (docs/timbre.md)."""
    from darkgan.timbre.explore import descriptor_synth
    from darkgan.timbre.synthesis import instrument_note

    space, nearest = shipped_teacher
    wave, rep = descriptor_synth(space, instrument_note(space, "Flute", 64), 64, "centroid", 0.2)
    assert rep["error_audio"] < 0.03 and 0.1 < rep["latent_shift"] < 1.0
    assert nearest(wave) == "Flute"


def _contrast_db(wave):
    """Power of the first 100 ms over the last 200 ms of a 1 s note (dB)."""
    return 10 * np.log10(np.mean(wave[:1600].astype(np.float64) ** 2) / np.mean(wave[-3200:].astype(np.float64) ** 2))


@pytest.mark.parametrize("a, b", [("Piano", "Violin"), ("Flute", "Clarinet")])
def test_shipped_point_synthesis_sounds_like_a_note(shipped_teacher, a, b):
    """Issue 20's synthesis from a latent point: 20 % of the way from ``a``'s centroid to ``b``'s
    (``a``'s is still the nearest) the note keeps its carrier's attack/decay (the piano decays by
    ~17 dB from its first 100 ms to its last 200; the flute swells by ~8 dB), the asked pitch, is nearest ``a`` for the
    teacher, and has moved towards ``b``; the held frame it replaces is flat and missed ``a``."""
    from darkgan.timbre.space import estimate_pitch
    from darkgan.timbre.synthesis import instrument_note, point_synth

    space, nearest = shipped_teacher
    za, zb = space.instrument(a), space.instrument(b)
    z = 0.8 * za + 0.2 * zb
    assert min(space.centroids, key=lambda n: np.linalg.norm(space.centroids[n] - z)) == a
    wave, rep = point_synth(space, z, 64)
    assert rep["carriers"][0]["instrument"] == a and rep["carriers"][0]["weight"] > 0.9
    carrier = _contrast_db(instrument_note(space, a, 64))  # piano +17 dB, flute -8 dB
    assert abs(_contrast_db(wave) - carrier) < 0.5 * abs(carrier)
    assert abs(estimate_pitch(wave) - 64) < 0.5 and nearest(wave) == a
    held = space.synth_held(z, 64)
    assert abs(_contrast_db(held) - carrier) > 0.5 * abs(carrier) and nearest(held) != a
    at_a = space.synth(za, 64)
    assert np.linalg.norm(space.encode(wave, 64) - zb) < np.linalg.norm(space.encode(at_a, 64) - zb)


def test_point_synthesis_bad_input_and_user_carrier(tiny_space, sax_wav, tmp_path, capsys):
    space, out = str(tiny_space[0] / "space"), str(tmp_path / "x.wav")
    bad = [(["synth", "--latent", "1,2,3", "--out", out], "latent point must be 4 finite numbers"),
           (["synth", "--instrument", "Oboe", "--pitch", "80", "--out", out], "pitch 80 outside the space's range 60-71"),
           (["path", "Cello", "Flute", "--pitch", "59", "--out", out], "pitch 59 outside"),
           (["synth", "--map-xy", "1", "--out", out], "expected 2 numbers"),
           (["synth", "--note", str(sax_wav), "--out", out], "synth needs a point")]
    for args, words in bad:
        assert cli_main(["timbre-space", *args[:1], "--space", space, *args[1:]]) == 2, args
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.wav").exists()
    # the user's note as the carrier, played at its own pitch (pYIN: 62), moved to the flute's centroid
    assert cli_main(["timbre-space", "synth", "--space", space, "--instrument", "Flute", "--note", str(sax_wav),
                     "--out", out]) == 0
    rep = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert rep["carriers"][0]["note"] == "user" and rep["carriers"][0]["latent_move"] > 0.1
    from darkgan.timbre.space import estimate_pitch, read_audio

    assert rep["pitch"] == pytest.approx(62, abs=0.5) and abs(estimate_pitch(read_audio(out)) - 62) < 0.5
