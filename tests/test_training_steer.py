"""Single-attribute edits that sound like steered ones (issue 15, ``train.loss_weights.g_steer``):
the two edits against the generation API's own steering, the loss's units, the term on the
shipped generator's real weights with the rendered dataset's real labels, its settings'
validation, and a tiny training that uses it and resumes exactly."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from types import SimpleNamespace
import torch

from darkgan.errors import DarkGANError
from darkgan.models.checkpoint import load_generator
from darkgan.models.config import PRESETS, apply_overrides, get_preset
from darkgan.teacher.prior import AttributePrior, logit
from darkgan.training.data import load_training_data
from darkgan.training.losses import single_and_steered, steer_distillation_loss
from darkgan.training.loop import _with_partners, extend_on_resume
from darkgan.training.terms import WaveTerms, steer_statistics


def test_the_steered_edit_is_the_generation_apis_steering(prepared_dataset):
    """On the rendered notes' real teacher logits: the training partner equals
    ``AttributePrior.steer`` with one asked attribute (one home for the regression), and the
    single edit changes that attribute alone."""
    data = load_training_data(prepared_dataset)
    T = 2.0
    coef, lo, hi = steer_statistics(data.logits, data.train_rows, T)
    prior = AttributePrior.from_logits(np.asarray(data.logits)[data.train_rows], T)
    alpha = 1.0 / (1.0 + np.exp(-np.asarray(data.logits)[data.train_rows[:3]] / T))
    idx, t = torch.tensor([0, 5, 11]), torch.tensor([-3.0, 0.5, 2.0])
    single, steered = single_and_steered(torch.as_tensor(alpha, dtype=torch.float32), idx, t, coef)
    for n in range(3):
        want = prior.steer(alpha[n:n + 1], [int(idx[n])], [1.0 / (1.0 + math.exp(-float(t[n])))])[0]
        np.testing.assert_allclose(steered[n].numpy(), want, rtol=2e-3, atol=1e-6)
        moved = np.nonzero(np.abs(logit(single[n].numpy()) - logit(alpha[n])) > 1e-3)[0].tolist()
        assert moved == [int(idx[n])]
    assert bool((hi > lo).all()) and float((steered != single).float().mean()) > 0.5


def test_steer_loss_is_zero_when_single_sounds_steered_and_one_when_it_changes_nothing():
    g = torch.Generator().manual_seed(2)
    base, steered = torch.randn(3, 2, 8, 4, generator=g), torch.randn(3, 2, 8, 4, generator=g)
    assert float(steer_distillation_loss(steered.clone(), steered, base)) == pytest.approx(0.0, abs=1e-7)
    assert float(steer_distillation_loss(base.clone(), steered, base)) == pytest.approx(1.0, rel=1e-6)
    half = base + 0.5 * (steered - base)
    assert float(steer_distillation_loss(half, steered, base)) == pytest.approx(0.25, rel=1e-5)
    assert float(steer_distillation_loss(base[:0], steered[:0], base[:0])) == 0.0


def test_steer_projection_form_leaves_the_orthogonal_change_free():
    """``"projection"``: 1 for no change, 0 for the steered change plus anything orthogonal to it
    (which ``"match"`` counts), 0.25 for half of it; an unknown form is an error."""
    g = torch.Generator().manual_seed(3)
    base, steered = torch.randn(3, 2, 8, 4, generator=g), torch.randn(3, 2, 8, 4, generator=g)
    t = (steered - base).flatten(1)
    other = torch.randn(3, 64, generator=g)
    other = other - (other * t).sum(1, keepdim=True) / t.square().sum(1, keepdim=True) * t  # orthogonal to t, per note
    beside = steered + other.view_as(steered)
    assert float(steer_distillation_loss(beside, steered, base, "projection")) == pytest.approx(0.0, abs=1e-6)
    assert float(steer_distillation_loss(beside, steered, base, "match")) > 0.3  # ||other||^2 / ||t||^2: 0.45
    assert float(steer_distillation_loss(base.clone(), steered, base, "projection")) == pytest.approx(1.0)
    half = base + 0.5 * (steered - base)
    assert float(steer_distillation_loss(half, steered, base, "projection")) == pytest.approx(0.25, rel=1e-5)
    with pytest.raises(ValueError, match="loss form must be one of"):
        steer_distillation_loss(half, steered, base, "cosine")


def test_steer_term_on_the_shipped_generator(prepared_dataset, adam_lowers):
    """Real weights: two partner rows per edited note, the gradient reaches the single edit's row
    and the generator, not the steered target's row; ten Adam steps lower the term."""
    G, cc = load_generator(None)
    G.requires_grad_(True)
    cfg = apply_overrides(get_preset("tiny"), ["train.loss_weights.g_steer=1"])
    data = load_training_data(prepared_dataset)
    wt = WaveTerms(cfg.train, data, torch.device("cpu"))
    k = G.n_attributes  # the shipped generator's vocabulary: statistics of that many attributes
    wt.steer_coef = torch.eye(k) + 0.3 * torch.ones(k, k)
    wt.steer_lo, wt.steer_hi = torch.full((k,), -6.0), torch.full((k,), 1.0)
    wt.steer_pool = torch.arange(k)
    assert wt.steer and wt.teacher is None and wt.n_steers(4) == 2
    torch.manual_seed(0)
    z = torch.randn(4, G.cfg.latent_dim, requires_grad=True)
    alpha, p = torch.full((4, k), 0.05), torch.tensor([5, 9, 14, 20])
    terms = wt.for_batch(p, alpha, torch.Generator().manual_seed(0), w=torch.tensor([[0.1, 0.9], [0.6, 1.0]] * 2))
    pr = terms.partners
    assert pr.rows.tolist() == [0, 1, 0, 1] and pr.pitch.tolist() == [5, 9, 5, 9] and pr.n_steer == 2
    zg, pg, cg = _with_partners(z, p, alpha, pr)
    out = G(zg, pg, cg)
    loss = terms(out)["g_steer"]
    assert 0 < float(loss.detach()) < 10
    loss.backward()
    assert float(z.grad[:2].abs().max()) > 0 and float(z.grad[2:].abs().max()) == 0
    adam_lowers(G, terms, (zg.detach(), pg, cg), "g_steer", float(loss.detach()))  # 0.77 measured
    with pytest.raises(ValueError, match="draws w"):
        wt.for_batch(p, alpha, torch.Generator())


