"""YAMNet through LiteRT: outputs, logits vs the model's own scores, no gradients (issue 3, item 4)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from darkgan.errors import DarkGANError
from darkgan.teacher import load_teacher


@pytest.fixture(scope="module")
def yamnet():
    return load_teacher("yamnet")


@pytest.fixture(scope="module")
def notes(fluidr3):
    from darkgan.data.render import render_note

    return np.stack([render_note(fluidr3, p, 60, 100)[:16000] for p in (0, 24, 56)])


def test_outputs_and_classes(yamnet, notes):
    assert yamnet.num_classes == 521 and yamnet.class_names[132] == "Music"
    assert yamnet.embedding_dim == 1024 and len(yamnet.weights_sha256) == 64
    logits, emb = yamnet.logits_and_embedding(notes)
    assert logits.shape == (3, 521) and emb.shape == (3, 1024)
    assert torch.isfinite(logits).all() and (emb >= 0).all()  # ReLU features, averaged


def test_logits_are_the_models_own_scores_before_the_sigmoid(yamnet, notes):
    from darkgan.teacher.base import peak_normalize

    x = peak_normalize(torch.from_numpy(notes[1:2])).numpy()[0, :15600]
    yamnet.interpreter.set_tensor(yamnet._in, x[None])
    yamnet.interpreter.invoke()
    scores = yamnet.interpreter.get_tensor(yamnet._scores)[0]
    p = yamnet.probabilities(notes[1:2])[0].numpy()
    assert np.abs(p - scores).max() < 1e-5
    assert yamnet.class_names[int(np.argmax(scores))] in ("Music", "Guitar", "Plucked string instrument")


def test_long_and_short_clips(yamnet, notes):
    long = np.concatenate([notes[0], notes[0], notes[0]])  # 3 s: 5 windows at the 0.48 s hop
    assert yamnet.logits(long).shape == (1, 521)
    assert yamnet.logits(notes[0][:8000]).shape == (1, 521)


def test_no_gradients(yamnet, notes):
    with pytest.raises(DarkGANError, match="no gradient support"):
        yamnet.logits(torch.from_numpy(notes).requires_grad_(True), grad=True)
