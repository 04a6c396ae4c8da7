"""The nearest-real-note reference generator (darkgan/evaluation/oracle.py) on a real labelled dataset."""
from __future__ import annotations

import numpy as np
import pytest

from darkgan.errors import DataError


def _oracle(root, metric):
    from darkgan.evaluation.oracle import NearestNoteGenerator
    from darkgan.teacher.vocabulary import load_vocabulary

    voc = load_vocabulary(root)
    return NearestNoteGenerator(root, "efficientat-mn04", [int(i) for i in voc.indices], 2.0, metric=metric)


@pytest.mark.parametrize("metric", ["std", "white"])
def test_each_training_note_answers_its_own_request(prepared_dataset, metric):
    """Asked with a training note's own soft labels (alpha = sigmoid(z / T)) and pitch, the oracle
    returns that very note, rebuilt from the MAG-IF cache as every real reference is; the seed
    changes nothing; a far-off request returns another note of the asked pitch."""
    from darkgan.evaluation.data import real_waves
    from darkgan.teacher.labels import load_labels
    from darkgan.teacher.vocabulary import load_vocabulary

    o = _oracle(prepared_dataset, metric)
    labels = load_labels(prepared_dataset)
    row = {s: i for i, s in enumerate(np.asarray(labels.note_str).tolist())}
    idx = [int(i) for i in load_vocabulary(prepared_dataset).indices]
    z = np.asarray(labels.logits)[[row[s] for s in o.cache.note_str[o.rows].tolist()]][:, idx]
    alpha = 1 / (1 + np.exp(-z / 2.0))
    assert np.array_equal(o.nearest(o.pitch, alpha), o.rows)
    waves = o(o.pitch, alpha, seed=0)
    assert waves.shape == (len(o.rows), 16000)
    assert np.array_equal(waves, real_waves(o.cache, o.rows)) and np.array_equal(waves, o(o.pitch, alpha, seed=7))
    far = alpha.copy()
    far[0] = 1 - far[0]  # every attribute flipped: not note 0 any more, but a note of its pitch
    got = o.nearest(o.pitch[:1], far[:1])[0]
    assert got != o.rows[0] and o.cache.pitch[got] == o.pitch[0]


def test_bad_requests_are_one_line_errors(prepared_dataset):
    from darkgan.evaluation.oracle import NearestNoteGenerator

    o = _oracle(prepared_dataset, "std")
    with pytest.raises(DataError, match="no training note at pitch 30"):
        o.nearest(np.array([30]), np.full((1, len(o._mean)), 0.5))
    with pytest.raises(DataError, match="oracle metric"):
        NearestNoteGenerator(prepared_dataset, "efficientat-mn04", [0, 1], 2.0, metric="cosine")
    with pytest.raises(DataError, match="no labelled training notes"):
        NearestNoteGenerator(prepared_dataset, "efficientat-mn04", [0, 1], 2.0, pitch_range=(100, 110))


def test_linear_oracle_moves_the_nearest_note_along_the_datas_own_effects(prepared_dataset):
    """``LinearEffectGenerator`` on the rendered notes: asked a training note's own labels it returns
    that note (nothing to move); asked one attribute higher, its answer differs from the nearest note
    by the attribute's regressed effect, in proportion to ``gain`` (gain -> 0: the nearest note)."""
    import torch

    from darkgan.data.magif import magif_to_wave
    from darkgan.evaluation.data import real_waves
    from darkgan.evaluation.oracle import LinearEffectGenerator
    from darkgan.teacher.vocabulary import load_vocabulary
    from darkgan.training.data import load_training_data
    from darkgan.training.terms import partial_effect_maps

    idx = [int(i) for i in load_vocabulary(prepared_dataset).indices]
    lin = LinearEffectGenerator(prepared_dataset, "efficientat-mn04", idx, 2.0, ridge=0.1)
    alpha = 1 / (1 + np.exp(-lin._u))
    own = lin(lin.pitch, alpha)
    np.testing.assert_allclose(own, real_waves(lin.cache, lin.rows), atol=2e-4)
    up = alpha[:3].copy()
    up[:, 2] = 1 / (1 + np.exp(-(lin._u[:3, 2] + 1.5)))  # attribute 2's logit 1.5 higher, same nearest notes
    assert np.array_equal(lin.nearest(lin.pitch[:3], up), lin.rows[:3])
    beta = partial_effect_maps(load_training_data(prepared_dataset), 2.0, 0.1)[0][2]
    x = lin.cache.load(lin.rows[:3]) + 1.5 * beta
    want = magif_to_wave(torch.cat([lin.cache.normalizer.denormalize(x)[:, :1].clamp(*lin._logmag_range),
                                    lin.cache.normalizer.denormalize(x)[:, 1:].clamp(-1, 1)], 1)).numpy()
    got = lin(lin.pitch[:3], up)
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert float(np.abs(got - own[:3]).max()) > 1e-3
    tiny = LinearEffectGenerator(prepared_dataset, "efficientat-mn04", idx, 2.0, ridge=0.1, gain=1e-6)
    np.testing.assert_allclose(tiny(lin.pitch[:3], up), own[:3], atol=2e-4)
    with pytest.raises(DataError, match="vocabulary is not the checkpoint's"):
        LinearEffectGenerator(prepared_dataset, "efficientat-mn04", idx[:4], 2.0, ridge=0.1)
