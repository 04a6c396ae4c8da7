"""Conditional modulation of every generator convolution (``model.attr_film_from_scale``) and
``--init-critic``: a fine-tune that adds FiLM starts from the source's function exactly; the
modulation then moves the note with its attributes; parts that cannot carry it refuse it."""
from __future__ import annotations

import copy

import pytest
import torch

from darkgan.errors import CheckpointError, DarkGANError
from darkgan.models.checkpoint import load_generator, load_training_state
from darkgan.models.config import apply_overrides, get_preset
from darkgan.models.generator import Generator
from darkgan.training.data import load_training_data
from darkgan.training.loop import train

LAST_ONLY = ["train.iterations=[0,0,0,0,0,3]", "train.fade_in_jumps=0", "train.log_every=1",
             "model.attr_input=std_logit"]


def _pair(from_scale: int):
    cfg = apply_overrides(get_preset("tiny"), ["model.attr_input=std_logit"]).model
    plain = Generator(cfg, 5, 7)
    film_cfg = copy.deepcopy(cfg)
    film_cfg.attr_film_from_scale = from_scale
    film = Generator(film_cfg, 5, 7)
    missing, unexpected = film.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("film.") for k in missing)
    return plain, film


def test_zero_initialised_film_is_the_plain_generator_and_then_follows_the_attributes():
    """At init every scale's output (fade-in included) and every block feature equal the plain
    generator's; once the modulation is non-zero, it changes only the modulated scales and
    depends on the attributes; gradients reach it."""
    plain, film = _pair(from_scale=3)
    g = torch.Generator().manual_seed(0)
    z, pitch, alpha = torch.randn(4, plain.cfg.latent_dim, generator=g), torch.arange(4), torch.rand(4, 7, generator=g)
    with torch.no_grad():
        for s in range(plain.n_scales):
            assert torch.equal(plain(z, pitch, alpha, scale=s, alpha=0.5), film(z, pitch, alpha, scale=s, alpha=0.5))
        for a, b in zip(plain.features(z, pitch, alpha), film.features(z, pitch, alpha)):
            assert torch.equal(a, b)
        for convs in film.film.layers[3:]:
            for lin in convs:
                torch.nn.init.normal_(lin.weight, 0.0, 0.2)
        fa, fb = plain.features(z, pitch, alpha), film.features(z, pitch, alpha)
        assert all(torch.equal(fa[k], fb[k]) for k in range(3))  # below from_scale: untouched
        assert float((fa[-1] - fb[-1]).abs().max()) > 1e-2
        moved = film(z, pitch, alpha) - film(z, pitch, alpha.roll(1, 0))
        kept = plain(z, pitch, alpha) - plain(z, pitch, alpha.roll(1, 0))
        assert float((moved - kept).abs().max()) > 1e-2  # the modulation answers the attributes
    film(z, pitch, alpha).square().mean().backward()
    assert all(lin.weight.grad is not None and float(lin.weight.grad.abs().sum()) > 0
               for convs in film.film.layers[3:] for lin in convs)
    assert len(film.film.layers[0]) == 0 and len(film.film.layers[3]) == plain.cfg.convs_per_block


def test_film_settings_and_unsupported_copies_are_one_line_errors():
    from darkgan.compression.fast import fast_generator
    from darkgan.compression.prune import prune_generator

    for bad in (-2, get_preset("tiny").model.n_scales):
        with pytest.raises(DarkGANError, match="attr_film_from_scale"):
            apply_overrides(get_preset("tiny"), [f"model.attr_film_from_scale={bad}"]).validate()
    _, film = _pair(from_scale=0)
    with pytest.raises(DarkGANError, match="attr_film_from_scale"):
        fast_generator(film)
    with pytest.raises(DarkGANError, match="attr_film_from_scale"):
        prune_generator(film, 0.5)