def test_steer_attributes_are_the_only_ones_edited(prepared_dataset):
    """``train.steer_attributes``: every single edit raises one of the named attributes."""
    data = load_training_data(prepared_dataset)
    names = [data.attributes[3], data.attributes[9]]
    cfg = apply_overrides(get_preset("tiny"), ["train.loss_weights.g_steer=1", "train.steer_fraction=1",
                                               f"train.steer_attributes={json.dumps(names)}"])
    wt = WaveTerms(cfg.train, data, torch.device("cpu"))
    k, b = data.n_attributes, 64
    alpha = torch.full((b, k), 0.05)
    w = torch.rand(b, 2, generator=torch.Generator().manual_seed(4))
    pr = wt.for_batch(torch.zeros(b, dtype=torch.long), alpha, torch.Generator(), w=w).partners
    single = pr.conditioning[:b]
    edited = (single != alpha).nonzero()[:, 1]
    assert len(edited) == b and set(edited.tolist()) == {3, 9}


def test_steer_settings_are_validated(prepared_dataset):
    base = get_preset("tiny")
    for bad, key in [("train.loss_weights.g_steer=-1", "g_steer"), ("train.steer_fraction=0", "steer_fraction"),
                     ("train.steer_fraction=1.5", "steer_fraction"), ("train.steer_loss=cosine", "steer_loss")]:
        with pytest.raises(DarkGANError, match=key):
            apply_overrides(base, [bad])
    assert all(PRESETS[name]().train.loss_weights["g_steer"] == 0 for name in PRESETS)
    # a resumed run may switch the term on and set its edits (a fine-tune), validated alike
    new = extend_on_resume(base, ["train.loss_weights.g_steer=5", "train.steer_loss=projection",
                                  "train.steer_fraction=0.25"], 0)
    assert (new.train.loss_weights["g_steer"], new.train.steer_loss, new.train.steer_fraction) == (5, "projection", 0.25)
    with pytest.raises(DarkGANError, match="steer_loss"):
        extend_on_resume(base, ["train.steer_loss=cosine"], 0)
    names = load_training_data(prepared_dataset).attributes
    for bad, msg in [(["Kazoo of doom"], "'Kazoo of doom' is not in the dataset's vocabulary"),
                     ([names[0], names[0]], "named twice")]:
        cfg = apply_overrides(base, ["train.loss_weights.g_steer=1", f"train.steer_attributes={json.dumps(bad)}"])
        with pytest.raises(DarkGANError, match=msg):
            WaveTerms(cfg.train, load_training_data(prepared_dataset), torch.device("cpu"))
    data = load_training_data(prepared_dataset, attributes=False)  # the baseline: no attributes
    with pytest.raises(DarkGANError, match="g_steer > 0 needs attributes"):
        WaveTerms(apply_overrides(base, ["train.loss_weights.g_steer=1"]).train, data, torch.device("cpu"))


