"""The checkpoints shipped inside the package (issue 4: the default; issue 6: the fast student)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from darkgan import DarkGAN
from darkgan.compression.bench import count_macs
from darkgan.errors import CheckpointError
from darkgan.models.checkpoint import load_generator, verify_checkpoint
from darkgan.paths import SHIPPED_CHECKPOINTS, shipped_checkpoint


@pytest.mark.parametrize("name", list(SHIPPED_CHECKPOINTS))
def test_shipped_checkpoints_load_by_name_and_their_checksums_hold(name):
    verify_checkpoint(shipped_checkpoint(name))
    g, cfg = load_generator(name)
    assert cfg.path == shipped_checkpoint(name)
    assert cfg.n_attributes == 128 and len(cfg.attributes) == 128
    assert (shipped_checkpoint(name) / "generator.safetensors").stat().st_size < 30e6
    with pytest.raises(KeyError, match="shipped: default, student, paper-small"):
        shipped_checkpoint("nope")
    with pytest.raises(CheckpointError, match="shipped checkpoints by name: default, student, paper-small"):
        load_generator("nope-not-a-folder")


def test_student_is_a_smaller_imitation_of_its_teacher():
    """The student was distilled from ``paper-small`` (the default until 2026-12-03; its
    re-distillation from the word-control default is in progress, docs/compression.md): for the
    same (z, pitch, attributes) its note-specific log-magnitude profile must correlate with its
    teacher's, and not with the teacher's for other inputs; it has 1 convolution per block and
    >= 6x fewer MACs."""
    t, t_cfg = load_generator("paper-small")
    s, s_cfg = load_generator("student")
    assert s_cfg.attributes == t_cfg.attributes and s_cfg.pitch_range == t_cfg.pitch_range
    assert s.cfg.convs_per_block == 1 and count_macs(s, 128)[0] * 6 < count_macs(t, 128)[0]
    gen = torch.Generator().manual_seed(0)
    n = 12
    z = torch.randn(n, t.cfg.latent_dim, generator=gen)
    pitch = torch.linspace(0, t.n_pitches - 1, n).round().long()
    attrs = torch.rand(n, 128, generator=gen) * 0.5
    with torch.inference_mode():
        prof_t = t(z, pitch, attrs)[:, 0].mean(dim=-1)  # [n, 1024] mean normalised log magnitude per bin
        prof_s = s(z, pitch, attrs)[:, 0].mean(dim=-1)
    # note-specific part of each profile: minus the mean over the notes (the common spectral slope)
    prof_t, prof_s = prof_t - prof_t.mean(dim=0), prof_s - prof_s.mean(dim=0)
    corr = np.corrcoef(prof_s.numpy(), prof_t.numpy())[:n, n:]  # [student i, teacher j]
    same = np.diag(corr).mean()
    other = corr[~np.eye(n, dtype=bool)].mean()
    assert same > 0.5 and other < 0.2, (same, other)  # measured 0.63 and -0.05 (8,000 steps from the earlier student)


def test_student_generates_through_the_api():
    g = DarkGAN.load("student")
    x = g.generate(pitch=[48, 60, 67], attributes={"Tuning fork": 0.8}, n=3, seed=1)
    assert x.shape == (3, 16000) and x.dtype == np.float32 and np.isfinite(x).all()
    assert np.abs(x).max() <= 1.0
    rms_db = 20 * np.log10(np.sqrt((x.astype(np.float64) ** 2).mean(axis=1)) + 1e-12)
    assert (rms_db > -60).all(), rms_db