def test_fine_tune_adding_film_from_a_trained_critic(prepared_dataset, tmp_path):
    """``--init-generator`` from a plain generator into a FiLM run starts from the source's notes
    exactly (real labels); ``--init-critic`` takes the source run's critic weights and is recorded;
    the FiLM weights then train; a FiLM source into a plain run, or ``--init-critic`` alone, is a
    one-line error."""
    src = train(prepared_dataset, tmp_path / "src", config=apply_overrides(get_preset("tiny"), LAST_ONLY),
                progress=False, threads=1)
    cfg = apply_overrides(get_preset("tiny"), LAST_ONLY + ["model.attr_film_from_scale=2", "train.critic_warmup=1"])
    # one critic-only step: the generator is still the source's, the critic one Adam step from it
    first = train(prepared_dataset, tmp_path / "ft0", config=cfg, progress=False, threads=1, stop_at_step=1,
                  init_generator=src.checkpoint, init_critic=tmp_path / "src")
    g0, _ = load_generator(src.checkpoint)
    g1, meta = load_generator(first.checkpoint)
    assert g1.film is not None and meta.extra["fine_tuned_from"]["critic_from"]["step"] == 3
    data = load_training_data(prepared_dataset)
    z, pitch = torch.randn(6, g0.cfg.latent_dim, generator=torch.Generator().manual_seed(1)), torch.arange(6) % g0.n_pitches
    alpha = torch.sigmoid(torch.from_numpy(data.logits[:6]) / 2.0)
    with torch.no_grad():
        assert torch.equal(g0(z, pitch, alpha), g1(z, pitch, alpha))
    d_src, d_new = load_training_state(src.checkpoint)["critic"], load_training_state(first.checkpoint)["critic"]
    lr = cfg.train.lr[-1] if isinstance(cfg.train.lr, (list, tuple)) else cfg.train.lr
    assert all(float((d_src[k] - d_new[k]).abs().max()) <= 1.01 * lr for k in d_src)  # Adam: at most lr per step
    assert max(float(v.abs().max()) for v in d_src.values()) > 100 * lr
    more = train(prepared_dataset, tmp_path / "ft1", config=cfg, progress=False, threads=1, stop_at_step=2,
                 init_generator=src.checkpoint, init_critic=src.checkpoint)
    g2, _ = load_generator(more.checkpoint)
    assert any(float(p.detach().abs().max()) > 0 for p in g2.film.parameters())
    with pytest.raises(CheckpointError, match="modulates"):
        train(prepared_dataset, tmp_path / "back", config=apply_overrides(get_preset("tiny"), LAST_ONLY),
              progress=False, threads=1, stop_at_step=1, init_generator=more.checkpoint)
    with pytest.raises(DarkGANError, match="--init-critic goes with --init-generator"):
        train(prepared_dataset, tmp_path / "alone", config=cfg, progress=False, threads=1, stop_at_step=1,
              init_critic=src.checkpoint)


def test_init_critic_adds_a_zero_projection(prepared_dataset, tmp_path):
    """``--init-critic`` from a critic without ``model.critic_projection`` into a run with it: the
    projection starts at zero (one Adam step later it is at most lr from zero, every other weight
    at most lr from the source's) and the provenance records it."""
    src = train(prepared_dataset, tmp_path / "src", config=apply_overrides(get_preset("tiny"), LAST_ONLY),
                progress=False, threads=1)
    cfg = apply_overrides(get_preset("tiny"), LAST_ONLY + ["model.critic_projection=true", "train.critic_warmup=1"])
    first = train(prepared_dataset, tmp_path / "ft", config=cfg, progress=False, threads=1, stop_at_step=1,
                  init_generator=src.checkpoint, init_critic=src.checkpoint)
    _, meta = load_generator(first.checkpoint)
    assert meta.extra["fine_tuned_from"]["critic_from"]["projection_added"] is True
    d_src, d_new = load_training_state(src.checkpoint)["critic"], load_training_state(first.checkpoint)["critic"]
    lr = cfg.train.lr[-1] if isinstance(cfg.train.lr, (list, tuple)) else cfg.train.lr
    w = d_new["projection.weight"]
    assert 0 < float(w.abs().max()) <= 1.01 * lr  # zero at the start, then one Adam step
    assert all(float((d_src[k] - d_new[k]).abs().max()) <= 1.01 * lr for k in d_src)
    assert float(d_new["attr_std"].min()) > 0 and not torch.equal(d_new["attr_std"], torch.ones_like(d_new["attr_std"]))


