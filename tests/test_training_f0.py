"""The waveform pitch loss relative to the real notes (issue 15, ``train.f0_reference="real"``): on
rendered notes it charges only what a note lacks of its real note's periodicity; in the training
terms, a generator that returns the batch's real notes pays nothing; its setting is validated and a
tiny run with it resumes exactly."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from darkgan.errors import DarkGANError
from darkgan.models.config import PRESETS, apply_overrides, get_preset
from darkgan.training.data import load_training_data
from darkgan.training.loop import extend_on_resume
from darkgan.training.losses import f0_autocorrelation_loss, f0_relative_loss
from darkgan.training.terms import WaveTerms


def _noisy(wave: torch.Tensor, snr_db: float, seed: int) -> torch.Tensor:
    """``wave`` plus white noise ``snr_db`` below each note's RMS (a less periodic version)."""
    noise = torch.randn(wave.shape, generator=torch.Generator().manual_seed(seed))
    rms = wave.pow(2).mean(-1, keepdim=True).sqrt()
    return wave + noise * rms * 10 ** (-snr_db / 20)


def test_relative_f0_loss_charges_only_the_excess_over_the_real_note(rendered_notes):
    """30 rendered notes: against themselves they pay 0; made noisy they pay exactly their excess over
    the clean notes' own loss; clean notes measured against noisy references pay 0 and get no gradient."""
    wave, midi = rendered_notes
    midi = midi.float()
    noisy = _noisy(wave, 0.0, seed=1)
    per_clean = f0_autocorrelation_loss(wave, midi, reduction="none")
    per_noisy = f0_autocorrelation_loss(noisy, midi, reduction="none")
    assert per_clean.shape == (len(midi),)
    torch.testing.assert_close(per_clean.mean(), f0_autocorrelation_loss(wave, midi))
    assert float((per_noisy - per_clean).median()) > 0.05 and bool((per_noisy > per_clean).all()), per_noisy - per_clean
    assert float(f0_relative_loss(wave, wave, midi)) == 0.0
    excess = f0_relative_loss(noisy, wave, midi)
    torch.testing.assert_close(excess, (per_noisy - per_clean).clamp(min=0).mean())
    x = wave.clone().requires_grad_(True)
    ref = noisy.clone().requires_grad_(True)
    below = f0_relative_loss(x, ref, midi)
    below.backward()
    assert float(below) == 0.0 and float(x.grad.abs().max()) == 0.0 and ref.grad is None
    y = noisy.clone().requires_grad_(True)
    f0_relative_loss(y, wave, midi).backward()
    assert float(y.grad.abs().max()) > 0
    with pytest.raises(ValueError, match="shaped as wave"):
        f0_relative_loss(wave, wave[:3], midi)
    with pytest.raises(ValueError, match="reduction"):
        f0_autocorrelation_loss(wave, midi, reduction="sum")


def test_relative_f0_term_in_training_pays_nothing_for_the_real_notes(prepared_dataset):
    """The training term on the cached real notes: a generator whose output is the batch's real notes
    pays nothing with ``f0_reference="real"`` and its whole pitch loss with ``"none"``; the real notes
    are required."""
    data = load_training_data(prepared_dataset)
    rows = np.asarray(data.train_rows)
    real = data.cache.load(rows, normalize=False).float()
    out = data.normalizer.normalize(real)
    pitch = torch.from_numpy(data.pitch_index(rows).astype(np.int64))
    alpha = torch.full((len(rows), data.n_attributes), 0.05)
    base = ["train.loss_weights.g_teacher=0", "train.loss_weights.g_f0=1"]
    absolute = WaveTerms(apply_overrides(get_preset("tiny"), base).train, data, torch.device("cpu"))
    relative = WaveTerms(apply_overrides(get_preset("tiny"), base + ["train.f0_reference=real"]).train, data,
                         torch.device("cpu"))
    paid = float(absolute.for_batch(pitch, alpha, torch.Generator(), real=real)(out)["g_f0"])
    assert paid > 0.02, paid  # the real notes' own (absolute) pitch loss
    left = float(relative.for_batch(pitch, alpha, torch.Generator(), real=real)(out)["g_f0"])
    assert left < 1e-3 * paid, (left, paid)  # float rounding of the normalisation only
    blurred = out + 0.5 * torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    assert float(relative.for_batch(pitch, alpha, torch.Generator(), real=real)(blurred)["g_f0"]) > 0.02
    with pytest.raises(ValueError, match="needs the real notes"):
        relative.for_batch(pitch, alpha, torch.Generator())


def test_f0_reference_setting_is_validated():
    with pytest.raises(DarkGANError, match="train.f0_reference must be one of none, real, got 'fake'"):
        apply_overrides(get_preset("tiny"), ["train.f0_reference=fake"])
    assert all(PRESETS[name]().train.f0_reference == "none" for name in PRESETS)
    assert extend_on_resume(get_preset("tiny"), ["train.f0_reference=real"], 0).train.f0_reference == "real"


@pytest.mark.slow  # three short runs
def test_tiny_training_with_relative_f0_resumes_exactly(resumes_exactly):
    """The relative term trains at the last scale, and a run stopped after one step and resumed ends
    bit for bit where an uninterrupted one does."""
    run = ["train.iterations=[0,0,0,0,1,2]", "train.fade_in_jumps=0", "train.log_every=1",
           "train.loss_weights.g_f0=1", "train.f0_reference=real"]
    a, B = resumes_exactly(apply_overrides(get_preset("tiny"), run))
    assert a.finished and math.isfinite(a.last_metrics["g_f0"]) and a.last_metrics["g_f0"] >= 0
    assert B["config"].config.train.f0_reference == "real"
