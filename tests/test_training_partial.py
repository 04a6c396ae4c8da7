"""Single edits that change a note as the attribute alone changes the real notes (issue 15,
``train.loss_weights.g_partial``): the regression of the real notes' MAG-IF on their real teacher
labels, the edit and the loss's units, the term on the shipped generator's real weights, its
settings' validation, and a tiny training that uses it and resumes exactly."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from darkgan.errors import DarkGANError
from darkgan.models.checkpoint import load_generator
from darkgan.models.config import PRESETS, apply_overrides, get_preset
from darkgan.teacher.prior import logit
from darkgan.training.data import load_training_data
from darkgan.training.losses import edit_matching_loss, single_edit
from darkgan.training.loop import _with_partners, extend_on_resume
from darkgan.training.terms import RISE_PERCENTILES, WaveTerms, partial_effect_maps


def _direct_fit(data, T: float, ridge: float, extra=None) -> np.ndarray:
    """The same regression from the stacked notes in one solve (the reference)."""
    rows = np.asarray(data.train_rows)
    u = np.asarray(data.logits[rows], np.float64) / T
    pitch = data.cache.pitch[rows]
    x = np.concatenate([u, (pitch[:, None] == np.unique(pitch)[None]).astype(np.float64)], 1)
    y = data.cache.load(rows).flatten(1).double().numpy()
    if extra is not None:
        y = y + extra
    pen = np.zeros(x.shape[1])
    pen[:u.shape[1]] = ridge * len(rows) * u.var(0)
    return np.linalg.solve(x.T @ x + np.diag(pen), x.T @ y)[:u.shape[1]]


class _PlantedCache:
    """The real cache with ``pattern * u_i`` added to every note: attribute i's partial effect grows by ``pattern``."""

    def __init__(self, cache, u_of_row: dict, i: int, pattern: torch.Tensor):
        self._cache, self._u, self._i, self._p = cache, u_of_row, i, pattern

    def __getattr__(self, name):
        return getattr(self._cache, name)

    def load(self, rows, normalize=True):
        x = self._cache.load(rows, normalize)
        return x + torch.tensor([self._u[int(r)][self._i] for r in rows]).view(-1, 1, 1, 1) * self._p


def test_partial_effects_are_the_regression_of_the_real_notes(prepared_dataset):
    """On the rendered notes' cached MAG-IF and real teacher labels: the chunked fit equals one direct
    solve; a pattern planted in proportion to one attribute is found as that attribute's own effect
    and nowhere else; the percentiles are the rise test's."""
    data = load_training_data(prepared_dataset)
    T, ridge = 2.0, 0.05
    beta, lo, hi = partial_effect_maps(data, T, ridge, chunk=7)
    k = data.n_attributes
    assert beta.shape == (k, 2, 1024, 32) and lo.shape == hi.shape == (k,)
    want = _direct_fit(data, T, ridge)
    np.testing.assert_allclose(beta.flatten(1).numpy(), want, rtol=1e-3, atol=1e-4)
    u = np.asarray(data.logits[data.train_rows], np.float64) / T
    np.testing.assert_allclose(np.stack([lo.numpy(), hi.numpy()]), np.percentile(u, RISE_PERCENTILES, axis=0),
                               rtol=1e-5)
    assert float(beta.abs().max()) > 0 and bool((hi > lo).all())

    # least squares on four of the attributes (more notes than coefficients): a pattern planted in
    # proportion to attribute 3 is found as exactly its own effect, and no other attribute moves
    four = SimpleNamespace(**{**data.__dict__, "logits": np.asarray(data.logits)[:, :4],
                              "attributes": data.attributes[:4]}, n_attributes=4)
    assert len(u) > 4 + len(np.unique(data.cache.pitch[data.train_rows]))
    pattern = torch.zeros(2, 1024, 32)
    pattern[0, 100:200, 5:20] = 0.5
    u_of_row = {int(r): row for r, row in zip(data.train_rows, u)}
    planted = SimpleNamespace(**{**four.__dict__, "cache": _PlantedCache(data.cache, u_of_row, 3, pattern)})
    plain, _, _ = partial_effect_maps(four, T, 0.0)
    found, _, _ = partial_effect_maps(planted, T, 0.0, chunk=8)
    torch.testing.assert_close(found[3] - plain[3], pattern, rtol=0, atol=2e-3)
    torch.testing.assert_close(found[:3], plain[:3], rtol=0, atol=2e-3)
    assert float(plain.abs().max()) > 0.1  # the real notes' own effects are not the planted one


