"""Timbre consistency across pitch in training (issue 21, ``train.loss_weights.g_consistency``):
the loss on the shipped generator's real weights and on real rendered notes with the real
EfficientAT teacher, its settings' validation, and a tiny training that uses it and resumes exactly."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from darkgan.errors import DarkGANError, DataError
from darkgan.models.checkpoint import load_generator, load_training_state
from darkgan.models.config import PRESETS, apply_overrides, get_preset
from darkgan.training.data import load_training_data
from darkgan.training.losses import cosine_distance, neighbour_pitches, timbre_consistency_loss
from darkgan.training.loop import _with_partners, train
from darkgan.training.terms import Partners, WaveTerms, unrelated_distance

# the last two scales of tiny, the term from the coarser one (nearest-up-sampled for the teacher)
RUN = ["train.iterations=[0,0,0,0,1,2]", "train.fade_in_jumps=0", "train.log_every=1",
       "train.output_terms_from_scale=4", "train.loss_weights.g_consistency=1", "train.consistency_max_offset=2"]


@pytest.fixture(scope="module")
def teacher():
    from darkgan.teacher import load_teacher

    return load_teacher("efficientat-mn04")


def test_neighbour_pitches_stay_in_range_and_cover_both_sides():
    p = torch.arange(20).repeat_interleave(50)
    q = neighbour_pitches(p, 20, 3, torch.rand(len(p), generator=torch.Generator().manual_seed(0)))
    d = q - p
    assert int(q.min()) >= 0 and int(q.max()) <= 19 and bool((d != 0).all()) and int(d.abs().max()) == 3
    assert set(d.tolist()) == {-3, -2, -1, 1, 2, 3}
    edge = neighbour_pitches(torch.tensor([0, 19]), 20, 3, torch.tensor([0.99, 0.0]))  # -3 at 0, +1 at 19
    assert edge.tolist() == [3, 18]
    with pytest.raises(ValueError, match="pitches"):
        neighbour_pitches(p, 5, 3, torch.rand(len(p)))


def test_consistency_on_the_shipped_generator(teacher):
    """Real weights: the partners generated in the batch's forward are the same (z, alpha) at
    the neighbouring pitch; the loss is 0 for identical notes, positive and differentiable (to z
    and to the generator's weights) for neighbouring pitches."""
    from darkgan.data.magif import Normalizer, magif_to_note

    G, cc = load_generator(None)
    G.requires_grad_(True)
    norm = Normalizer.from_dict(cc.normalizer)
    torch.manual_seed(0)
    z = torch.randn(3, G.cfg.latent_dim, requires_grad=True)
    alpha = torch.full((3, G.n_attributes), 0.05)
    p = torch.tensor([5, 12, 20])
    partner = torch.tensor([7, 11, 20])  # the last pair: the same pitch, an identical note
    zg, pg, ag = _with_partners(z, p, alpha, Partners(torch.arange(3), partner, alpha, 3, torch.zeros(0)))
    out = G(zg, pg, ag)
    with torch.no_grad():
        alone = G(z, partner, alpha)
    # batched and single forwards differ by float round-off (oneDNN picks kernels by batch size and
    # thread count: up to ~1e-4 on outputs of magnitude ~4); another pitch would differ by ~1
    assert out.shape[0] == 6 and torch.allclose(out[3:], alone, atol=1e-3)
    emb = teacher.embedding(magif_to_note(norm.denormalize(out)), grad=True)
    d = cosine_distance(emb[:3], emb[3:]).detach()
    assert float(d[2]) < 1e-6 and float(d[:2].min()) > 1e-3
    assert float(timbre_consistency_loss(emb[2:3], emb[2:3], 0.3).detach()) == 0.0
    loss = timbre_consistency_loss(emb[:3], emb[3:], 0.3)
    assert float(loss.detach()) > 0
    loss.backward()
    assert torch.isfinite(z.grad).all() and float(z.grad[:2].abs().max()) > 0
    assert float(G.format.weight.grad.abs().max()) > 0


def test_consistency_unit_is_unrelated_real_notes(prepared_dataset, teacher):
    """On real rendered notes: the unit (mean distance of unrelated training notes) is positive;
    the same instrument an octave apart scores lower than two different instruments."""
    from darkgan.data.magif import magif_to_note

    data = load_training_data(prepared_dataset)
    unit = unrelated_distance(teacher, data, seed=0)
    assert 0.01 < unit < 1.5
    c = data.cache
    rows = {(str(i), int(p)): r for r, (i, p) in enumerate(zip(c.instrument_str, c.pitch))}
    inst = sorted({i for i, _ in rows})
    lo = [rows[(i, 48)] for i in inst]
    hi = [rows[(i, 60)] for i in inst]
    with torch.no_grad():
        wave = magif_to_note(torch.from_numpy(np.asarray(data.cache.magif[lo + hi], dtype=np.float32)))
        e = teacher.embedding(wave)
    n = len(inst)
    same = float(timbre_consistency_loss(e[:n], e[n:], unit))
    other = float(timbre_consistency_loss(e[:n], e[n:].roll(1, 0), unit))
    assert same < other and math.isfinite(same)


def test_consistency_settings_are_validated(prepared_dataset):
    base = get_preset("tiny")
    for bad, key in [("train.loss_weights.g_consistency=-1", "g_consistency"),
                     ("train.consistency_fraction=0", "consistency_fraction"),
                     ("train.consistency_fraction=1.5", "consistency_fraction"),
                     ("train.consistency_fraction=nan", "consistency_fraction"),
                     ("train.consistency_max_offset=0", "consistency_max_offset")]:
        with pytest.raises(DarkGANError, match=key):
            apply_overrides(base, [bad])
    assert all(PRESETS[name]().train.loss_weights["g_consistency"] == 0 for name in PRESETS)
    cfg = apply_overrides(base, ["train.loss_weights.g_consistency=1", "train.consistency_max_offset=11"])
    with pytest.raises(DataError, match="20 pitches"):  # 48..67
        WaveTerms(cfg.train, load_training_data(prepared_dataset), torch.device("cpu"))


@pytest.mark.slow  # ~5 s of CPU (three short runs, the teacher loaded in each); 55 s wall on the loaded machine
def test_tiny_training_with_consistency_resumes_exactly(prepared_dataset, tmp_path):
    """The term trains from the coarse scale (logged as g_consistency) and a run stopped after one
    step and resumed ends bit for bit where an uninterrupted one does."""
    cfg = apply_overrides(get_preset("tiny"), RUN)
    a = train(prepared_dataset, tmp_path / "a", config=cfg, progress=False, threads=1)
    assert a.finished and math.isfinite(a.last_metrics["g_consistency"]) and a.last_metrics["g_consistency"] > 0
    b = train(prepared_dataset, tmp_path / "b", config=cfg, progress=False, threads=1, stop_at_step=1)
    assert b.last_metrics["g_consistency"] > 0  # scale 4: the coarse output, up-sampled
    b = train(prepared_dataset, tmp_path / "b", resume=True, progress=False, threads=1)
    A, B = load_training_state(a.checkpoint), load_training_state(b.checkpoint)
    for part in ("generator", "ema", "critic"):
        assert all(torch.equal(t, B[part][k]) for k, t in A[part].items()), part
    assert B["config"].config.train.loss_weights["g_consistency"] == 1
