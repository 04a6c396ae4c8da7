"""The shipped ``default`` generator, trained with the word-control recipe (issue 15): what it is
asked for is what the teacher hears, and more so than from ``paper-small`` (the paper's recipe at
the same budget, the default before issue 15).

The paper's attribute correlation (Nistal et al. 2021, Sec. 4.4.2, Table 2): notes generated from
validation-note conditioning vectors alpha (the checkpoint's attribute bank), labelled again by the
teacher; Pearson rho between alpha_i and the teacher's F_i over the notes, averaged over all K attributes
and over the two Table-2 instruments the control recipe learnt best. Both checkpoints get the same
z, pitch and alpha.
"""
from __future__ import annotations

import numpy as np
import pytest

from darkgan import DarkGAN
from darkgan.evaluation.metrics.correlation import pearson_columns
from darkgan.evaluation.taggers import generator_fn, vocabulary_predictor

WORDS = ("Bass guitar", "Acoustic guitar")
N_NOTES = 256


def _rho(model: DarkGAN, rows: np.ndarray) -> tuple[float, float]:
    """(mean rho over the K attributes, mean rho over WORDS) for the bank rows ``rows [N_NOTES]``."""
    alpha = model.bank.alpha(rows, model.temperature)
    waves = generator_fn(model)(model.bank.pitch[rows], alpha, 7)
    heard = vocabulary_predictor(model.teacher, model.config.class_indices)(waves)
    rho = pearson_columns(alpha, heard)
    return float(np.nanmean(rho)), float(np.mean([rho[model.attributes.index(w)] for w in WORDS]))


@pytest.mark.slow
def test_default_follows_words_the_teacher_hears_more_than_the_paper_recipe():
    default, paper = DarkGAN.load("default"), DarkGAN.load("paper-small")
    assert default.attributes == paper.attributes
    rows = np.random.default_rng(3).choice(len(default.bank), N_NOTES, replace=False)
    (new_all, new_words), (old_all, old_words) = _rho(default, rows), _rho(paper, rows)
    # measured (256 notes; rows of seeds 3 / 4 / 5), step 33,386: all K 0.287 / 0.306 / 0.278 against
    # paper-small's 0.034 / 0.043 / 0.017; the two words 0.584 / 0.557 / 0.563 against 0.155 / 0.203 / 0.171
    # (the step-24,200 control model before it: 0.112-0.141 and 0.284-0.351)
    assert new_all > 0.2 and new_all - old_all > 0.15, (new_all, old_all)
    assert new_words > 0.45 and new_words - old_words > 0.25, (new_words, old_words)


@pytest.mark.parametrize("name", ["default", "student"])
def test_default_notes_start_without_a_burst(name):
    """Issue 15: every generator here began its notes with a thump (first 32 ms ~8-13 dB above the
    next 96 ms; real crops -3 dB). The shipped default was trained with ``g_envelope`` and begins
    cleaner than the paper's recipe, though not as cleanly as real notes: on the audible signal
    (20 Hz high-pass, stop 49; the infrasonic swell had hidden part of the click) over 512 notes
    its onset reads +4.4 dB median, 21 % above +6 dB, its student's +5.2 dB and 35 %, paper-small's
    +7.7 dB and 65 % (real crops -3.1 dB, 2 %; ``benchmarks/onset_burst.py``)."""
    from darkgan.evaluation.metrics.tail import onset_burst_db

    model = DarkGAN.load(name)
    rows = np.random.default_rng(0).choice(len(model.bank), 48, replace=False)
    waves = generator_fn(model)(model.bank.pitch[rows], model.bank.alpha(rows, model.temperature), 0)
    db = onset_burst_db(np.asarray(waves))
    assert np.median(db) < 6.0 and (db > 6.0).mean() <= 0.5, (np.median(db), (db > 6.0).mean())
