"""Generator, critic and layers: shapes, fade-in continuity, the format layer, equalized LR."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from darkgan.models.config import ModelConfig, get_preset
from darkgan.models.critic import Critic
from darkgan.models.generator import FormatLayer, Generator, count_parameters
from darkgan.models.layers import (EqualizedConv2d, EqualizedLinear, assert_shape, fold_equalized_lr, is_folded,
                                   minibatch_stddev, pixel_norm)

P, K = 5, 7


def small_cfg(**kw) -> ModelConfig:
    base = dict(latent_dim=8, channels=(16, 12, 8, 6, 4, 4), minibatch_std_group=2)
    base.update(kw)
    return ModelConfig(**base)


def inputs(cfg: ModelConfig, b: int = 2, k: int = K, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, cfg.latent_dim, generator=g), torch.randint(0, P, (b,), generator=g),
            torch.rand(b, k, generator=g))


def test_paper_scale_shapes_and_size():
    cfg = get_preset("paper").model
    shapes = [cfg.scale_shape(s) for s in range(cfg.n_scales)]
    assert shapes == [(32, 4), (64, 8), (128, 16), (256, 32), (512, 32), (1024, 32)]
    assert [cfg.up_factor(s) for s in range(1, 6)] == [(2, 2), (2, 2), (2, 2), (2, 1), (2, 1)]
    # paper Sec. 4.3: 128 attributes + 32 latent + 26 pitch classes (44..70 has 27 values)
    g = Generator(cfg, 27, 128)
    n = count_parameters(g)
    assert 8.5e6 < n < 9.0e6, n  # the facts file measures 8.7 M parameters for the reference G
    assert 2 * n < 30e6  # the float16 shipped checkpoint stays far below 30 MB


@pytest.mark.parametrize("k", [K, 0])
def test_shapes_every_scale(k):
    cfg = small_cfg()
    G, D = Generator(cfg, P, k), Critic(cfg, P, k)
    z, p, a = inputs(cfg, k=k)
    with torch.no_grad():
        for s in range(cfg.n_scales):
            x = G(z, p, a if k else None, scale=s, alpha=0.5)
            assert x.shape == (2, 2, *cfg.scale_shape(s))
            assert torch.isfinite(x).all()
            score, attr, pitch = D(x, scale=s, alpha=0.5)
            assert score.shape == (2,) and attr.shape == (2, k) and pitch.shape == (2, P)
        assert G(z, p, a if k else None).shape == (2, 2, 1024, 32)  # default: final scale, alpha 1


def test_generator_fade_in_continuity():
    """alpha = 0 at scale s gives exactly the (nearest-up-sampled) scale s-1 output; alpha = 1 the
    new scale alone; intermediate alphas interpolate linearly."""
    cfg = small_cfg()
    G = Generator(cfg, P, K)
    z, p, a = inputs(cfg)
    with torch.no_grad():
        for s in range(1, cfg.n_scales):
            prev = G(z, p, a, scale=s - 1, alpha=1.0)
            up = F.interpolate(prev, size=cfg.scale_shape(s), mode="nearest")
            x0 = G(z, p, a, scale=s, alpha=0.0)
            x1 = G(z, p, a, scale=s, alpha=1.0)
            torch.testing.assert_close(x0, up, rtol=0, atol=1e-6)
            torch.testing.assert_close(G(z, p, a, scale=s, alpha=0.25), 0.75 * up + 0.25 * x1, rtol=1e-5, atol=1e-5)
            assert not torch.allclose(x1, up)


def test_critic_fade_in_continuity():
    """alpha = 0 at scale s equals the scale s-1 critic on the average-pooled input."""
    cfg = small_cfg(minibatch_std_group=0)
    D = Critic(cfg, P, K)
    with torch.no_grad():
        for s in range(1, cfg.n_scales):
            x = torch.randn(2, 2, *cfg.scale_shape(s))
            k = cfg.up_factor(s)
            low = D(F.avg_pool2d(x, k, k), scale=s - 1, alpha=1.0)
            out = D(x, scale=s, alpha=0.0)
            for a, b in zip(out, low):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_format_layer_equals_padded_convolution():
    """The linear format layer == the reference's conv over the zero-padded input column."""
    torch.manual_seed(0)
    layer = FormatLayer(in_features=11, out_channels=6, shape=(32, 4))
    layer.bias.data.normal_()
    x = torch.randn(5, 11)
    fast = layer(x)
    naive = layer.naive_forward(x)
    assert fast.shape == naive.shape == (5, 6, 32, 4)
    torch.testing.assert_close(fast, naive, rtol=1e-5, atol=1e-5)
    # the naive form really is a convolution of an H0 x W0 kernel over a (2H0-1) x (2W0-1) input
    conv = torch.nn.Conv2d(11, 6, (32, 4))
    conv.weight.data = layer.conv_weight() * layer.scale
    conv.bias.data = layer.bias.data.clone()
    col = torch.zeros(5, 11, 63, 7)
    col[:, :, 31, 3] = x
    torch.testing.assert_close(conv(col), fast, rtol=1e-5, atol=1e-5)


