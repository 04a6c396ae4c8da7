"""The anchors to a reference generator: the teacher-label anchor (``g_anchor``, stop 62): the
reference's own notes pay nothing when heard as the reference is heard, a changed synthesis fade or
another note pays, its gradient lowers it; the body anchor (``g_anchor_body``, stop 63) holds every
frame but the last ones; bad settings are one-line errors, and a run with them resumes exactly."""
from __future__ import annotations

import math

import pytest
import torch

from darkgan.errors import CheckpointError, DarkGANError, DataError
from darkgan.models.checkpoint import load_generator
from darkgan.models.config import PRESETS, apply_overrides, get_preset
from darkgan.training.data import load_training_data
from darkgan.training.loop import extend_on_resume, train
from darkgan.training.terms import WaveTerms

LAST_ONLY = ["train.iterations=[0,0,0,0,0,3]", "train.fade_in_jumps=0", "train.log_every=1"]


@pytest.fixture(scope="module")
def reference(prepared_dataset, tmp_path_factory):
    """A tiny generator trained 3 steps on the rendered notes: the anchor's reference."""
    out = tmp_path_factory.mktemp("anchor") / "src"
    return train(prepared_dataset, out, config=apply_overrides(get_preset("tiny"), LAST_ONLY), progress=False,
                 threads=1).checkpoint


def _terms(prepared_dataset, reference, *extra):
    cfg = apply_overrides(get_preset("tiny"), ["train.teacher_transforms=[]", "train.loss_weights.g_anchor=1",
                                               f"train.anchor_generator={reference}", *extra])
    data = load_training_data(prepared_dataset)
    return WaveTerms(cfg.train, data, torch.device("cpu"), cfg.model.synthesis_fade), data


def test_anchor_hears_the_reference_as_its_users_do(prepared_dataset, reference):
    """Real rendered notes' pitches and labels and the real teacher: the reference's own notes pay
    nothing, without transforms and with them (the reference is heard through the same draw);
    heard with a 512-sample fade instead of the reference's 1,024 they pay (the target is the note
    as the reference's users hear it); another note's request pays 10x more; a small step of the
    generated MAG-IF against the term's gradient lowers it."""
    terms, data = _terms(prepared_dataset, reference)
    G, _ = load_generator(reference)
    n = 8
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, G.cfg.latent_dim, generator=gen)
    pitch = torch.arange(n) % G.n_pitches
    rows = torch.as_tensor(data.train_rows[:n])
    alpha = torch.sigmoid(torch.as_tensor(data.logits[rows.numpy()], dtype=torch.float32) / 2.0)
    with torch.no_grad():
        out = G(z, pitch, alpha)
    own = float(terms.for_batch(pitch, alpha, torch.Generator())(out, z)["g_anchor"])
    assert own < 1e-6, own
    heard, _ = _terms(prepared_dataset, reference, 'train.teacher_transforms=["shift","noise","tilt"]')
    gen = torch.Generator().manual_seed(5)
    assert float(heard.for_batch(pitch, alpha, gen)(out, z)["g_anchor"]) < 1e-6  # the same draw for both
    faded, _ = _terms(prepared_dataset, reference, "model.synthesis_fade=512")
    shorter = float(faded.for_batch(pitch, alpha, torch.Generator())(out, z)["g_anchor"])
    other = float(terms.for_batch(pitch, alpha, torch.Generator())(out.roll(1, 0), z)["g_anchor"])
    assert shorter > 1e-4 and other > 10 * shorter, (shorter, other)
    with pytest.raises(ValueError, match="g_anchor needs the batch's latents z"):
        terms.for_batch(pitch, alpha, torch.Generator())(out)
    x = out.clone().requires_grad_(True)
    faded.for_batch(pitch, alpha, torch.Generator())(x, z)["g_anchor"].backward()
    step = x.grad / x.grad.norm()
    assert float(x.grad[:, 0].abs().sum()) > 0
    lower = float(faded.for_batch(pitch, alpha, torch.Generator())(out - 0.05 * step, z)["g_anchor"])
    assert lower < 0.9 * shorter, (shorter, lower)


