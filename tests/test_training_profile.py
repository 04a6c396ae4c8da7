"""The temporal envelope the labels predict (issue 15, ``train.loss_weights.g_profile``): the shared
regression of the real notes' features on their conditioning, the envelope model fitted on the
rendered notes, the loss's band and units, the term on the shipped generator's real weights, its
settings' validation, and a tiny training that uses it and resumes exactly."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from darkgan.errors import DarkGANError
from darkgan.models.checkpoint import load_generator
from darkgan.models.config import PRESETS, apply_overrides, get_preset
from darkgan.models.generator import attribute_logits
from darkgan.training.data import load_training_data
from darkgan.training.loop import extend_on_resume
from darkgan.training.losses import envelope_profile_loss
from darkgan.training.regression import conditioning_regression
from darkgan.training.terms import ProfileModel, WaveTerms, envelope_profile, envelope_profile_model


def _real_profiles(data, rows) -> torch.Tensor:
    return envelope_profile(data.cache.load(rows, normalize=False)[:, 0].float())


def test_regression_matches_a_direct_solve_and_its_residuals(prepared_dataset):
    """On the rendered notes' envelopes: chunked coefficients and residual spread equal one direct
    ridge solve's; the intercepts of the pitches between the rendered ones are interpolated."""
    data = load_training_data(prepared_dataset)
    rows = np.asarray(data.train_rows)
    y = _real_profiles(data, rows).double().numpy()
    fit = conditioning_regression(data, 2.0, lambda r: _real_profiles(data, r), ridge=0.1, chunk=4)
    u = np.asarray(data.logits[rows], np.float64) / 2.0
    pitch = data.cache.pitch[rows]
    x = np.concatenate([u, (pitch[:, None] == np.unique(pitch)[None]).astype(np.float64)], 1)
    pen = np.zeros(x.shape[1])
    pen[:u.shape[1]] = 0.1 * len(rows) * u.var(0)
    coef = np.linalg.solve(x.T @ x + np.diag(pen), x.T @ y)
    np.testing.assert_allclose(fit.beta, coef[:u.shape[1]], atol=1e-6)
    np.testing.assert_allclose(fit.residual_sd, np.sqrt(((y - x @ coef) ** 2).mean(0)), rtol=1e-5, atol=1e-6)
    model = envelope_profile_model(data, 2.0, 0.1)
    levels, lo = np.unique(pitch), int(data.pitch_range[0])
    assert model.pitch_coef.shape == (data.n_pitches, y.shape[1]) and model.beta.shape == (data.n_attributes, y.shape[1])
    np.testing.assert_allclose(model.pitch_coef[levels - lo].numpy(), coef[u.shape[1]:], atol=1e-4)
    a, b = levels[0], levels[1]  # a pitch between two rendered ones lies on the line between them
    mid = (a + b) // 2
    w = (mid - a) / (b - a)
    np.testing.assert_allclose(model.pitch_coef[mid - lo].numpy(),
                               (1 - w) * coef[u.shape[1]] + w * coef[u.shape[1] + 1], atol=1e-4)


def test_envelope_model_predicts_the_real_notes_better_than_their_mean(prepared_dataset):
    """The fitted model explains the rendered notes' envelopes (a plucked guitar decays, a violin
    holds): its prediction from their labels and pitch is nearer than the mean envelope is, and most
    of their frames lie inside the band."""
    data = load_training_data(prepared_dataset)
    rows = np.asarray(data.train_rows)
    model = envelope_profile_model(data, 2.0, 0.1)
    real = _real_profiles(data, rows)
    alpha = torch.sigmoid(torch.from_numpy(data.logits[rows]).float() / 2.0)
    pred = model.predict(attribute_logits(alpha), torch.from_numpy(data.pitch_index(rows).astype(np.int64)))
    assert float((real - pred).square().mean()) < 0.5 * float((real - real.mean(0)).square().mean())
    assert float(((real - pred).abs() <= model.band).float().mean()) > 0.6
    assert float(envelope_profile_loss(real, pred, model.band)) < float(envelope_profile_loss(real.flip(0), pred, model.band))


def test_profile_loss_is_free_inside_the_band_and_quadratic_outside():
    target = torch.tensor([[-1.0, -5.0, -10.0]])
    band = torch.tensor([2.0, 2.0, 4.0])
    assert float(envelope_profile_loss(target + torch.tensor([[1.9, -2.0, 3.9]]), target, band)) == 0.0
    out = envelope_profile_loss(target + torch.tensor([[4.0, 0.0, -8.0]]), target, band)  # 1 and 1 band beyond
    assert math.isclose(float(out), (1.0 + 0.0 + 1.0) / 3, rel_tol=1e-6)
    with pytest.raises(ValueError, match="band"):
        envelope_profile_loss(target, target, torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="expected profile"):
        envelope_profile_loss(target, target[:, :2], band)