def test_generator_uses_format_layer_like_reference():
    cfg = small_cfg()
    G = Generator(cfg, P, K)
    z, p, a = inputs(cfg)
    v = G.input_vector(z, p, a)
    assert v.shape == (2, cfg.latent_dim + P + K)
    torch.testing.assert_close(v[:, cfg.latent_dim:cfg.latent_dim + P], F.one_hot(p, P).float())
    torch.testing.assert_close(v[:, :cfg.latent_dim], pixel_norm(z))
    torch.testing.assert_close(v[:, cfg.latent_dim + P:], a)


def test_equalized_layers_and_folding():
    torch.manual_seed(0)
    conv = EqualizedConv2d(4, 6, 3, padding=1)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.2)
    assert conv.scale == pytest.approx(math.sqrt(2 / (4 * 9)))
    x = torch.randn(2, 4, 8, 5)
    ref = F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1)
    torch.testing.assert_close(conv(x), ref)
    lin = EqualizedLinear(10, 3)
    assert lin.scale == pytest.approx(math.sqrt(2 / 10))

    cfg = small_cfg()
    G = Generator(cfg, P, K)
    z, p, a = inputs(cfg)
    with torch.no_grad():
        before = G(z, p, a)
        fold_equalized_lr(G)
        assert is_folded(G)
        after = G(z, p, a)
        fold_equalized_lr(G)  # idempotent
        torch.testing.assert_close(G(z, p, a), after)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


def test_channels_last_gives_same_output():
    cfg = small_cfg()
    G, D = Generator(cfg, P, K), Critic(cfg, P, K)
    z, p, a = inputs(cfg)
    with torch.no_grad():
        ref = G(z, p, a)
        dref = D(ref)
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
        out = G(z, p, a)
        dout = D(out.contiguous(memory_format=torch.channels_last))
    # identical maths; only the summation order of the convolutions differs (pixel norm over
    # 4 channels can amplify those last-bit differences at isolated pixels)
    assert (out - ref).abs().mean() < 1e-5 and (out - ref).abs().max() < 0.05
    for u, v in zip(dout, dref):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-4)


def test_pixel_norm_and_minibatch_stddev():
    x = torch.randn(6, 5, 3, 2)
    y = pixel_norm(x)
    torch.testing.assert_close(y.square().mean(1), torch.ones(6, 3, 2), rtol=1e-4, atol=1e-4)
    out = minibatch_stddev(x, group_size=3)
    assert out.shape == (6, 6, 3, 2)
    # group of sample i is i % (B / g) = i % 2: samples {0, 2, 4} and {1, 3, 5}
    for grp in ([0, 2, 4], [1, 3, 5]):
        want = (x[grp].var(0, unbiased=False) + 1e-8).sqrt().mean()
        for i in grp:
            torch.testing.assert_close(out[i, 5], torch.full((3, 2), want.item()))
    assert minibatch_stddev(x[:5], group_size=4).shape == (5, 6, 3, 2)  # 5 % 4 != 0: one group


def test_bad_inputs_raise_clear_errors():
    cfg = small_cfg()
    G, D = Generator(cfg, P, K), Critic(cfg, P, K)
    z, p, a = inputs(cfg)
    with pytest.raises(ValueError, match="z: expected shape"):
        G(z[:, :3], p, a)
    with pytest.raises(ValueError, match="attributes"):
        G(z, p, a[:, :2])
    with pytest.raises(ValueError, match="pitch_index out of range"):
        G(z, p + P, a)
    with pytest.raises(ValueError, match="scale"):
        G(z, p, a, scale=6)
    with pytest.raises(ValueError, match="alpha"):
        G(z, p, a, alpha=1.5)
    with pytest.raises(ValueError, match="critic input"):
        D(torch.zeros(2, 2, 64, 8), scale=0)
    with pytest.raises(ValueError, match="expected shape"):
        assert_shape(torch.zeros(2, 3), (2, None, 1))