@pytest.mark.slow  # three short runs
def test_tiny_training_with_steer_resumes_exactly(resumes_exactly):
    """The term trains from the coarse scale beside ``g_increment``'s partners, and a run stopped
    after one step and resumed ends bit for bit where an uninterrupted one does."""
    run = ["train.iterations=[0,0,0,0,1,2]", "train.fade_in_jumps=0", "train.log_every=1",
           "train.output_terms_from_scale=4", "train.loss_weights.g_steer=1", "train.loss_weights.g_increment=1"]
    a, B = resumes_exactly(apply_overrides(get_preset("tiny"), run))
    assert a.finished and all(math.isfinite(a.last_metrics[k]) and a.last_metrics[k] > 0
                              for k in ("g_steer", "g_increment"))
    assert B["config"].config.train.loss_weights["g_steer"] == 1


def test_steered_targets_cost_no_backward_and_change_nothing(prepared_dataset):
    """train_step_g generates g_steer's steered targets without a graph: the step's loss and every
    generator gradient equal those of one forward of all rows (the old path), to float rounding."""
    from darkgan.training.loop import _generate_with_targets

    G, _ = load_generator(None)
    G.requires_grad_(True)
    cfg = apply_overrides(get_preset("tiny"), ["train.loss_weights.g_steer=1"])
    wt = WaveTerms(cfg.train, load_training_data(prepared_dataset), torch.device("cpu"))
    k = G.n_attributes
    wt.steer_coef, wt.steer_pool = torch.eye(k) + 0.3 * torch.ones(k, k), torch.arange(k)
    wt.steer_lo, wt.steer_hi = torch.full((k,), -6.0), torch.full((k,), 1.0)
    torch.manual_seed(1)
    z, alpha, p = torch.randn(4, G.cfg.latent_dim), torch.full((4, k), 0.05), torch.tensor([5, 9, 14, 20])
    terms = wt.for_batch(p, alpha, torch.Generator().manual_seed(0), w=torch.tensor([[0.1, 0.9], [0.6, 1.0]] * 2))
    zg, pg, cg = _with_partners(z, p, alpha, terms.partners)
    st = SimpleNamespace(G=G, G_train=G, scale=G.n_scales - 1, alpha=1.0)
    grads = []
    for n_targets in (0, terms.partners.n_steer):
        G.zero_grad()
        out = _generate_with_targets(st, zg, pg, cg, n_targets)
        assert out.shape[0] == zg.shape[0]
        tail = torch.autograd.grad(out[-1].sum(), list(G.parameters()), retain_graph=True, allow_unused=True)
        assert all(g is None or not g.any() for g in tail) == (n_targets > 0)  # the targets carry no graph
        loss = terms(out)["g_steer"]
        loss.backward()
        grads.append((float(loss.detach()), [q.grad.clone() for q in G.parameters() if q.grad is not None]))
    (l0, g0), (l1, g1) = grads
    assert l0 == pytest.approx(l1, rel=1e-5) and len(g0) == len(g1) > 0
    for a, b in zip(g0, g1):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
