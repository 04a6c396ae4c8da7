"""Configs (presets, overrides) and checkpoint I/O (round trip, fp16 export, bad checkpoints)."""
from __future__ import annotations

import json

import pytest
import torch

from darkgan.errors import CheckpointError, DarkGANError
from darkgan.models.checkpoint import (FORMAT_VERSION, CheckpointConfig, export_generator, load_generator,
                                       read_checkpoint_config, save_checkpoint, save_run_checkpoint,
                                       verify_checkpoint)
from darkgan.models.config import Config, apply_overrides, get_preset
from darkgan.models.critic import Critic
from darkgan.models.generator import Generator
from darkgan.models.layers import fold_equalized_lr

NORM = {"mean": [-5.0, 0.0], "std": [2.5, 0.6]}


# ------------------------------------------------------------------------------------- configs

def test_presets_follow_the_reference():
    paper = get_preset("paper")
    assert paper.model.channels == (256, 128, 128, 128, 128, 64)
    assert paper.model.down_factors == ((32, 8), (16, 4), (8, 2), (4, 1), (2, 1), (1, 1))
    assert paper.model.latent_dim == 32 and paper.model.leaky_slope == 0.02
    t = paper.train
    assert t.batch_size == (30, 30, 20, 20, 20, 10)
    assert t.iterations == (128_000, 200_000, 200_000, 200_000, 200_000, 300_000)
    assert t.fade_in_jumps == (0, 600, 600, 600, 600, 1200) and t.alpha_jump_size == 32
    assert (t.lr, t.betas, t.gp_lambda, t.drift_epsilon) == (0.001, (0.0, 0.99), 10.0, 0.001)
    assert t.loss_weights["g_attr"] == t.loss_weights["d_attr"] == 10.0
    for name in ("small", "tiny"):
        cfg = get_preset(name)
        assert cfg.model.scale_shape(cfg.model.n_scales - 1) == (1024, 32)
    with pytest.raises(DarkGANError, match="unknown preset 'huge'.*paper, small, small-control, tiny"):
        get_preset("huge")


def test_overrides_are_typed_and_checked():
    cfg = apply_overrides(get_preset("tiny"), ["train.batch_size=8", "model.channels=[8,8,8,8,8,8]",
                                               "train.lr=5e-4", "train.ema=false", "train.loss_weights.g_attr=3",
                                               "train.betas=(0.5,0.9)"])
    assert cfg.train.batch_size == (8,) * 6 and cfg.model.channels == (8,) * 6
    assert cfg.train.lr == 5e-4 and cfg.train.ema is False and cfg.train.loss_weights["g_attr"] == 3.0
    assert cfg.train.betas == (0.5, 0.9)
    assert cfg.overrides[-1] == "train.betas=(0.5,0.9)"
    bad = {
        "train.nope=1": "unknown key 'train.nope'; known train keys: .*batch_size",
        "optim.lr=1": "must start with 'model.' or 'train.'",
        "train.lr=fast": "expected a number",
        "train.iterations=[1,2]": "train.iterations has 2 entries",
        "train.ema=maybe": "expected true/false",
        "train.loss_weights.foo=1": "unknown loss weight",
        "train.lr": "expected section.key=value",
        "model.down_factors=[[32,8],[16,4],[8,2],[4,1],[2,1],[2,1]]": "must end with",
    }
    for item, msg in bad.items():
        with pytest.raises(DarkGANError, match=msg):
            apply_overrides(get_preset("tiny"), [item])


def test_config_dict_round_trip_and_print():
    cfg = apply_overrides(get_preset("small"), ["train.seed=3"])
    d = json.loads(json.dumps(cfg.to_dict()))
    back = Config.from_dict(d)
    assert back.to_dict() == cfg.to_dict() and back.model == cfg.model and back.train == cfg.train
    text = cfg.format()
    assert "# preset: small" in text and "train.seed = 3" in text and "model.channels = " in text
    with pytest.raises(DarkGANError, match="unknown key .model.chanels.; known model keys: .*channels"):
        Config.from_dict({"model": {"chanels": [1]}, "train": {}})


# --------------------------------------------------------------------------------- checkpoints

def _meta(cfg: Config, k: int = 3) -> CheckpointConfig:
    return CheckpointConfig(config=cfg, attributes=[f"Attr {i}" for i in range(k)], class_indices=list(range(0, 2 * k, 2)),
                            pitch_range=(60, 64), normalizer=NORM, teacher={"id": "efficientat-mn04", "weights_sha256": "ab" * 32},
                            temperature=2.0, attributes_enabled=k > 0, step=12, scale=5, alpha=1.0)


def _models(cfg: Config, k: int = 3):
    torch.manual_seed(0)
    return Generator(cfg.model, 5, k), Critic(cfg.model, 5, k)