def test_single_edit_moves_one_logit_and_the_loss_has_units():
    g = torch.Generator().manual_seed(0)
    alpha = torch.rand(4, 6, generator=g) * 0.9 + 0.05
    idx, t = torch.tensor([0, 5, 2, 2]), torch.tensor([-3.0, 0.5, 2.0, -1.0])
    single, step = single_edit(alpha, idx, t)
    for n in range(4):
        moved = np.nonzero(np.abs(logit(single[n].numpy()) - logit(alpha[n].numpy())) > 1e-4)[0].tolist()
        assert moved == [int(idx[n])]
        assert float(step[n]) == pytest.approx(float(t[n]) - float(logit(alpha[n, idx[n]].numpy())), abs=1e-4)
    target = torch.randn(3, 2, 8, 4, generator=g)
    other = torch.randn(3, 2, 8, 4, generator=g)
    assert float(edit_matching_loss(target.clone(), target)) == pytest.approx(0.0, abs=1e-7)
    assert float(edit_matching_loss(torch.zeros_like(target), target)) == pytest.approx(1.0)
    assert float(edit_matching_loss(0.5 * target, target, "projection")) == pytest.approx(0.25, rel=1e-5)
    assert float(edit_matching_loss(target + 3 * other, target, "match")) > 1.0
    assert float(edit_matching_loss(target[:0], target[:0])) == 0.0
    with pytest.raises(ValueError, match="loss form must be one of"):
        edit_matching_loss(target, target, "cosine")
    with pytest.raises(ValueError, match="change"):
        edit_matching_loss(target[:2], target)


def test_partial_term_on_the_shipped_generator(prepared_dataset, adam_lowers):
    """Real weights: one partner row per edited note placed before g_steer's; the gradient reaches the
    edit's row, not the base note's; the target is pooled at a coarser scale; Adam steps lower it."""
    G, _ = load_generator(None)
    G.requires_grad_(True)
    cfg = apply_overrides(get_preset("tiny"), ["train.loss_weights.g_partial=1", "train.partial_ridge=0.1",
                                               "train.loss_weights.g_steer=1"])
    wt = WaveTerms(cfg.train, load_training_data(prepared_dataset), torch.device("cpu"))
    k = G.n_attributes  # the shipped generator's vocabulary: statistics of that many attributes
    g = torch.Generator().manual_seed(3)
    wt.partial_beta = 0.05 * torch.randn(k, 2, 1024, 32, generator=g)
    wt.partial_lo, wt.partial_hi, wt.partial_pool = torch.full((k,), -6.0), torch.full((k,), 1.0), torch.arange(k)
    wt.steer_coef, wt.steer_pool = torch.eye(k) + 0.3 * torch.ones(k, k), torch.arange(k)
    wt.steer_lo, wt.steer_hi = torch.full((k,), -6.0), torch.full((k,), 1.0)
    assert wt.partial and wt.teacher is None and wt.n_partials(4) == 2
    torch.manual_seed(0)
    z = torch.randn(4, G.cfg.latent_dim, requires_grad=True)
    alpha, p = torch.full((4, k), 0.05), torch.tensor([5, 9, 14, 20])
    draws = torch.tensor([[0.1, 0.9], [0.6, 1.0]] * 2)
    terms = wt.for_batch(p, alpha, torch.Generator().manual_seed(0), w=draws, e=draws)
    pr = terms.partners
    assert pr.n_partial == 2 and pr.n_steer == 2 and pr.rows.tolist() == [0, 1, 0, 1, 0, 1]
    assert pr.partial_index.tolist() == [int(0.1 * k), int(0.6 * k)]
    np.testing.assert_allclose(pr.partial_step.numpy(), [0.3 - logit(0.05), 1.0 - logit(0.05)], rtol=1e-5)  # t = lo + e (hi - lo)
    zg, pg, cg = _with_partners(z, p, alpha, pr)
    zg = zg.detach().requires_grad_(True)  # rows: 4 notes, 2 partial edits, 2 + 2 steer partners
    out = G(zg, pg, cg)
    loss = terms(out)["g_partial"]
    assert math.isfinite(float(loss.detach())) and float(loss.detach()) > 0
    loss.backward()
    assert float(zg.grad[4:6].abs().min()) > 0 and float(zg.grad[:4].abs().max()) == 0
    assert float(zg.grad[6:].abs().max()) == 0
    coarse = terms._partial_target((256, 32))
    torch.testing.assert_close(coarse, torch.nn.functional.avg_pool2d(terms._partial_target((1024, 32)), (4, 1)))
    adam_lowers(G, terms, (zg.detach(), pg, cg), "g_partial", float(loss.detach()))
    with pytest.raises(ValueError, match="draws e"):
        wt.for_batch(p, alpha, torch.Generator(), w=draws)