def test_profile_term_on_the_shipped_generator(prepared_dataset, adam_lowers):
    """Real weights: the term scores the generated notes' envelopes against the prediction from
    their own conditioning and pitch (not the partners'); Adam steps on the generator lower it."""
    G, _ = load_generator(None)
    G.requires_grad_(True)
    cfg = apply_overrides(get_preset("tiny"), ["train.loss_weights.g_teacher=0", "train.loss_weights.g_profile=1",
                                               "train.profile_ridge=0.1"])
    data = load_training_data(prepared_dataset)
    wt = WaveTerms(cfg.train, data, torch.device("cpu"))
    assert wt.profile and wt.active and wt.teacher is None
    k, flat = G.n_attributes, _real_profiles(data, np.asarray(data.train_rows)).mean(0)
    wt.profile_model = ProfileModel(torch.zeros(k, 32), flat.expand(G.n_pitches, 32).clone(), wt.profile_model.band)
    torch.manual_seed(0)
    z, p = torch.randn(4, G.cfg.latent_dim), torch.tensor([5, 9, 14, 20])
    alpha = torch.full((4, k), 0.05)
    terms = wt.for_batch(p, alpha, torch.Generator().manual_seed(0))
    out = G(z, p, alpha)
    logmag = data.normalizer.denormalize(out)[:, 0]
    want = envelope_profile_loss(envelope_profile(logmag), flat.expand(4, 32), wt.profile_model.band)
    got = terms(out)["g_profile"]
    torch.testing.assert_close(got, want)
    assert float(got.detach()) > 0.05
    assert terms.partners is None  # the term needs no partner rows
    adam_lowers(G, terms, (z, p, alpha), "g_profile", float(got.detach()))


def test_profile_relative_to_the_real_notes_pays_nothing_for_them(prepared_dataset):
    """``train.profile_reference="real"`` on the cached real notes: a generator whose output is the
    batch's real notes pays nothing (their envelopes are the targets), one whose notes ring on
    (a late plateau at -10 dB) pays, and the real notes are required."""
    data = load_training_data(prepared_dataset)
    rows = np.asarray(data.train_rows)
    real = data.cache.load(rows, normalize=False).float()
    pitch = torch.from_numpy(data.pitch_index(rows).astype(np.int64))
    alpha = torch.full((len(rows), data.n_attributes), 0.05)
    cfg = apply_overrides(get_preset("tiny"), ["train.loss_weights.g_teacher=0", "train.loss_weights.g_profile=1",
                                               "train.profile_ridge=0.1", "train.profile_reference=real"])
    wt = WaveTerms(cfg.train, data, torch.device("cpu"))
    assert wt.needs_real
    terms = wt.for_batch(pitch, alpha, torch.Generator(), real=real)
    assert float(terms(data.normalizer.normalize(real))["g_profile"]) < 1e-6
    # a plateau 10 dB below each note's peak from frame 12 on: 20 log10(e) dB per natural-log unit
    profile = _real_profiles(data, rows)
    lift = (-10.0 - profile[:, None, 12:]).clamp(min=0) / (20.0 / math.log(10.0))
    ringing = real.clone()
    ringing[:, 0, :, 12:] += lift
    assert float(terms(data.normalizer.normalize(ringing))["g_profile"]) > 0.05
    with pytest.raises(ValueError, match="needs the real notes"):
        wt.for_batch(pitch, alpha, torch.Generator())


def test_profile_settings_are_validated(prepared_dataset):
    base = get_preset("tiny")
    for bad, key in [("train.loss_weights.g_profile=-1", "g_profile"), ("train.profile_ridge=-0.1", "profile_ridge"),
                     ("train.profile_band=0", "profile_band"), ("train.profile_reference=nearest", "profile_reference")]:
        with pytest.raises(DarkGANError, match=key):
            apply_overrides(base, [bad])
    assert all(PRESETS[name]().train.loss_weights["g_profile"] == 0 for name in PRESETS)
    assert extend_on_resume(base, ["train.loss_weights.g_profile=5"], 0).train.loss_weights["g_profile"] == 5
    assert extend_on_resume(base, ["train.profile_reference=real"], 0).train.profile_reference == "real"
    with pytest.raises(DarkGANError, match="g_profile > 0 needs attributes"):
        WaveTerms(apply_overrides(base, ["train.loss_weights.g_teacher=0", "train.loss_weights.g_profile=1"]).train,
                  load_training_data(prepared_dataset, attributes=False), torch.device("cpu"))


@pytest.mark.slow  # three short runs
def test_tiny_training_with_profile_resumes_exactly(resumes_exactly):
    """The term trains at the last scale, and a run stopped after one step and resumed ends bit for
    bit where an uninterrupted one does."""
    run = ["train.iterations=[0,0,0,0,1,2]", "train.fade_in_jumps=0", "train.log_every=1",
           "train.loss_weights.g_profile=1", "train.profile_ridge=0.1"]
    a, B = resumes_exactly(apply_overrides(get_preset("tiny"), run))
    assert a.finished and math.isfinite(a.last_metrics["g_profile"]) and a.last_metrics["g_profile"] >= 0
    assert B["config"].config.train.loss_weights["g_profile"] == 1
