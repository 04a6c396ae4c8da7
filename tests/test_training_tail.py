"""The teacher on the note's tail (issue 15, ``g_tail``): a generator that returns the batch's real
notes pays nothing, another note's tail pays, an onset click is not heard; the setting is validated
and a tiny run with the term resumes exactly."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from darkgan.errors import DarkGANError
from darkgan.models.config import PRESETS, apply_overrides, get_preset
from darkgan.training.data import load_training_data
from darkgan.training.loop import extend_on_resume
from darkgan.training.terms import WaveTerms

_CLEAN = ["train.teacher_transforms=[]", "train.loss_weights.g_teacher=1", "train.loss_weights.g_tail=1"]


def _batch(prepared_dataset, n: int = 12):
    data = load_training_data(prepared_dataset)
    rows = np.asarray(data.train_rows)[:n]
    real = data.cache.load(rows, normalize=False).float()
    pitch = torch.from_numpy(data.pitch_index(rows).astype(np.int64))
    alpha = torch.sigmoid(torch.from_numpy(np.asarray(data.logits[rows], np.float32)) / 2.0)
    return data, real, pitch, alpha


def test_tail_term_hears_the_decay_and_not_the_onset(prepared_dataset):
    """Real rendered notes and the real teacher, no transforms: the batch's own real notes pay
    nothing; the same notes in another order (every tail another note's) pay; a bright onset click
    in the first 4 frames (ending before 0.2 s) moves ``g_teacher`` and leaves ``g_tail``."""
    data, real, pitch, alpha = _batch(prepared_dataset)
    terms = WaveTerms(apply_overrides(get_preset("tiny"), _CLEAN).train, data, torch.device("cpu"))
    assert terms.needs_real
    out = data.normalizer.normalize(real)
    own = terms.for_batch(pitch, alpha, torch.Generator(), real=real)(out)
    swapped = terms.for_batch(pitch, alpha, torch.Generator(), real=real)(out.roll(1, 0))
    assert float(own["g_tail"]) < 1e-3, float(own["g_tail"])
    assert float(swapped["g_tail"]) > 0.5, float(swapped["g_tail"])
    clicked = real.clone()
    clicked[:, 0, 256:, :4] += 6.0  # +52 dB above 4 kHz in frames 0-3 (log magnitude)
    click = terms.for_batch(pitch, alpha, torch.Generator(), real=real)(data.normalizer.normalize(clicked))
    assert float(click["g_teacher"]) > float(own["g_teacher"]) + 0.1, (click["g_teacher"], own["g_teacher"])
    assert float(click["g_tail"]) < 0.02, float(click["g_tail"])
    x = out.roll(1, 0).clone().requires_grad_(True)
    terms.for_batch(pitch, alpha, torch.Generator(), real=real)(x)["g_tail"].backward()
    late = x.grad[:, 0, :, 8:].abs().sum()  # the magnitude (the IF of every frame sets later phases)
    assert float(late) > 0 and float(x.grad[:, 0, :, :4].abs().sum()) < 1e-3 * float(late)
    with pytest.raises(ValueError, match="needs the real notes"):
        terms.for_batch(pitch, alpha, torch.Generator())


def test_teacher_gradient_magnitude_detaches_the_instantaneous_frequency(prepared_dataset):
    """``train.teacher_gradient=magnitude``: the teacher terms' gradient reaches the log magnitude
    and not the IF; ``g_f0`` still reaches the IF; the values are those of ``"magif"``."""
    data, real, pitch, alpha = _batch(prepared_dataset, 6)
    out = data.normalizer.normalize(real).roll(1, 0)
    grads, values = {}, {}
    for form in ("magif", "magnitude"):
        terms = WaveTerms(apply_overrides(get_preset("tiny"), _CLEAN + ["train.loss_weights.g_f0=1",
                                                                     f"train.teacher_gradient={form}"]).train,
                          data, torch.device("cpu"))
        for name in ("g_teacher", "g_tail", "g_f0"):
            x = out.clone().requires_grad_(True)
            t = terms.for_batch(pitch, alpha, torch.Generator(), real=real)(x)
            t[name].backward()
            grads[form, name] = [float(x.grad[:, c].abs().sum()) for c in (0, 1)]
            values[form, name] = float(t[name])
    for name in ("g_teacher", "g_tail", "g_f0"):
        assert values["magif", name] == pytest.approx(values["magnitude", name], rel=1e-5)
        assert grads["magif", name][0] > 0 and grads["magif", name][1] > 0
    assert grads["magnitude", "g_teacher"][1] == 0 and grads["magnitude", "g_tail"][1] == 0
    assert grads["magnitude", "g_teacher"][0] > 0 and grads["magnitude", "g_f0"][1] > 0
    with pytest.raises(DarkGANError, match="train.teacher_gradient must be one of magif, magnitude, got 'if'"):
        apply_overrides(get_preset("tiny"), ["train.teacher_gradient=if"])


def test_tail_setting_is_validated(prepared_dataset):
    with pytest.raises(DarkGANError, match=r"train.tail_from_s must be a finite number in \[0.05, 0.75\] s, got 0.9"):
        apply_overrides(get_preset("tiny"), ["train.tail_from_s=0.9"])
    with pytest.raises(DarkGANError, match="train.loss_weights.g_tail"):
        apply_overrides(get_preset("tiny"), ["train.loss_weights.g_tail=-1"])
    assert all(PRESETS[name]().train.loss_weights["g_tail"] == 0 for name in PRESETS)
    assert extend_on_resume(get_preset("tiny"), ["train.tail_from_s=0.3"], 0).train.tail_from_s == 0.3
    with pytest.raises(DarkGANError, match="g_tail > 0 needs attributes"):
        WaveTerms(apply_overrides(get_preset("tiny"), ["train.loss_weights.g_teacher=0", "train.loss_weights.g_tail=1"]).train,
                  load_training_data(prepared_dataset, attributes=False), torch.device("cpu"))


@pytest.mark.slow  # three short runs
def test_tiny_training_with_tail_term_resumes_exactly(resumes_exactly):
    """The term trains at the last scale, and a run stopped after one step and resumed ends bit for
    bit where an uninterrupted one does."""
    run = ["train.iterations=[0,0,0,0,1,2]", "train.fade_in_jumps=0", "train.log_every=1",
           "train.loss_weights.g_tail=1", "train.tail_from_s=0.3"]
    a, B = resumes_exactly(apply_overrides(get_preset("tiny"), run))
    assert a.finished and math.isfinite(a.last_metrics["g_tail"]) and a.last_metrics["g_tail"] >= 0
    assert B["config"].config.train.tail_from_s == 0.3
