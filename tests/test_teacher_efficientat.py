"""EfficientAT mn04_as teacher: architecture (strict load), preprocessing (hand computation and an
instrument hit-rate check on real FluidR3 notes), eval-mode guard, level rule, gradients (issue 3)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from darkgan.teacher import load_teacher
from darkgan.teacher.efficientat import (WEIGHTS_FILE, WEIGHTS_SHA256, MelFrontend, build_mn04,
                                         kaldi_mel_banks, load_mn04_state_dict)
from darkgan.teacher.sanity import CI_PITCHES, PROGRAM_CLASSES, hit_rates, render_notes
from darkgan.teacher.weights import candidate_paths
from darkgan.teacher.efficientat import WEIGHTS_SPEC

#: Thresholds from benchmarks/teacher_hit_rate.py on these 138 notes (35 programs x pitches
#: 44, 53, 62, 70): correct pipeline top-5 0.543, top-1-specific 0.355; the best broken one
#: (no pre-emphasis) 0.428 / 0.268, no 16->32 kHz resampling 0.391 / 0.246, magnitude instead
#: of power 0.275 / 0.123, -31 dBFS input without normalisation 0.420 / 0.275. Thresholds
#: sit halfway between the correct pipeline and the best broken one.
MIN_TOP5 = 0.49
MIN_TOP1_SPECIFIC = 0.31


def _weights_path():
    for p in candidate_paths(WEIGHTS_SPEC):
        if p.is_file():
            return p
    pytest.fail(f"{WEIGHTS_FILE} not found in {[str(p) for p in candidate_paths(WEIGHTS_SPEC)]} "
                "(set DARKGAN_MODELS_DIR=../shared/models)")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on the shared 2-core machine two threads can be 10x slower under load."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def teacher():
    return load_teacher("efficientat-mn04")


@pytest.fixture(scope="module")
def ci_notes(fluidr3):
    from darkgan.data.render import render_note

    return render_notes(lambda p, q: render_note(fluidr3, p, q, 100)[:16000], list(PROGRAM_CLASSES), CI_PITCHES)


@pytest.fixture(scope="module")
def piano(fluidr3):
    from darkgan.data.render import render_note

    return render_note(fluidr3, 0, 60, 100)[:16000]


def test_release_weights_load_strict():
    sd = load_mn04_state_dict(_weights_path())
    assert len(sd) == 312
    assert sum(v.numel() for v in sd.values()) == 993_485
    net = build_mn04()
    net.load_state_dict(sd, strict=True)  # raises on any missing/unexpected key or shape
    assert net.embedding_dim == 384
    assert net.classifier[2].in_features == 384 and net.classifier[5].out_features == 527
    assert any("conc_se_layers" in k for k in sd)


def test_teacher_attributes(teacher):
    assert teacher.id == "efficientat-mn04"
    assert teacher.num_classes == 527 == len(teacher.class_names) == len(teacher.class_mids)
    assert teacher.class_names[0] == "Speech" and teacher.class_names[137] == "Music"
    assert teacher.class_mids[137] == "/m/04rlf"
    assert teacher.weights_sha256 == WEIGHTS_SHA256
    assert teacher.embedding_dim == 384


def test_kaldi_mel_banks_against_hand_formula():
    """Band 40 of 128 (0-15 kHz, 32 kHz, n_fft 1024) from Kaldi's definition written out by hand."""
    w = kaldi_mel_banks()
    assert w.shape == (128, 513)
    assert np.all(w[:, 512] == 0) and w.min() >= 0 and w.max() <= 1
    mel = lambda f: 1127.0 * np.log(1 + f / 700.0)  # noqa: E731
    step = mel(15000.0) / 129
    left, center, right = 40 * step, 41 * step, 42 * step
    for k in range(512):
        m = mel(k * 31.25)
        expect = max(0.0, min((m - left) / (center - left), (right - m) / (right - center)))
        assert w[40, k] == pytest.approx(expect, abs=1e-12)


