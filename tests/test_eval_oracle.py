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
