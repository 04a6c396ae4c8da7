"""Single-attribute control in training (issue 15, ``train.loss_weights.g_increment``): the
raised conditioning, the loss's units, the term on the shipped generator's real weights with the
real EfficientAT teacher, its settings' validation, and a tiny training that uses it with the
consistency partners and resumes exactly."""
from __future__ import annotations

import math

import pytest
import torch

from darkgan.errors import DarkGANError
from darkgan.models.checkpoint import load_generator
from darkgan.models.config import PRESETS, apply_overrides, get_preset
from darkgan.training.data import load_training_data
from darkgan.training.losses import attribute_increment_loss, raise_attribute
from darkgan.training.loop import _with_partners
from darkgan.training.terms import WaveTerms

RUN = ["train.iterations=[0,0,0,0,1,2]", "train.fade_in_jumps=0", "train.log_every=1",
       "train.output_terms_from_scale=4", "train.loss_weights.g_increment=1",
       "train.loss_weights.g_consistency=1", "train.consistency_max_offset=2", "train.increment_fraction=0.75"]


def test_raise_attribute_moves_one_logit_by_delta_std():
    g = torch.Generator().manual_seed(0)
    alpha = torch.rand(5, 7, generator=g) * 0.9 + 0.05
    std = torch.rand(7, generator=g) + 0.5
    idx = torch.tensor([0, 3, 6, 3, 1])
    up = raise_attribute(alpha, idx, 2.0, std)
    logit = lambda p: torch.log(p) - torch.log1p(-p)  # noqa: E731
    d = logit(up) - logit(alpha)
    want = torch.zeros_like(d)
    want[torch.arange(5), idx] = 2.0 * std[idx]
    assert torch.allclose(d, want, atol=1e-4)
    assert float(up.min()) > 0 and float(up.max()) < 1


def test_increment_loss_is_zero_for_the_asked_rise_and_one_for_none():
    std, T, idx = torch.tensor([0.5, 2.0, 1.0]), 2.0, torch.tensor([1, 0, 2])
    base = torch.randn(3, 3, generator=torch.Generator().manual_seed(1))
    heard = base.clone()
    heard[torch.arange(3), idx] += 3.0 * T * std[idx]  # each rise exactly 3 std of z / T
    assert float(attribute_increment_loss(base, heard, idx, 3.0, T, std)) == pytest.approx(0.0, abs=1e-6)
    assert float(attribute_increment_loss(base, base, idx, 3.0, T, std)) == pytest.approx(1.0)
    other = base.clone()
    other[:, 1 - 0] += 100.0  # rises of attributes that were not asked for do not count ...
    other[1, 0] = base[1, 0]  # ... except where column 0 was asked (row 1) and left unchanged
    assert float(attribute_increment_loss(base, other, idx, 3.0, T, std)) == pytest.approx(
        ((100.0 / T / 2.0 - 3.0) ** 2 / 9.0 + 1.0 + 1.0) / 3.0, rel=1e-5)
    assert float(attribute_increment_loss(base[:0], base[:0], idx[:0], 3.0, T, std)) == 0.0


def test_increment_term_on_the_shipped_generator(prepared_dataset):
    """Real weights, real teacher: the partners are the batch's (z, pitch) with one attribute
    raised; the term is finite, positive, and its gradient reaches z and the generator."""
    from darkgan.data.magif import Normalizer

    G, cc = load_generator(None)
    G.requires_grad_(True)
    cfg = apply_overrides(get_preset("tiny"), ["train.loss_weights.g_increment=1"])
    data = load_training_data(prepared_dataset)
    wt = WaveTerms(cfg.train, data, torch.device("cpu"))
    # the shipped generator's own units and vocabulary (the test dataset has 16 of its 128 classes)
    wt.normalizer = Normalizer.from_dict(cc.normalizer)
    wt.classes, wt.attr_std = torch.tensor(cc.class_indices), torch.ones(len(cc.class_indices))
    assert wt.increment and not wt.consistency and wt.n_increments(4) == 2
    torch.manual_seed(0)
    z = torch.randn(4, G.cfg.latent_dim, requires_grad=True)
    alpha = torch.full((4, G.n_attributes), 0.05)
    p = torch.tensor([5, 9, 14, 20])
    terms = wt.for_batch(p, alpha, torch.Generator().manual_seed(0), None, torch.tensor([0.1, 0.6, 0.0, 0.0]))
    pr = terms.partners
    assert pr.rows.tolist() == [0, 1] and pr.pitch.tolist() == [5, 9] and pr.attr_index.tolist() == [12, 76]
    changed = (pr.conditioning != alpha[:2]).nonzero().tolist()
    assert changed == [[0, 12], [1, 76]] and bool((pr.conditioning[:, [12, 76]].diagonal() > 0.05).all())
    zg, pg, cg = _with_partners(z, p, alpha, pr)
    loss = terms(G(zg, pg, cg))["g_increment"]
    assert math.isfinite(float(loss.detach())) and float(loss.detach()) > 0
    loss.backward()
    assert float(z.grad[:2].abs().max()) > 0 and float(z.grad[2:].abs().max()) == 0
    assert float(G.format.weight.grad.abs().max()) > 0
    with pytest.raises(ValueError, match="draws v"):
        wt.for_batch(p, alpha, torch.Generator(), None, None)


def test_increment_settings_are_validated():
    base = get_preset("tiny")
    for bad, key in [("train.loss_weights.g_increment=-1", "g_increment"),
                     ("train.increment_fraction=0", "increment_fraction"),
                     ("train.increment_fraction=2", "increment_fraction"),
                     ("train.increment_delta=0", "increment_delta"),
                     ("train.increment_delta=inf", "increment_delta")]:
        with pytest.raises(DarkGANError, match=key):
            apply_overrides(base, [bad])
    assert all(PRESETS[name]().train.loss_weights["g_increment"] == 0 for name in PRESETS)


@pytest.mark.slow  # three short runs, the teacher loaded in each
def test_tiny_training_with_increment_and_consistency_resumes_exactly(resumes_exactly):
    """Both partner kinds in one batch: the terms train from the coarse scale and a run stopped
    after one step and resumed ends bit for bit where an uninterrupted one does."""
    a, B = resumes_exactly(apply_overrides(get_preset("tiny"), RUN))
    assert a.finished and all(math.isfinite(a.last_metrics[k]) and a.last_metrics[k] > 0
                              for k in ("g_increment", "g_consistency"))
    assert B["config"].config.train.loss_weights["g_increment"] == 1