def test_mel_features_match_numpy_hand_computation(piano):
    """Pre-emphasis, symmetric Hann 800 centred in 1024, reflect-centred frames, power, Kaldi mel,
    log(x + 1e-5), (x + 4.5) / 5, all in numpy float64 on a real piano note at 32 kHz."""
    import soxr

    x = soxr.resample(piano / np.abs(piano).max() * 0.891, 16000, 32000, "VHQ").astype(np.float64)
    y = x[1:] - 0.97 * x[:-1]
    yp = np.pad(y, 512, mode="reflect")
    n_frames = 1 + len(y) // 320
    win = np.zeros(1024)
    win[112:912] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 799)
    frames = np.stack([yp[i * 320:i * 320 + 1024] * win for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [frames, 513]
    expected = (np.log(kaldi_mel_banks() @ power.T + 1e-5) + 4.5) / 5  # [128, frames]
    got = MelFrontend()(torch.from_numpy(x).float()[None])[0, 0].double().numpy()
    assert got.shape == expected.shape == (128, 100)
    assert np.abs(got - expected).max() < 2e-3
    # without pre-emphasis the features differ clearly (the hit-rate test alone may not see it)
    no_pre = MelFrontend(preemphasis=False)(torch.from_numpy(x).float()[None])[0, 0].double().numpy()
    assert no_pre.shape == (128, 101)  # the valid 2-tap pre-emphasis also drops one sample
    assert np.abs(no_pre[:, :100] - expected).mean() > 0.1


def test_instrument_hit_rate_on_fluidr3(teacher, ci_notes):
    waves, progs = ci_notes
    assert len(waves) >= 130
    r = hit_rates(teacher, waves, progs)
    assert r.top5 >= MIN_TOP5, r.table()
    assert r.top1_specific >= MIN_TOP1_SPECIFIC, r.table()


@pytest.mark.parametrize("broken", [dict(resample=False), dict(power=False)])
def test_broken_preprocessing_fails_the_hit_rate_check(ci_notes, broken):
    waves, progs = ci_notes
    r = hit_rates(load_teacher("efficientat-mn04", **broken), waves, progs)
    assert r.top5 < MIN_TOP5 or r.top1_specific < MIN_TOP1_SPECIFIC, (broken, r.top5, r.top1_specific)


def test_train_mode_cannot_change_batchnorm(ci_notes):
    t = load_teacher("efficientat-mn04", fuse=False)
    waves = ci_notes[0][:8]
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    ref = t.logits(waves)
    t.model.train()
    assert not any(m.training for m in t.model.modules())
    from darkgan.teacher.base import peak_normalize

    with torch.no_grad():  # a raw forward of the module "in train mode"
        out = t.model(peak_normalize(torch.from_numpy(waves)))[0]
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert (out - ref).abs().max() < 1e-4
    assert torch.allclose(t.logits(waves), ref)


def test_fused_batchnorm_gives_same_logits(ci_notes):
    waves = ci_notes[0][:16]
    a = load_teacher("efficientat-mn04", fuse=False).logits(waves)
    b = load_teacher("efficientat-mn04", fuse=True).logits(waves)
    assert (a - b).abs().max() < 1e-4


def test_level_normalisation_makes_scores_level_independent(teacher, piano):
    loud, quiet = teacher.logits(piano), teacher.logits(piano * np.float32(0.01))
    assert (loud - quiet).abs().max() < 1e-3
    raw = load_teacher("efficientat-mn04", normalize=False)
    assert (raw.logits(piano * np.float32(0.01)) - loud).abs().max() > 0.5  # the level does matter


def test_batching_probabilities_and_gradients(teacher, ci_notes):
    waves = ci_notes[0][:5]
    batch = teacher.logits(waves)
    single = torch.cat([teacher.logits(w) for w in waves])
    assert batch.shape == (5, 527) and batch.dtype == torch.float32 and not batch.requires_grad
    assert (batch - single).abs().max() < 2e-3  # float32 kernels differ with the batch size
    assert torch.allclose(teacher.probabilities(waves, temperature=2.0), torch.sigmoid(batch / 2), atol=1e-6)
    emb = teacher.embedding(waves)
    assert emb.shape == (5, 384) and torch.isfinite(emb).all()
    x = torch.from_numpy(waves[:2]).requires_grad_(True)
    out = teacher.logits(x, grad=True)
    assert out.requires_grad
    out[:, 140].sum().backward()  # "Guitar"
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.model.parameters())


def test_bad_inputs_are_clear_errors(teacher):
    from darkgan.errors import DarkGANError

    with pytest.raises(DarkGANError, match="shape"):
        teacher.logits(np.zeros((2, 3, 16000), np.float32))
    with pytest.raises(DarkGANError, match="temperature"):
        teacher.probabilities(np.zeros(16000, np.float32), temperature=0)
    with pytest.raises(DarkGANError, match="known teachers: efficientat-mn04, panns-cnn14, yamnet"):
        load_teacher("vggish")
