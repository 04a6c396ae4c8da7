"""The shipped word-control generator ``control`` (issue 15): what it is asked for is what the
teacher hears, and more so than from the old ``default``.

The paper's attribute correlation (Nistal et al. 2021, Sec. 4.4.2, Table 2): notes generated from
validation-note conditioning vectors alpha (the checkpoint's attribute bank), labelled again by the
teacher; Pearson rho between alpha_i and the teacher's F_i over the notes, for the Table-2
instruments the control recipe learnt best. Both checkpoints get the same z, pitch and alpha.
"""
from __future__ import annotations

import numpy as np
import pytest

from darkgan import DarkGAN
from darkgan.evaluation.taggers import generator_fn, vocabulary_predictor

WORDS = ("Bass guitar", "Acoustic guitar", "Guitar")
N_NOTES = 192


def _rho(model: DarkGAN, rows: np.ndarray) -> np.ndarray:
    """rho of each word over the bank rows ``rows [N_NOTES]`` -> ``[len(WORDS)]``."""
    cols = [model.attributes.index(w) for w in WORDS]
    alpha = model.bank.alpha(rows, model.temperature)
    waves = generator_fn(model)(model.bank.pitch[rows], alpha, 7)
    heard = vocabulary_predictor(model.teacher, model.config.class_indices)(waves)
    return np.array([np.corrcoef(alpha[:, c], heard[:, c])[0, 1] for c in cols])


@pytest.mark.slow
def test_control_follows_words_the_teacher_hears_and_default_does_not():
    control, default = DarkGAN.load("control"), DarkGAN.load("default")
    assert control.attributes == default.attributes
    rows = np.random.default_rng(3).choice(len(control.bank), N_NOTES, replace=False)
    new, old = _rho(control, rows), _rho(default, rows)
    # measured (192 notes, rows of seeds 3 / 4): control 0.52 0.47 0.43 / 0.36 0.34 0.37,
    # default 0.20 0.12 0.16 / 0.08 0.03 0.05
    assert (new > 0.25).all() and (new - old > 0.15).all(), (new, old)