def test_partial_settings_are_validated(prepared_dataset):
    base = get_preset("tiny")
    for bad, key in [("train.loss_weights.g_partial=-1", "g_partial"), ("train.partial_fraction=0", "partial_fraction"),
                     ("train.partial_loss=cosine", "partial_loss"), ("train.partial_ridge=-0.1", "partial_ridge"),
                     ("train.partial_gain=0", "partial_gain")]:
        with pytest.raises(DarkGANError, match=key):
            apply_overrides(base, [bad])
    assert all(PRESETS[name]().train.loss_weights["g_partial"] == 0 for name in PRESETS)
    new = extend_on_resume(base, ["train.loss_weights.g_partial=5", "train.partial_loss=projection"], 0)
    assert (new.train.loss_weights["g_partial"], new.train.partial_loss) == (5, "projection")
    data = load_training_data(prepared_dataset)
    on = ["train.loss_weights.g_partial=1", "train.partial_ridge=0.1"]
    for bad, msg in [(["Kazoo of doom"], "partial_attributes: 'Kazoo of doom' is not in"),
                     ([data.attributes[0]] * 2, "named twice")]:
        cfg = apply_overrides(base, on + [f"train.partial_attributes={json.dumps(bad)}"])
        with pytest.raises(DarkGANError, match=msg):
            WaveTerms(cfg.train, data, torch.device("cpu"))
    few = SimpleNamespace(**{**data.__dict__, "train_rows": data.train_rows[:5]}, n_attributes=data.n_attributes)
    with pytest.raises(DarkGANError, match="set train.partial_ridge > 0"):
        partial_effect_maps(few, 2.0, 0.0)
    with pytest.raises(DarkGANError, match="g_partial > 0 needs attributes"):
        WaveTerms(apply_overrides(base, on).train, load_training_data(prepared_dataset, attributes=False),
                  torch.device("cpu"))


@pytest.mark.slow  # three short runs
def test_tiny_training_with_partial_resumes_exactly(resumes_exactly):
    """The term trains from the coarse scale beside ``g_steer``'s partners, and a run stopped after one
    step and resumed ends bit for bit where an uninterrupted one does."""
    run = ["train.iterations=[0,0,0,0,1,2]", "train.fade_in_jumps=0", "train.log_every=1",
           "train.output_terms_from_scale=4", "train.loss_weights.g_partial=1", "train.partial_ridge=0.1",
           "train.loss_weights.g_steer=1"]
    a, B = resumes_exactly(apply_overrides(get_preset("tiny"), run))
    assert a.finished and all(math.isfinite(a.last_metrics[k]) and a.last_metrics[k] > 0
                              for k in ("g_partial", "g_steer"))
    assert B["config"].config.train.loss_weights["g_partial"] == 1
