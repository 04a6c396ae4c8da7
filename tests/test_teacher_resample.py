"""16 -> 32 kHz torch resampler against soxr and scipy's resample_poly on a real note (issue 3)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from darkgan.teacher import resample as R
from darkgan.teacher.resample import Resampler, load_audio


@pytest.fixture(scope="module")
def note(fluidr3):
    from darkgan.data.render import render_note

    x = render_note(fluidr3, 24, 52, 100)[:16000]
    return (x / np.abs(x).max() * 0.891).astype(np.float32)


def _err_db(a, b, sl=slice(1000, 31000)):
    e = a[sl] - b[sl]
    return 10 * np.log10((e ** 2).mean() / (b[sl] ** 2).mean())


def test_matches_soxr_and_resample_poly(note):
    import soxr
    from scipy.signal import resample_poly

    y = Resampler(16000, 32000)(torch.from_numpy(note)[None])[0].numpy()
    assert y.shape == (32000,)
    assert _err_db(y, soxr.resample(note, 16000, 32000, "VHQ")) < -60
    assert _err_db(y, resample_poly(note.astype(np.float64), 2, 1)) < -50
    # a 16 kHz sample lands on every other output sample (zero-phase, no delay)
    assert np.abs(y[2000:30000:2] - note[1000:15000]).max() < 2e-3


def test_fft_and_conv_paths_agree_batched_and_differentiable(note, monkeypatch):
    x = torch.from_numpy(np.stack([note, note[::-1].copy(), 0.1 * note]))
    r = Resampler(16000, 32000)
    fft = r(x)
    monkeypatch.setattr(R, "FFT_MIN_LENGTH", 10 ** 9)
    conv = r(x)
    assert fft.shape == (3, 32000) and (fft - conv).abs().max() < 1e-5
    xg = x.clone().requires_grad_(True)
    r(xg).square().sum().backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


def test_other_ratio_and_identity():
    t = np.arange(4410) / 44100
    x = torch.from_numpy(np.sin(2 * np.pi * 1000 * t).astype(np.float32))[None]
    y = Resampler(44100, 16000)(x)[0].numpy()
    assert y.shape == (1600,)
    ref = np.sin(2 * np.pi * 1000 * np.arange(1600) / 16000)
    assert np.abs(y[200:1400] - ref[200:1400]).max() < 1e-3
    assert Resampler(16000, 16000)(x) is x


def test_load_audio_downmixes_and_resamples(tmp_path, note):
    import soundfile as sf
    import soxr

    from darkgan.errors import DataError

    stereo = soxr.resample(np.stack([note, 0.5 * note], 1), 16000, 44100)
    sf.write(tmp_path / "a.wav", stereo, 44100)
    y = load_audio(tmp_path / "a.wav")
    assert y.dtype == np.float32 and y.ndim == 1 and abs(len(y) - 16000) <= 1
    assert _err_db(y[:16000], 0.75 * note, slice(500, 15500)) < -40
    with pytest.raises(DataError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(DataError, match="bad.wav"):
        load_audio(tmp_path / "bad.wav")