def test_checkpoint_round_trip_bit_exact(tmp_path):
    cfg = get_preset("tiny")
    G, D = _models(cfg)
    ema = Generator(cfg.model, 5, 3)
    opt = torch.optim.Adam(G.parameters())
    G(torch.randn(2, 8), torch.tensor([0, 1]), torch.rand(2, 3)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "ck", G, _meta(cfg), critic=D, ema=ema,
                           optim_states={"g": opt.state_dict()}, train_state={"step": 12})
    g2, c2 = load_generator(path)
    raw_export = export_generator(path, tmp_path / "raw", weights="raw")  # the trained G, not its EMA
    g_raw, c_raw = load_generator(raw_export)
    assert c_raw.generator_weights == "raw" and all(torch.equal(v, G.state_dict()[k]) for k, v in g_raw.state_dict().items())
    assert c2.generator_weights == "ema" and c2.pitch_range == (60, 64) and c2.attributes == ["Attr 0", "Attr 1", "Attr 2"]
    assert c2.class_indices == [0, 2, 4] and c2.teacher["id"] == "efficientat-mn04" and c2.temperature == 2.0
    assert c2.config.to_dict() == cfg.to_dict() and c2.step == 12 and c2.scale == 5
    for k, v in ema.state_dict().items():
        assert torch.equal(g2.state_dict()[k], v), k
    raw, _ = load_generator(path, weights="raw")
    for k, v in G.state_dict().items():
        assert torch.equal(raw.state_dict()[k], v), k
    meta = json.loads((path / "config.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["normalizer"] == NORM
    assert {"git_commit", "darkgan_version", "preset", "overrides", "model", "train", "vocabulary"} <= set(meta)
    verify_checkpoint(path)
    assert c2.get_normalizer().to_dict() == NORM


def test_half_export_and_run_folders(tmp_path):
    cfg = get_preset("paper")
    G = Generator(cfg.model, 27, 128)
    meta = _meta(cfg, 128)
    meta.pitch_range = (44, 70)
    run = tmp_path / "run"
    for step in (1, 2, 3):
        save_run_checkpoint(run, step, G, meta, keep=2)
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-00000002", "checkpoint-00000003"]
    assert read_checkpoint_config(run).path.name == "checkpoint-00000003"
    out = export_generator(run, tmp_path / "shipped", half=True)
    with pytest.raises(CheckpointError, match="no raw generator weights"):  # trained without an EMA
        export_generator(run, tmp_path / "raw", weights="raw")
    size = (out / "generator.safetensors").stat().st_size
    assert size < 30e6 and size < 0.55 * (run / "checkpoint-00000003" / "generator.safetensors").stat().st_size
    g2, c2 = load_generator(out)
    assert c2.dtype == "float16" and next(g2.parameters()).dtype == torch.float32
    for k, v in G.state_dict().items():
        torch.testing.assert_close(g2.state_dict()[k], v.half().float())


def test_bad_checkpoints_raise_checkpoint_errors(tmp_path):
    cfg = get_preset("tiny")
    G, _ = _models(cfg)
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "nothing")
    good = save_checkpoint(tmp_path / "good", G, _meta(cfg))

    import shutil

    def variant(name):
        p = tmp_path / name
        shutil.copytree(good, p)
        return p

    p = variant("incomplete")
    (p / "COMPLETE").unlink()
    with pytest.raises(CheckpointError, match="incomplete checkpoint"):
        load_generator(p)
    p = variant("corrupt")
    (p / "generator.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="generator.safetensors: checksum mismatch"):
        load_generator(p)  # the recorded SHA-256 catches it before the safetensors parser
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        verify_checkpoint(p)
    meta = json.loads((p / "config.json").read_text())
    del meta["files"]  # without a recorded sum, the parser still refuses the garbage
    (p / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="corrupt weights"):
        load_generator(p)
    p = variant("future")
    meta = json.loads((p / "config.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (p / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 2 is not supported"):
        load_generator(p)
    p = variant("badjson")
    (p / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: corrupt"):
        load_generator(p)
    p = variant("mismatch")
    meta = json.loads((p / "config.json").read_text())
    meta["model"]["channels"] = [16, 8, 8, 8, 4, 4]
    (p / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="shape"):
        load_generator(p)
    p = variant("notckpt")
    (p / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a DarkGAN checkpoint"):
        load_generator(p)
    fold_equalized_lr(G)
    with pytest.raises(CheckpointError, match="folded"):
        save_checkpoint(tmp_path / "folded", G, _meta(cfg))
    assert not (tmp_path / "folded").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_export_with_another_synthesis_fade(tmp_path, capsys):
    """``darkgan export-generator --synthesis-fade 1536`` of the shipped student: the same float16
    weights bit for bit and its bank, played with a 96 ms fade (its notes change in their last 1,536
    samples only), the fade it was trained with (the data's 1,024) kept as ``synthesis_fade_trained``
    through every re-export; an out-of-range fade is a one-line error that writes nothing."""
    import numpy as np

    from darkgan.cli import main
    from darkgan.generation.api import DarkGAN

    src = DarkGAN.load("student")
    out = tmp_path / "faded"
    assert main(["export-generator", str(src.config.path), "--half", "--synthesis-fade", "1536",
                 "--out", str(out)]) == 0
    faded = DarkGAN.load(out)
    assert faded.config.model.synthesis_fade == 1536 != src.config.model.synthesis_fade
    assert faded.config.extra["synthesis_fade_trained"] == 1024
    from safetensors.torch import load_file

    mine, theirs = load_file(out / "generator.safetensors"), load_file(src.config.path / "generator.safetensors")
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert (out / "attribute_bank.safetensors").is_file()
    back = tmp_path / "back"  # played with the trained fade again: nothing left to record
    assert main(["export-generator", str(out), "--synthesis-fade", "1024", "--out", str(back)]) == 0
    assert "synthesis_fade_trained" not in DarkGAN.load(back).config.extra
    z, pitch = np.random.default_rng(0).standard_normal((2, src.latent_dim)), [50, 62]
    alpha = src.validation_attributes()[:2]
    a, b = src.generate_batch(z, pitch, alpha).numpy(), faded.generate_batch(z, pitch, alpha).numpy()
    assert np.array_equal(a[:, :-1536], b[:, :-1536]) and not np.allclose(a[:, -1536:], b[:, -1536:])
    bad = tmp_path / "bad"
    assert main(["export-generator", str(src.config.path), "--synthesis-fade", "4096", "--out", str(bad)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert not bad.exists() and len(err) == 1 and "synthesis_fade" in err[0] and "4096" in err[0]
