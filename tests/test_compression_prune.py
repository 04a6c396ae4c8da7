"""Structured channel pruning (issue 6, item 3)."""
from __future__ import annotations

import json

import pytest
import torch

from darkgan.cli import main
from darkgan.compression.bench import count_macs
from darkgan.compression.prune import apply_plan, check_ratio, drop_convs, prune_generator, pruning_plan
from darkgan.compression.synthetic import random_checkpoint
from darkgan.errors import DarkGANError
from darkgan.models.checkpoint import load_generator
from darkgan.models.config import apply_overrides, get_preset
from darkgan.models.generator import Generator


def _gen(overrides=(), k=5, seed=0):
    cfg = apply_overrides(get_preset("tiny"), ["model.channels=[16,16,16,16,8,8]", *overrides])
    torch.manual_seed(seed)
    g = Generator(cfg.model, 27, k).eval()
    with torch.no_grad():
        for n, p in g.named_parameters():
            if n.endswith("bias"):
                p.normal_(0, 0.1)
    return g


def _inputs(g, b=2):
    gen = torch.Generator().manual_seed(3)
    return (torch.randn(b, g.cfg.latent_dim, generator=gen), torch.randint(0, g.n_pitches, (b,), generator=gen),
            torch.rand(b, g.n_attributes, generator=gen))


@pytest.mark.parametrize("importance", ["l1", "l2", "fpgm", "random"])
def test_pruning_reduces_params_and_macs_and_runs(importance):
    g = _gen()
    p = prune_generator(g, 0.5, importance)
    assert list(p.cfg.channels) == [8, 8, 8, 8, 4, 4]
    macs0, params0 = count_macs(g, 5)
    macs1, params1 = count_macs(p, 5)
    assert params1 < params0 and macs1 < 0.5 * macs0
    z, pi, a = _inputs(g)
    with torch.no_grad():
        out = p(z, pi, a)
    assert out.shape == (2, 2, 1024, 32) and torch.isfinite(out).all()
    # the original is untouched
    assert list(g.cfg.channels) == [16, 16, 16, 16, 8, 8]


def test_pruned_channels_are_removed_consistently():
    """With pixel norm off, channels whose activation is exactly 0 can be removed without
    changing the output: checks rows/columns, the format layer and the equalized-LR rescaling."""
    g = _gen(["model.pixel_norm=false"])
    plan = pruning_plan(g, 0.25, "l2")
    with torch.no_grad():
        for name, idx in plan.items():  # zero the producers of the channels to be removed
            out = idx["out"]
            if not out:
                continue
            if name == "format":
                h0, w0 = g.format.shape
                for c in out:
                    g.format.weight[c * h0 * w0:(c + 1) * h0 * w0] = 0
                g.format.bias[out] = 0
            else:
                _, s, i = name.split(".")
                conv = g.blocks[int(s)][int(i)]
                conv.weight[out] = 0
                conv.bias[out] = 0
    p = apply_plan(g, plan)
    assert sum(q.numel() for q in p.parameters()) < sum(q.numel() for q in g.parameters())
    z, pi, a = _inputs(g)
    with torch.no_grad():
        ref, out = g(z, pi, a), p(z, pi, a)
    assert (ref - out).abs().max() < 1e-5 * ref.abs().max()


def test_drop_convs_keeps_the_first_convolution_of_every_block():
    """With ReLU activations (slope 0: idempotent) and no pixel norm, and every second convolution
    set to the identity kernel, the generator without them computes the same: the kept layers'
    weights (format, first convs, outputs) are copied to the right places."""
    g = _gen(["model.leaky_slope=0.0", "model.pixel_norm=false"])
    assert g.cfg.convs_per_block == 2
    with torch.no_grad():
        for convs in g.blocks:
            second = convs[1]
            second.weight.zero_()
            second.weight[:, :, 1, 1] = torch.eye(second.weight.shape[0]) / second.scale
            second.bias.zero_()
    d = drop_convs(g, 1)
    assert d.cfg.convs_per_block == 1 and all(len(c) == 1 for c in d.blocks)
    assert count_macs(d, 5)[0] < 0.6 * count_macs(g, 5)[0]
    z, pi, a = _inputs(g)
    with torch.no_grad():
        ref, out = g(z, pi, a), d(z, pi, a)
    assert (ref - out).abs().max() < 1e-5 * ref.abs().max()
    for bad in (0, 3):
        with pytest.raises(DarkGANError, match="convs-per-block"):
            drop_convs(g, bad)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.2, "abc", float("nan")])
def test_ratio_outside_open_interval_is_a_clear_error(bad):
    with pytest.raises(DarkGANError, match="ratio"):
        check_ratio(bad)


def test_prune_cli(tmp_path, capsys):
    ck = random_checkpoint(tmp_path / "gen", "tiny", 5, critic=False, overrides=["model.channels=[16,16,16,16,8,8]"])
    assert main(["prune", "--checkpoint", str(ck), "--ratio", "1.0", "--out", str(tmp_path / "p")]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert main(["prune", "--checkpoint", str(tmp_path / "nope"), "--ratio", "0.5", "--out", str(tmp_path / "p")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["prune", "--checkpoint", str(ck), "--ratio", "0.5", "--steps", "0", "--out", str(tmp_path / "p")]) == 0
    assert "MACs/note" in capsys.readouterr().out
    g, cfg = load_generator(tmp_path / "p")
    assert list(g.cfg.channels) == [8, 8, 8, 8, 4, 4] and cfg.extra["pruning"]["ratio"] == 0.5
    assert main(["prune", "--checkpoint", str(ck), "--ratio", "0.5", "--steps", "0", "--out", str(tmp_path / "p")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["prune", "--checkpoint", str(ck), "--ratio", "0.5", "--convs-per-block", "1", "--steps", "0",
                 "--out", str(tmp_path / "c1")]) == 0
    assert "1 conv(s) per block" in capsys.readouterr().out
    g, cfg = load_generator(tmp_path / "c1")
    assert g.cfg.convs_per_block == 1 and cfg.config.preset == "pruned-0.5-l2-c1"
    assert cfg.extra["pruning"]["convs_per_block"] == 1
    # an interrupted (or finished) recovery distillation of the same pruning goes on instead of failing
    rec = ["prune", "--checkpoint", str(ck), "--ratio", "0.5", "--conditioning", "uniform", "--batch-size", "2",
           "--losses", "output", "--out", str(tmp_path / "r")]
    assert main([*rec, "--steps", "2"]) == 0
    assert main([*rec, "--steps", "3"]) == 0
    assert "after 3 recovery steps" in capsys.readouterr().out
    assert json.loads((tmp_path / "r" / "train_state.json").read_text())["step"] == 3
    assert main([*rec, "--steps", "3", "--ratio", "0.25"]) == 2  # another pruning: refused
    assert "exists" in capsys.readouterr().err
