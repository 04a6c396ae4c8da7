"""SING (darkgan.sing): split, model, losses, three-stage training with resume, generation API
and CLI, Table 1 — on the real rendered notes of the ``rendered_dataset`` fixture (tiny preset)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from darkgan.cli import main
from darkgan.errors import DarkGANError, DataError
from darkgan.sing.config import get_config
from darkgan.sing.data import load_notes, pitch_completion_split
from darkgan.sing.losses import spectral_loss, wav_mse
from darkgan.sing.model import Sing, pad_note, squared_hann


@pytest.fixture(scope="module")
def sing_run(rendered_dataset, tmp_path_factory):
    """A tiny SING run through all three stages (12 steps) on the 10 rendered instruments."""
    from darkgan.sing.train import train

    out = tmp_path_factory.mktemp("sing") / "run"
    r = train(rendered_dataset, out, preset="tiny", n_instruments=0, progress=False)
    assert r["stage"] == "done" and r["step"] == 12
    return out


def test_pitch_completion_split_holds_out_pitches_per_instrument(rendered_dataset):
    from darkgan.data.nsynth import NoteDataset

    recs = NoteDataset(rendered_dataset).records  # 10 instruments x pitches 48, 60, 67
    for fraction, per_instrument in ((0.1, 1), (0.5, 2)):  # round(0.3) -> at least 1; round(1.5) = 2
        split = pitch_completion_split(recs, fraction, seed=0)
        assert split == pitch_completion_split(recs, fraction, seed=0)
        by_inst: dict = {}
        for r in recs:
            by_inst.setdefault(r["instrument_str"], {}).setdefault(r["pitch"], set()).add(split[r["note_str"]])
        for inst, pitches in by_inst.items():
            assert all(len(s) == 1 for s in pitches.values()), inst  # every velocity of a pitch together
            assert sum(s == {"test"} for s in pitches.values()) == per_instrument, inst
    seeds = [tuple(sorted(k for k, v in pitch_completion_split(recs, 0.1, seed=s).items() if v == "test"))
             for s in range(4)]
    assert len(set(seeds)) > 1
    with pytest.raises(DataError, match="fraction"):
        pitch_completion_split(recs, 1.0)


def test_overlap_add_and_alignment():
    w = squared_hann(1024)
    assert torch.allclose(w.reshape(4, 256).sum(0), torch.ones(256), atol=1e-6)
    m = get_config("paper").model
    assert m.padded_samples == 68608 and (m.padded_samples - m.kernel_size) // m.stride + 1 == 265  # the paper's N
    m = get_config("tiny").model
    torch.manual_seed(0)
    s = Sing(m, 2, 3, 4)
    x = torch.randn(1, m.n_samples) * 0.1
    x[:, -m.stride:] = 0  # so that delaying it by one stride loses nothing
    e = s.encoder(pad_note(x, m))
    e_shift = s.encoder(pad_note(torch.nn.functional.pad(x, (m.stride, 0))[:, :m.n_samples], m))
    assert torch.allclose(e[..., :-1], e_shift[..., 1:], atol=1e-5)  # one stride later = one frame later
    assert s.autoencode(x).shape == x.shape and s(*(torch.zeros(2, dtype=torch.long),) * 3).shape == (2, m.n_samples)


def test_spectral_loss_ignores_phase_that_mse_punishes(rendered_dataset):
    x = torch.from_numpy(sf.read(next((rendered_dataset / "audio").glob("*.wav")), dtype="float32")[0])[None]
    assert float(spectral_loss(x, x)) == 0.0
    assert float(spectral_loss(-x, x)) < 1e-5 < float(wav_mse(-x, x))
    noisy = x + 0.05 * torch.randn_like(x)
    assert float(spectral_loss(noisy, x)) > 1e-3


def test_three_stages_checkpoints_and_exact_resume(rendered_dataset, sing_run, tmp_path):
    from darkgan.sing.checkpoint import load
    from darkgan.sing.train import train

    cfg_json = json.loads((sing_run / "LATEST").read_text().strip() and (sing_run / (sing_run / "LATEST").read_text().strip() / "config.json").read_text())
    assert cfg_json["kind"] == "sing-checkpoint" and cfg_json["stage"] == "done" and cfg_json["preset"] == "tiny"
    assert len(cfg_json["vocabulary"]["instruments"]) == 10
    split = json.loads((sing_run / "split.json").read_text())["splits"]
    assert sorted(set(split.values())) == ["test", "train"] and list(split.values()).count("test") == 10
    out = tmp_path / "resumed"
    for _ in range(3):  # stop inside stage 1, inside stage 2, then finish
        r = train(rendered_dataset if not out.exists() else None, out, preset="tiny", n_instruments=0,
                  resume=out.exists(), progress=False, max_steps=5)
    assert r["step"] == 12 and r["stage"] == "done"
    a, b = load(sing_run)[0].state_dict(), load(out)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(DarkGANError, match="--resume"):
        train(rendered_dataset, out, preset="tiny", progress=False)
    r = train(None, out, resume=True, overrides=["train.e2e_steps=6"], progress=False, until_step=13)  # extend
    meta = load(out)[3]
    assert (r["step"], r["stopped"]) == (13, "until-step") and meta["train"]["e2e_steps"] == 6
    assert meta["overrides"][-1] == "train.e2e_steps=6" and train(None, out, resume=True, progress=False)["step"] == 14


def test_autoencoder_learns_on_real_notes(rendered_dataset, tmp_path):
    from darkgan.sing.evaluate import score
    from darkgan.sing.train import train

    out = tmp_path / "ae"
    r0 = train(rendered_dataset, out, preset="tiny", n_instruments=0, progress=False, max_steps=1,
               overrides=["train.ae_steps=120", "train.lstm_steps=0", "train.e2e_steps=0", "train.checkpoint_every=100"])
    from darkgan.sing.checkpoint import load

    model0, cfg, _, _ = load(out)
    notes = load_notes(rendered_dataset, cfg.model.n_samples, n_instruments=0, progress=False)
    before = score(model0, notes, notes.indices("train"), cfg)["ae"]["spectral"]
    train(None, out, resume=True, progress=False)
    after = score(load(out)[0], notes, notes.indices("train"), cfg)["ae"]["spectral"]
    assert r0["step"] == 1 and after < 0.9 * before, (before, after)


def test_short_notes_are_refused(rendered_dataset, tmp_path):
    root = tmp_path / "short"
    shutil.copytree(rendered_dataset, root)
    wav = next((root / "audio").glob("*.wav"))
    sf.write(wav, sf.read(wav, dtype="int16")[0][:16000], 16000, subtype="PCM_16")
    with pytest.raises(DataError, match="shorter than the 64000 samples"):
        load_notes(root, 64000, n_instruments=0, progress=False)


def test_api_and_generate_cli(sing_run, tmp_path, capsys):
    from darkgan.sing.api import SingSynth

    s = SingSynth.load(sing_run)
    inst = s.instruments[0]
    wave = s.generate(inst, 60, 100)
    assert wave.shape == (8000,) and wave.dtype == np.float32 and np.isfinite(wave).all()
    assert np.allclose(s.generate_batch([inst, inst], [60, 48], [100, 100])[0], wave, atol=1e-6)
    with pytest.raises(DarkGANError, match=f"unknown instrument .*closest: [^(]*{inst}"):
        s.generate(inst[:-1] + "9", 60, 100)
    with pytest.raises(DarkGANError, match="outside MIDI 48..67"):
        s.generate(inst, 72, 100)
    with pytest.raises(DarkGANError, match=r"knows \(100\)"):
        s.generate(inst, 60, 64)
    assert main(["generate", "--checkpoint", str(sing_run), "--list-instruments"]) == 0
    assert capsys.readouterr().out.split() == s.instruments
    out = tmp_path / "notes"
    assert main(["generate", "--checkpoint", str(sing_run), "--instrument", inst, "--pitch", "60", "48",
                 "--velocity", "100", "--out", str(out)]) == 0
    got, sr = sf.read(out / "note_00000_p060.wav", dtype="float32")
    assert sr == 16000 and np.allclose(got, wave, atol=1 / 16384)
    assert [n["pitch"] for n in json.loads((out / "generate.json").read_text())["notes"]] == [60, 48]
    assert main(["generate", "--checkpoint", str(sing_run), "--instrument", "nope", "--out", str(out)]) == 2
    assert main(["generate", "--checkpoint", str(sing_run), "--instrument", inst, "--velocity", "3",
                 "--out", str(out)]) == 2
    assert main(["generate", "--instrument", inst, "--out", str(out)]) == 2  # the shipped DarkGAN checkpoint
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("darkgan: error:") for e in err) and "velocity 3" in err[1]
    assert "need a SING checkpoint" in err[2]
    assert sorted(p.name for p in out.iterdir()) == ["generate.json", "note_00000_p060.wav", "note_00001_p048.wav"]
    assert main(["sing", "export", "--checkpoint", str(sing_run), "--out", str(tmp_path / "half")]) == 0
    half = SingSynth.load(tmp_path / "half")
    assert half.meta["dtype"] == "float16" and not (tmp_path / "half" / "optim.pt").exists()
    assert np.abs(half.generate(inst, 60, 100) - wave).max() < 1e-2


def test_table1_rows(sing_run, tmp_path):
    from darkgan.sing.evaluate import format_table1, plot_examples, table1

    rows = table1({"spectral": str(sing_run)}, n=0)
    assert [r["model"] for r in rows] == ["Autoencoder", "SING", "(silence)"]
    for r in rows:
        assert all(np.isfinite(v) and v > 0 for d in (r["spectral"], r["wav"]) for v in d.values())
    assert "SING" in format_table1(rows)
    ae = table1({"spectral": str(sing_run), "stage1": str(sing_run)}, n=0, ae_only=("stage1",))
    assert [r["model"] for r in ae] == ["Autoencoder", "SING", "(silence)", "Autoencoder"]
    assert ae[3]["spectral"] == ae[0]["spectral"]
    import matplotlib.image as mpimg

    plot_examples(tmp_path / "one.png", str(sing_run), n=2)
    plot_examples(tmp_path / "two.png", {"a": str(sing_run), "b": str(sing_run)}, n=2)
    one, two = mpimg.imread(tmp_path / "one.png"), mpimg.imread(tmp_path / "two.png")
    assert two.shape[0] > 1.3 * one.shape[0] and two.shape[1] == one.shape[1]  # real + 2 rows vs real + 1
