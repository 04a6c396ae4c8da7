"""The checkpoints shipped inside the package (issue 4: the default; issue 6: the fast student)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from darkgan import DarkGAN
from darkgan.compression.bench import count_macs
from darkgan.errors import CheckpointError
from darkgan.models.checkpoint import load_generator, verify_checkpoint
from darkgan.paths import SHIPPED_CHECKPOINTS, provenance, shipped_checkpoint


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


def test_shipped_metadata_names_its_sources_the_same_on_every_machine(tmp_path):
    """``paths.provenance``: a shipped checkpoint as ``darkgan/assets/<folder>`` however it was
    reached, any other path as given; the student's recorded teacher and start are shipped ones."""
    assert provenance(shipped_checkpoint("default")) == "darkgan/assets/darkgan-default"
    assert provenance(shipped_checkpoint("student") / ".." / "darkgan-student") == "darkgan/assets/darkgan-student"
    assert provenance(tmp_path / "run") == str(tmp_path / "run")
    _, cfg = load_generator("student")
    assert cfg.extra["distillation"]["teacher"] == "darkgan/assets/darkgan-default"
    assert cfg.extra["initialised_from"] == "darkgan/assets/darkgan-student"
    assert cfg.extra["pruning"]["source"] == "darkgan/assets/darkgan-default"


def _profiles(model, z, pitch, alpha) -> np.ndarray:
    """Note-specific mean log-magnitude profiles ``[n, 1024]``: each note's MAG-IF log magnitude
    averaged over time, minus the mean over the notes (the common spectral slope)."""
    prof = model.generate_magif(z, pitch, alpha)[:, 0].mean(dim=-1).numpy()
    return prof - prof.mean(axis=0)


def test_student_is_a_smaller_imitation_of_its_teacher():
    """The student is distilled from the word-control ``default`` (pruned 50 %, one convolution per
    block, 13,414 steps with the f0 loss; docs/compression.md): for the same (z, pitch, attributes
    drawn from the bank) its note-specific log-magnitude profile must correlate with the default's,
    not with the default's for other inputs, and far less with ``paper-small``'s (the teacher of the
    student shipped before 2026-12-03); it has 1 convolution per block and >= 6x fewer MACs."""
    t, s, old = DarkGAN.load("default"), DarkGAN.load("student"), DarkGAN.load("paper-small")
    assert s.attributes == t.attributes and s.pitch_range == t.pitch_range
    assert s.config.model.convs_per_block == 1
    assert count_macs(s.generator, 128)[0] * 6 < count_macs(t.generator, 128)[0]
    n = 12
    pitch = np.linspace(*t.pitch_range, n).round().astype(np.int64)
    alpha = t.bank.alpha(t.bank.sample_rows(pitch, np.random.default_rng(0)), t.temperature)
    z = np.random.default_rng(0).standard_normal((n, t.latent_dim)).astype(np.float32)
    prof_s = _profiles(s, z, pitch, alpha)
    corr = np.corrcoef(prof_s, _profiles(t, z, pitch, alpha))[:n, n:]  # [student i, default j]
    same, other = np.diag(corr).mean(), corr[~np.eye(n, dtype=bool)].mean()
    old_same = np.diag(np.corrcoef(prof_s, _profiles(old, z, pitch, alpha))[:n, n:]).mean()
    # measured 0.78, -0.07 and 0.30 (13,414 steps; 0.72, -0.07, 0.27 after 8,000)
    assert same > 0.5 and other < 0.2 and old_same < same - 0.2, (same, other, old_same)


def test_student_generates_through_the_api():
    g = DarkGAN.load("student")
    x = g.generate(pitch=[48, 60, 67], attributes={"Tuning fork": 0.8}, n=3, seed=1)
    assert x.shape == (3, 16000) and x.dtype == np.float32 and np.isfinite(x).all()
    assert np.abs(x).max() <= 1.0
    rms_db = 20 * np.log10(np.sqrt((x.astype(np.float64) ** 2).mean(axis=1)) + 1e-12)
    assert (rms_db > -60).all(), rms_db


def test_the_default_ships_the_critic_it_was_judged_by():
    """The shipped default keeps a critic (``--init-critic default``): it loads into the critic of
    the default's configuration, checksummed, and it hears the default's notes: on 64 notes asked
    with the bank's attributes, its pitch head names the asked pitch far above chance (1 in 27) and
    its attribute head correlates with the asked attributes."""
    from safetensors.torch import load_file

    from darkgan.models.checkpoint import load_critic
    from darkgan.models.critic import Critic

    g, cfg = load_generator("default")
    tensors, meta = load_critic("default")
    assert meta.path == shipped_checkpoint("default")  # load_critic itself refuses a critic config.json has no sum for
    critic = Critic(cfg.config.model, g.n_pitches, g.n_attributes).eval()
    critic.load_state_dict(tensors)
    bank = load_file(shipped_checkpoint("default") / "attribute_bank.safetensors")
    gen = torch.Generator().manual_seed(0)
    rows = torch.randperm(bank["logits"].shape[0], generator=gen)[:64]
    alpha = torch.sigmoid(bank["logits"][rows] / cfg.temperature)
    pitch = bank["pitch"][rows].long() - cfg.pitch_range[0]
    with torch.no_grad():
        _, attr_logits, pitch_logits = critic(g(torch.randn(64, g.cfg.latent_dim, generator=gen), pitch, alpha))
    assert float((pitch_logits.argmax(1) == pitch).float().mean()) > 0.25
    r = torch.corrcoef(torch.stack([torch.sigmoid(attr_logits).flatten(), alpha.flatten()]))[0, 1]
    assert float(r) > 0.3
