"""PANNs CNN14 with random weights: upstream key names, strict round trip, shapes (issue 3, item 3)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from darkgan.errors import WeightsError
from darkgan.teacher import load_teacher
from darkgan.teacher.panns import Cnn14, _STFT, load_cnn14_state_dict, slaney_mel_banks


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the shared 2-core machine: one thread is faster under load
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return load_teacher("panns-cnn14", random_init=True)


def test_upstream_key_names_and_strict_round_trip(teacher, tmp_path):
    sd = teacher.net.state_dict()
    for key in ("spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight",
                "logmel_extractor.melW", "bn0.running_mean", "conv_block1.conv1.weight",
                "conv_block6.bn2.num_batches_tracked", "fc1.weight", "fc_audioset.bias"):
        assert key in sd, key
    assert sd["logmel_extractor.melW"].shape == (513, 64)
    assert sd["fc_audioset.weight"].shape == (527, 2048)
    path = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"model": sd, "iteration": 660000}, path)  # the upstream checkpoint layout
    fresh = Cnn14()
    fresh.load_state_dict(load_cnn14_state_dict(path), strict=True)
    x = torch.randn(1, 32000) * 0.1
    assert torch.allclose(fresh(x)[0], teacher.net(x)[0], atol=1e-5)
    torch.save({"model": {"fc1.weight": torch.zeros(3)}}, tmp_path / "wrong.pth")
    with pytest.raises(WeightsError, match="not a CNN14 checkpoint"):
        load_teacher("panns-cnn14", weights=tmp_path / "wrong.pth")


def test_shapes_finite_and_eval_mode(teacher):
    x = np.random.default_rng(0).standard_normal((2, 8000)).astype(np.float32) * 0.1
    logits, emb = teacher.logits_and_embedding(x)
    assert logits.shape == (2, 527) and emb.shape == (2, 2048)
    assert torch.isfinite(logits).all() and torch.isfinite(emb).all()
    teacher.net.train()
    assert not teacher.net.training
    assert torch.allclose(teacher.logits(x), logits)
    xg = torch.from_numpy(x[:1]).requires_grad_(True)
    teacher.logits(xg, grad=True).sum().backward()
    assert torch.isfinite(xg.grad).all()


def test_frontend_matches_librosa_and_torch_stft():
    import librosa

    ref = librosa.filters.mel(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000)
    assert np.abs(slaney_mel_banks() - ref).max() < 1e-6
    x = torch.randn(2, 32000)
    power = _STFT()(x)[:, 0]  # [B, frames, 513]
    ref = torch.stft(x, 1024, 320, window=torch.hann_window(1024), center=True, pad_mode="reflect",
                     return_complex=True).abs().square().transpose(1, 2)
    assert power.shape == ref.shape == (2, 101, 513)
    assert (power - ref).abs().max() / ref.abs().max() < 1e-4


def test_missing_checkpoint_message(monkeypatch, tmp_path):
    import darkgan.paths

    monkeypatch.setenv("DARKGAN_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("DARKGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(darkgan.paths, "REPO_ROOT", tmp_path / "repo")
    with pytest.raises(WeightsError, match="zenodo.org/record/3987831"):
        load_teacher("panns-cnn14")