def test_body_anchor_holds_all_but_the_last_frames(prepared_dataset, reference):
    """The reference's own MAG-IF pays nothing; a change inside the last ``train.anchor_free_frames``
    frames is free, the same change one frame earlier pays its exact mean squared error; the
    gradient never reaches the free frames."""
    terms, data = _terms(prepared_dataset, reference, "train.loss_weights.g_anchor=0",
                         "train.loss_weights.g_anchor_body=1", "train.anchor_free_frames=3")
    G, _ = load_generator(reference)
    n = 4
    z = torch.randn(n, G.cfg.latent_dim, generator=torch.Generator().manual_seed(1))
    pitch = torch.arange(n) * 3 % G.n_pitches
    rows = torch.as_tensor(data.train_rows[:n])
    alpha = torch.sigmoid(torch.as_tensor(data.logits[rows.numpy()], dtype=torch.float32) / 2.0)
    with torch.no_grad():
        out = G(z, pitch, alpha)
    assert set(terms.for_batch(pitch, alpha, torch.Generator())(out, z)) == {"g_anchor_body"}  # no teacher needed

    def body(x):
        return float(terms.for_batch(pitch, alpha, torch.Generator())(x, z)["g_anchor_body"])

    assert body(out) < 1e-10
    end = out.clone()
    end[..., -3:] += 0.5
    assert body(end) < 1e-10
    earlier = out.clone()
    earlier[..., -4] += 0.5
    assert math.isclose(body(earlier), 0.25 / (out.shape[-1] - 3), rel_tol=1e-4), body(earlier)
    x = (out + 0.1 * torch.randn_like(out)).requires_grad_(True)
    terms.for_batch(pitch, alpha, torch.Generator())(x, z)["g_anchor_body"].backward()
    assert float(x.grad[..., -3:].abs().max()) == 0 and float(x.grad[..., :-3].abs().min()) > 0
    with pytest.raises(ValueError, match="g_anchor_body needs the batch's latents z"):
        terms.for_batch(pitch, alpha, torch.Generator())(out)


def test_anchor_setting_is_validated(prepared_dataset, reference, tmp_path):
    with pytest.raises(DarkGANError, match="g_anchor > 0 needs train.anchor_generator"):
        apply_overrides(get_preset("tiny"), ["train.loss_weights.g_anchor=1"])
    with pytest.raises(DarkGANError, match="train.loss_weights.g_anchor"):
        apply_overrides(get_preset("tiny"), ["train.loss_weights.g_anchor=-1", "train.anchor_generator=x"])
    with pytest.raises(DarkGANError, match="g_anchor_body > 0 needs train.anchor_generator"):
        apply_overrides(get_preset("tiny"), ["train.loss_weights.g_anchor_body=1"])
    for bad in ("0", "32"):
        with pytest.raises(DarkGANError, match=f"train.anchor_free_frames must be an integer in \\[1, 31\\].*{bad}"):
            apply_overrides(get_preset("tiny"), [f"train.anchor_free_frames={bad}"])
    with pytest.raises(DarkGANError, match="train.anchor_free_frames: expected an integer, got 2.5"):
        apply_overrides(get_preset("tiny"), ["train.anchor_free_frames=2.5"])
    assert all(PRESETS[name]().train.loss_weights[key] == 0 for name in PRESETS for key in ("g_anchor", "g_anchor_body"))
    assert extend_on_resume(get_preset("tiny"), [f"train.anchor_generator={reference}"], 0).train.anchor_generator
    assert extend_on_resume(get_preset("tiny"), ["train.anchor_free_frames=6"], 0).train.anchor_free_frames == 6
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'none'}"):
        _terms(prepared_dataset, tmp_path / "none")
    with pytest.raises(CheckpointError, match="needs this run's pitch range and vocabulary"):
        _terms(prepared_dataset, "default")  # the shipped default: 128 attributes, MIDI 44..70
    cfg = apply_overrides(get_preset("tiny"), ["train.loss_weights.g_teacher=0", "train.loss_weights.g_anchor=1",
                                               f"train.anchor_generator={reference}"])
    with pytest.raises(DataError, match="g_anchor > 0 needs attributes"):
        WaveTerms(cfg.train, load_training_data(prepared_dataset, attributes=False), torch.device("cpu"))


@pytest.mark.slow  # three short runs
def test_tiny_training_with_anchor_resumes_exactly(resumes_exactly, reference):
    """Both terms train at the last scale from a reference, and a run stopped after one step and
    resumed ends bit for bit where an uninterrupted one does."""
    run = ["train.iterations=[0,0,0,0,1,2]", "train.fade_in_jumps=0", "train.log_every=1",
           "train.loss_weights.g_anchor=1", f"train.anchor_generator={reference}", "model.synthesis_fade=512",
           "train.loss_weights.g_anchor_body=1"]
    a, B = resumes_exactly(apply_overrides(get_preset("tiny"), run))
    assert a.finished and all(math.isfinite(a.last_metrics[k]) and a.last_metrics[k] >= 0
                              for k in ("g_anchor", "g_anchor_body"))
    assert B["config"].config.train.anchor_generator == str(reference)
