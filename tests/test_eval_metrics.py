"""Proof that the evaluation metrics are right, on real rendered notes and the real teacher.

Real data: notes rendered from FluidR3_GM (``darkgan.data.render.render_note``, the datasets'
renderer): family "guitar" (GM programs 24-27) and family "organ" (GM 16-19), MIDI 44..67,
velocity 100, first second (the training crop). Embeddings: the EfficientAT teacher's
384-d clip embedding.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from darkgan.errors import DarkGANError
from darkgan.evaluation import metrics as M
from darkgan.evaluation.metrics import correlation as C

PITCHES = range(44, 68)


def _render(fluidr3, programs):
    from darkgan.data.render import render_note

    return np.stack([render_note(fluidr3, p, m, 100)[:16000] for p in programs for m in PITCHES]).astype(np.float32)


@pytest.fixture(scope="module")
def notes(fluidr3):
    """{"guitar": [96, 16000], "organ": [96, 16000], "noise": [96, 16000]} real notes + noise."""
    rng = np.random.default_rng(0)
    g = _render(fluidr3, (24, 25, 26, 27))
    o = _render(fluidr3, (16, 17, 18, 19))
    noise = (rng.standard_normal(g.shape) * 0.1).astype(np.float32)
    return {"guitar": g, "organ": o, "noise": noise}


@pytest.fixture(scope="module")
def teacher():
    from darkgan.teacher import load_teacher

    return load_teacher("efficientat-mn04")


@pytest.fixture(scope="module")
def emb(notes, teacher):
    return {k: teacher.embedding(v).numpy().astype(np.float64) for k, v in notes.items()}


def _halves(x, seed=0):
    perm = np.random.default_rng(seed).permutation(len(x))
    return x[perm[: len(x) // 2]], x[perm[len(x) // 2:]]


def _pca(sets: dict, k: int):
    """Project every set onto the top-k principal axes of all sets pooled (a k-d real embedding)."""
    pooled = np.concatenate(list(sets.values()))
    mu = pooled.mean(0)
    _, _, vt = np.linalg.svd(pooled - mu, full_matrices=False)
    return {n: (x - mu) @ vt[:k].T for n, x in sets.items()}


# --------------------------------------------------------------------------- registry
def test_registry_lists_and_rejects_unknown():
    names = M.list_metrics()
    for n in ("fad", "fad_inf", "kid", "is", "pis", "iis", "attribute_correlation", "ood_correlation",
              "increment_consistency", "pitch_accuracy"):
        assert n in names
    with pytest.raises(DarkGANError, match="unknown metric"):
        M.compute("fid", real=None)


# --------------------------------------------------------------------------- FAD
def test_fad_matches_independent_scipy_computation():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((200, 12))
    b = rng.standard_normal((150, 12)) @ rng.standard_normal((12, 12)) * 0.5 + 0.3
    ours = M.compute("fad", real=a, fake=b)["fad"]
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    ref = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    assert ours == pytest.approx(ref, rel=1e-8)


def test_fad_of_identical_gaussians_is_zero_and_symmetric():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((300, 8))
    assert M.compute("fad", real=a, fake=a)["fad"] == pytest.approx(0.0, abs=1e-9)
    b = rng.standard_normal((300, 8)) * 2
    assert M.compute("fad", real=a, fake=b)["fad"] == pytest.approx(M.compute("fad", real=b, fake=a)["fad"], rel=1e-9)


def test_fad_real_halves_far_below_other_family_and_noise(emb):
    # 16-d PCA of the teacher embedding keeps n = 48 per half > D (full-rank covariances)
    p = _pca({"g": emb["guitar"], "o": emb["organ"], "n": emb["noise"]}, 16)
    ga, gb = _halves(p["g"])
    half = M.compute("fad", real=ga, fake=gb)["fad"]
    fam = M.compute("fad", real=ga, fake=p["o"][:48])["fad"]
    noise = M.compute("fad", real=ga, fake=p["n"][:48])["fad"]
    assert half < 0.15 * fam, (half, fam)
    assert half < 0.05 * noise, (half, noise)
    assert fam < noise


def test_fad_on_full_teacher_embedding_orders_the_same_way(emb):
    # n = 48 < D = 384: only with allow_singular; the order must still hold
    ga, gb = _halves(emb["guitar"])
    with pytest.raises(DarkGANError, match="more samples than dimensions"):
        M.compute("fad", real=ga, fake=gb)
    f = {k: M.compute("fad", real=ga, fake=v, allow_singular=True)["fad"]
         for k, v in {"half": gb, "organ": emb["organ"][:48], "noise": emb["noise"][:48]}.items()}
    assert f["half"] < 0.3 * f["organ"] < 0.3 * f["noise"], f


def test_fad_inf_extrapolates_the_sample_size_bias():
    # same distribution: FAD(N) ~ c/N, so FAD-inf is much closer to 0 than FAD at the largest N
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((4000, 10))
    fake = rng.standard_normal((600, 10))
    r = M.compute("fad_inf", real=ref, fake=fake, steps=8, repeats=3, seed=0)
    assert r["ns"][0] > 10 and r["ns"][-1] == 600 and len(r["ns"]) == 8
    assert r["slope"] > 0
    assert abs(r["fad_inf"]) < 0.3 * r["fad"]
    with pytest.raises(DarkGANError, match="fewer than 3 subset sizes"):
        M.compute("fad_inf", real=ref, fake=fake[:12])


def test_fad_sample_size_and_shape_errors():
    rng = np.random.default_rng(4)
    with pytest.raises(DarkGANError, match="need at least 2"):
        M.compute("fad", real=rng.standard_normal((1, 3)), fake=rng.standard_normal((5, 3)))
    with pytest.raises(DarkGANError, match="dimensions differ"):
        M.compute("fad", real=rng.standard_normal((50, 3)), fake=rng.standard_normal((50, 4)))
    with pytest.raises(DarkGANError, match="NaN"):
        M.compute("fad", real=np.full((50, 3), np.nan), fake=rng.standard_normal((50, 3)))


# --------------------------------------------------------------------------- KID
def test_kid_real_halves_near_zero_far_below_family_and_noise(emb):
    ga, gb = _halves(emb["guitar"])
    half = M.compute("kid", real=ga, fake=gb, num_subsets=20)
    fam = M.compute("kid", real=ga, fake=emb["organ"], num_subsets=20)
    noise = M.compute("kid", real=ga, fake=emb["noise"], num_subsets=20)
    assert half["subset_size"] == 48 and half["kid_x1e4"] == pytest.approx(half["kid"] * 1e4)
    assert abs(half["kid"]) < 0.05 * fam["kid"], (half, fam)
    assert fam["kid"] < noise["kid"]


def test_kid_is_unbiased_on_same_distribution_draws():
    # independent draws of one distribution: mean KID over draws within noise of 0 (the biased
    # V-statistic would be clearly positive here)
    rng = np.random.default_rng(5)
    vals = []
    for _ in range(60):
        x = rng.standard_normal((40, 16)) + 0.5
        y = rng.standard_normal((40, 16)) + 0.5
        vals.append(M.compute("kid", real=x, fake=y, num_subsets=1)["kid"])
    vals = np.array(vals)
    se = vals.std(ddof=1) / np.sqrt(len(vals))
    assert abs(vals.mean()) < 3 * se, (vals.mean(), se)


def test_kid_matches_direct_formula_and_checks_subset_size():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((9, 3)) + 1
    k = lambda a, b: (a @ b.T / 3 + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    ref = ((k(x, x).sum() - np.trace(k(x, x))) / (m * (m - 1)) + (k(y, y).sum() - np.trace(k(y, y))) / (n * (n - 1))
           - 2 * k(x, y).mean())
    from darkgan.evaluation.metrics.kid import mmd2_unbiased

    assert mmd2_unbiased(x, y) == pytest.approx(ref, rel=1e-10)
    with pytest.raises(DarkGANError, match="exceeds the smaller set"):
        M.compute("kid", real=x, fake=y, subset_size=8)
    with pytest.raises(DarkGANError, match="subset size 1"):
        M.compute("kid", real=x, fake=y, subset_size=1)


def test_kid_reference_scale_tames_a_large_embedding(emb):
    """An embedding at 30x the scale (as a freshly trained classifier's can be), brought to unit
    mean square by reference_scale: the real halves are far below another family, the subsets
    (half the smaller set) differ, so their spread is not 0."""
    from darkgan.evaluation.metrics.kid import reference_scale
    from darkgan.evaluation.runner import kid_subset_size

    ga, gb = _halves(30 * emb["guitar"])
    organ = 30 * emb["organ"]
    s = reference_scale(ga)
    assert np.mean(np.square(s * ga)) == pytest.approx(1.0, rel=1e-6)
    assert reference_scale(ga / 30) == pytest.approx(30 * s, rel=1e-6)
    n = kid_subset_size(500, len(gb), len(ga))
    assert n == len(ga) // 2 and kid_subset_size(1000, 10_000, 10_000) == 1000
    half = M.compute("kid", real=s * ga, fake=s * gb, subset_size=n, num_subsets=20)
    fam = M.compute("kid", real=s * ga, fake=s * organ, subset_size=n, num_subsets=20)
    assert half["kid_std"] > 0 and abs(half["kid"]) < 0.1 * fam["kid"], (half, fam)


# --------------------------------------------------------------------------- IS
@pytest.mark.parametrize("c", [2, 11, 26])
def test_inception_score_bounds(c):
    confident_uniform = np.eye(c)[np.arange(10 * c) % c]
    assert M.compute("is", probs=confident_uniform)["is"] == pytest.approx(c, rel=1e-6)
    assert M.compute("pis", pitch_probs=confident_uniform)["pis"] == pytest.approx(c, rel=1e-6)
    constant = np.tile(np.random.default_rng(c).dirichlet(np.ones(c)), (50, 1))
    assert M.compute("iis", family_probs=constant)["iis"] == pytest.approx(1.0, abs=1e-9)


def test_inception_score_rejects_logits():
    with pytest.raises(DarkGANError, match="probability distribution"):
        M.compute("is", probs=np.random.default_rng(0).standard_normal((10, 4)))


# --------------------------------------------------------------------------- correlation
def test_increment_grids_follow_the_paper():
    d = C.ood_deltas()
    assert len(d) == 51 and d[0] == pytest.approx(1e-3) and d[-1] == pytest.approx(10 ** 0.6)
    assert np.all(np.diff(np.log10(d)) == pytest.approx(C.DELTA0 / 50))
    k = C.increment_deltas()
    assert len(k) == 26 and k[0] == 0 and k[-1] == pytest.approx(5.0)
    assert C.ood_levels(6)[0] == 0 and C.ood_levels(6)[-1] == 50 and C.increment_steps(100) == list(range(26))


def test_pearson_handles_constant_columns():
    a = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]])
    r = C.pearson_columns(a, a)
    assert r[0] == pytest.approx(1.0) and np.isnan(r[1])


def test_oracle_generator_correlation_equals_teacher_self_consistency(notes, teacher):
    """An oracle that returns the real note whose attribute vector was asked for: rho ~ 1.
    Random audio: rho ~ 0."""
    waves = np.concatenate([notes["guitar"], notes["organ"]])
    probs = teacher.probabilities(waves).numpy()
    # the 8 classes that vary most over these notes, as a vocabulary
    idx = np.argsort(-probs.std(0))[:8]
    alpha = probs[:, idx].astype(np.float32)
    pitch = np.tile(np.array(list(PITCHES)), 8)
    lookup = {a.tobytes(): i for i, a in enumerate(alpha)}

    def oracle(p, a, seed):
        return waves[[lookup[row.tobytes()] for row in np.asarray(a, np.float32)]]

    def random_audio(p, a, seed):
        r = np.random.default_rng(seed)
        return waves[r.integers(0, len(waves), len(p))]

    def predict(w):
        return teacher.probabilities(w).numpy()[:, idx]

    res = C.run_attribute_correlation(oracle, predict, pitch, alpha, batch=64)
    assert np.nanmin(res["rho"]) > 0.99, res["rho"]
    rnd = C.run_attribute_correlation(random_audio, predict, pitch, alpha, batch=64, seed=1)
    assert abs(rnd["mean_rho"]) < 0.15 and np.nanmax(np.abs(rnd["rho"])) < 0.3, rnd["rho"]


def test_increment_consistency_and_ood_on_a_linear_synthetic_generator():
    """A 'generator' whose tagger output is exactly its conditioning: IC(delta) = delta / std(alpha),
    OOD rho = 1 at every increment."""
    rng = np.random.default_rng(7)
    alpha = rng.uniform(0, 1, (50, 3)).astype(np.float32)
    pitch = np.full(50, 60)

    def gen(p, a, seed):
        return np.asarray(a, np.float64)

    ic = C.run_increment_consistency(gen, lambda w: w, pitch, alpha, [0, 2], C.increment_deltas([0, 5, 10]))
    expect = np.array([0, 1, 2])[:, None] / alpha[:, [0, 2]].std(0, ddof=1)[None]
    assert np.allclose(np.array(ic["ic"]), expect, rtol=1e-5)
    ood = C.run_ood_correlation(gen, lambda w: w, pitch, alpha, [1], C.ood_deltas([0, 25, 50]))
    assert np.allclose(ood["mean_rho"], 1.0)


def test_pitch_accuracy_metric_on_real_notes(notes):
    from darkgan.evaluation.metrics.pitch_accuracy import estimate_f0

    sel = notes["guitar"][::12]
    pitch = np.tile(np.array(list(PITCHES)), 4)[::12]
    f0 = estimate_f0(sel)
    r = M.compute("pitch_accuracy", f0_hz=f0, pitch=pitch)
    assert r["pitch_accuracy"] >= 0.75, r
    wrong = M.compute("pitch_accuracy", f0_hz=f0, pitch=pitch + 1)
    assert wrong["pitch_accuracy"] <= 0.25
