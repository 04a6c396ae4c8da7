"""Steering (darkgan.generation.steer): the attributes not given follow the given ones as in the
data. Checked against the data itself (the conditional mean of the bank's own notes), and on the
shipped generator with the real teacher: asking for one attribute is heard when steered, and
barely when all else is fixed."""
from __future__ import annotations

import numpy as np
import pytest

from darkgan import DarkGAN
from darkgan.errors import DarkGANError
from darkgan.generation.steer import AttributePrior, logit


@pytest.fixture(scope="module")
def g():
    return DarkGAN.load("default")


def test_steering_is_the_conditional_mean_of_gaussian_data():
    """On samples of a known Gaussian, steering the mean vector to u_0 = t gives what the samples
    with u_0 near t have on average (the regression, checked by counting, not by formula)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T + 0.5 * np.eye(4)
    u = rng.multivariate_normal([-3.0, -2.0, -4.0, -1.0], cov, size=200_000)
    prior = AttributePrior.from_logits(u * 2.0, temperature=2.0)  # logits z = 2 u at T = 2
    t = -3.0 + 1.5 * np.sqrt(cov[0, 0])
    near = u[np.abs(u[:, 0] - t) < 0.05]
    base = 1 / (1 + np.exp(-prior.mean[None]))
    got = logit(prior.steer(base, [0], [1 / (1 + np.exp(-t))]))[0]
    assert got[0] == pytest.approx(t, abs=1e-4)
    assert np.allclose(got[1:], near[:, 1:].mean(0), atol=0.05), (got, near.mean(0))


def test_steering_keeps_what_is_asked_and_is_the_identity_when_all_is_given(g):
    prior = g.conditioner.prior
    alpha = g.validation_attributes()[:8]
    k = len(g.attributes)
    assert np.allclose(prior.steer(alpha, np.arange(k), alpha[0]), alpha[0][None], atol=1e-6)
    i = g.attribute_index("Acoustic guitar")
    out = prior.steer(alpha, [i], [0.6])
    assert np.all(out[:, i] == np.float32(0.6))
    # the attributes that go with it in the data rise with it; an unrelated one barely moves
    for name in ("Guitar", "Plucked string instrument"):
        j = g.attribute_index(name)
        assert np.all(out[:, j] > alpha[:, j] + 0.1), name
    assert np.array_equal(prior.steer(alpha, [], []), alpha)


def test_one_asked_attribute_is_heard_when_steered(g):
    """16 notes asked for "Guitar" at the user scale's 1 (the data's 99th percentile): steered, the
    teacher hears far more guitar than with all else fixed (the rise test's finding: the generator
    learnt real notes' conditioning, where guitar-like attributes rise together)."""
    idx = [g.attribute_index(n) for n in ("Guitar",)]
    steered = g.generate(60, {"Guitar": 1.0}, n=16, seed=4)
    assert g.last_report["steer"] == "data"
    fixed = g.generate(60, {"Guitar": 1.0}, n=16, seed=4, steer="none")
    ps = g.conditioner.teacher_attributes(steered)[:, idx[0]]
    pf = g.conditioner.teacher_attributes(fixed)[:, idx[0]]
    assert ps.mean() > pf.mean() + 0.1 and (ps > pf).mean() >= 0.75, (ps.mean(), pf.mean())


def test_bad_steer_is_an_error(g):
    with pytest.raises(DarkGANError, match="steer must be one of data, none"):
        g.generate(60, {"Guitar": 1.0}, steer="more")
    with pytest.raises(DarkGANError, match="steer must be one of"):
        g.attribute_vector({"Guitar": 1.0}, steer=None)


def test_instrument_descriptions_steer_unless_told_not_to(g):
    """An exported instrument's candidates take the description through the same steering
    (``InstrumentConfig.steer``): named attributes exact, the others moved; ``none`` keeps the draws."""
    from darkgan.instrument.export import _candidate_inputs

    seeds = np.array([3, 4])
    i = g.attribute_index("Brass instrument")
    _, steered, _ = _candidate_inputs(g, {"Brass instrument": 0.9}, None, None, "user", seeds, 57, "data")
    _, kept, _ = _candidate_inputs(g, {"Brass instrument": 0.9}, None, None, "user", seeds, 57, "none")
    drawn = np.stack([g.attribute_vector(None, seed=int(s), pitch=57) for s in seeds])
    assert np.array_equal(steered[:, i], kept[:, i])
    others = np.arange(len(g.attributes)) != i
    assert np.array_equal(kept[:, others], drawn[:, others])
    assert np.abs(steered[:, others] - drawn[:, others]).max() > 0.01


def test_timbre_code_probe_keeps_real_conditions_and_shrinks_a_single_attribute(g, load_benchmark):
    """``benchmarks/timbre_code.py`` on the shipped default: with all K components the condition
    is unchanged; with 16 a bank condition moves little while a single raised attribute keeps only
    a small share of its raise (why the probe bought no single-attribute rises)."""
    import torch

    tc = load_benchmark("timbre_code")
    model = g
    bank = model.bank
    alpha = torch.as_tensor(bank.alpha(np.arange(len(bank)), model.temperature))
    c = model.generator.condition(alpha)
    k = c.shape[1]
    mu, basis, kept = tc.principal_basis(c, k)
    assert kept == pytest.approx(1.0) and torch.allclose(mu + (c - mu) @ basis @ basis.T, c, atol=1e-3)
    mu, basis, kept = tc.principal_basis(c, 16)
    assert 0.6 < kept < 0.99
    proj = mu + (c - mu) @ basis @ basis.T
    rel = float((proj - c).square().sum(1).mean() / (c - mu).square().sum(1).mean())
    assert rel == pytest.approx(1 - kept, abs=0.02)
    own = (basis @ basis.T).diagonal()  # share of a single attribute's raise that reaches G
    assert float(own.median()) < 0.3
    with pytest.raises(ValueError, match="k must be"):
        tc.principal_basis(c, k + 1)