def test_export_with_its_critic_starts_a_fine_tune(prepared_dataset, tmp_path):
    """``export_generator(critic=True)`` (``--with-critic``) keeps the critic, checksummed, in
    float16 beside the half generator; ``--init-critic`` takes it from the export (within fp16
    rounding of the run's critic, recorded); an export without one, or with a damaged one, is a
    one-line error, and the export still cannot be resumed."""
    from darkgan.models.checkpoint import export_generator, load_critic

    src = train(prepared_dataset, tmp_path / "src", config=apply_overrides(get_preset("tiny"), LAST_ONLY),
                progress=False, threads=1)
    shipped = export_generator(src.checkpoint, tmp_path / "shipped", half=True, critic=True)
    d_run = load_training_state(src.checkpoint)["critic"]
    d_export, meta = load_critic(shipped)
    assert "critic.safetensors" in meta.extra["files"] and set(d_export) == set(d_run)
    assert all(d_export[k].dtype == d_run[k].dtype for k in d_run)
    assert all(torch.allclose(d_export[k], d_run[k], rtol=1e-3, atol=1e-4) for k in d_run)
    with pytest.raises(CheckpointError, match="cannot be resumed|not a training checkpoint"):
        load_training_state(shipped)
    cfg = apply_overrides(get_preset("tiny"), LAST_ONLY + ["train.critic_warmup=1"])
    ft = train(prepared_dataset, tmp_path / "ft", config=cfg, progress=False, threads=1, stop_at_step=1,
               init_generator=shipped, init_critic=shipped)
    _, ft_meta = load_generator(ft.checkpoint)
    assert ft_meta.extra["fine_tuned_from"]["critic_from"]["step"] == 3
    d_ft = load_training_state(ft.checkpoint)["critic"]
    lr = cfg.train.lr[-1] if isinstance(cfg.train.lr, (list, tuple)) else cfg.train.lr
    assert all(float((d_export[k] - d_ft[k]).abs().max()) <= 1.01 * lr for k in d_run)  # one Adam step from it
    plain = export_generator(src.checkpoint, tmp_path / "plain", half=True)
    with pytest.raises(CheckpointError, match="holds no critic"):
        load_critic(plain)
    raw = bytearray((shipped / "critic.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (shipped / "critic.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="critic.safetensors: checksum mismatch"):
        train(prepared_dataset, tmp_path / "ft2", config=cfg, progress=False, threads=1, stop_at_step=1,
              init_generator=plain, init_critic=shipped)


def test_attach_critic_gives_an_export_the_critic_of_its_warm_up(prepared_dataset, tmp_path):
    """``attach_critic``: an export made without its critic gets the critic of a warm-up run
    against it; its generator file is unchanged byte for byte, every sum is recorded again, the
    source is named; a critic of another architecture is a one-line error and leaves the export as it was."""
    from darkgan.models.checkpoint import attach_critic, export_generator, load_critic, read_checkpoint_config

    src = train(prepared_dataset, tmp_path / "src", config=apply_overrides(get_preset("tiny"), LAST_ONLY),
                progress=False, threads=1)
    plain = export_generator(src.checkpoint, tmp_path / "plain", half=True)
    before = (plain / "generator.safetensors").read_bytes()
    warm_cfg = apply_overrides(get_preset("tiny"), LAST_ONLY + ["train.critic_warmup=5"])
    warm = train(prepared_dataset, tmp_path / "warm", config=warm_cfg, progress=False, threads=1, stop_at_step=2,
                 init_generator=plain)
    other = train(prepared_dataset, tmp_path / "other", progress=False, threads=1,
                  config=apply_overrides(get_preset("tiny"), LAST_ONLY + ["model.channels=[8,8,8,8,8,8]"]))
    with pytest.raises(CheckpointError, match="critic.safetensors: .*shape"):
        attach_critic(plain, other.checkpoint)
    assert not (plain / "critic.safetensors").exists() and (plain / "generator.safetensors").read_bytes() == before
    attach_critic(plain, warm.checkpoint)
    d, meta = load_critic(plain)
    d_warm = load_training_state(warm.checkpoint)["critic"]
    assert all(torch.allclose(d[k], d_warm[k], rtol=1e-3, atol=1e-4) for k in d_warm)
    assert (plain / "generator.safetensors").read_bytes() == before
    assert meta.extra["critic_from"]["step"] == 2 and meta.step == read_checkpoint_config(src.checkpoint).step
    assert {"generator.safetensors", "critic.safetensors"} <= set(meta.extra["files"])
