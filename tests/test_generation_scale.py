"""The user scale of attribute values (issue 15, item 5) on the real shipped checkpoint: user value 0
is the attribute bank's median probability, 1 its 99th percentile, and the API, the conversion
and the raw scale agree."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from darkgan import DarkGAN
from darkgan.errors import DarkGANError
from darkgan.generation.api import GenerationWarning


@pytest.fixture(scope="module")
def g():
    return DarkGAN.load("default")


def test_user_zero_is_the_median_and_one_the_99th_percentile(g):
    bank = g.validation_attributes()  # [4096, 128] raw probabilities of the shipped bank's validation notes
    assert bank.shape == (4096, 128)
    k = len(g.attributes)
    zeros = np.zeros(k)
    for name in ("Tuning fork", "Guitar", "Saxophone", "Percussion", "Gong"):
        i = g.attribute_index(name)
        typical = g.attribute_vector({name: 0.0}, base=zeros)[i]
        extreme = g.attribute_vector({name: 1.0}, base=zeros)[i]
        col = bank[:, i].astype(np.float64)
        # quantiles of alpha = sigmoid(quantiles of z / T) up to the interpolation between neighbouring notes
        assert typical == pytest.approx(np.median(col), rel=2e-3), name
        assert extreme == pytest.approx(np.quantile(col, 0.99), rel=2e-3), name
        with pytest.warns(GenerationWarning, match="above 1"):
            assert g.attribute_vector({name: 2.0}, base=zeros)[i] > extreme > typical
        assert g.attribute_vector({name: -1.0}, base=zeros)[i] < typical
    # every attribute: the share of bank notes at or below user value 1 is 99 %, below 0 half (up to
    # the ties of the bank's float16 logits: a few notes of 4,096)
    user = g.attribute_scale.to_user(bank)
    assert np.abs((user <= 1 + 1e-4).mean(0) - 0.99).max() < 0.005
    assert np.abs((user < 0).mean(0) - 0.5).max() < 0.005


def test_round_trip_between_user_and_raw(g):
    s = g.attribute_scale
    v = np.linspace(-2, 3, 11, dtype=np.float32)[:, None].repeat(len(g.attributes), 1)
    np.testing.assert_allclose(s.to_user(s.to_raw(v)), v, atol=2e-4)
    bank = g.validation_attributes()[:256]
    np.testing.assert_allclose(s.to_raw(s.to_user(bank)), bank, rtol=1e-4, atol=1e-7)


def test_generate_on_the_user_scale_is_generate_on_the_raw_scale_of_its_value(g):
    i = g.attribute_index("Tuning fork")
    raw = float(g.attribute_scale.to_raw(0.8, i))
    assert 0.01 < raw < 0.1  # the shipped data's range for this attribute: "0.8" is no longer 10x beyond it
    a = g.generate(60, {"Tuning fork": 0.8}, n=2, seed=4)
    b = g.generate(60, {"Tuning fork": raw}, n=2, seed=4, scale="raw")
    assert np.array_equal(a, b)
    assert g.last_report["scale"] == "raw" and g.last_report["attributes"] == {"Tuning fork": raw}


def test_out_of_distribution_values_warn_and_bad_scales_are_errors(g):
    with pytest.warns(GenerationWarning, match="Tuning fork=1.5.*|above 1"):
        g.generate(60, {"Tuning fork": 1.5}, n=1, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GenerationWarning)
        g.attribute_vector({"Tuning fork": -0.5, "Guitar": 1.0}, base=np.zeros(len(g.attributes)))  # in the data
    with pytest.warns(GenerationWarning, match=r"\[0, 1\]"):
        g.attribute_vector({"Tuning fork": 1.5}, base=np.zeros(len(g.attributes)), scale="raw")
    with pytest.raises(DarkGANError, match="scale='loud'"):
        g.generate(60, {"Tuning fork": 0.5}, scale="loud")
