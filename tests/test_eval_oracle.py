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


def test_linear_oracle_moves_the_nearest_note_along_the_datas_own_effects(prepared_dataset):
    """``LinearEffectGenerator`` on the rendered notes: asked a training note's own labels it returns
    that note (nothing to move); asked one attribute higher, its answer differs from the nearest note
    by the attribute's regressed effect, in proportion to ``gain`` (gain -> 0: the nearest note)."""
    import torch

    from darkgan.data.magif import magif_to_wave
    from darkgan.evaluation.data import real_waves
    from darkgan.evaluation.oracle import LinearEffectGenerator
    from darkgan.teacher.vocabulary import load_vocabulary
    from darkgan.training.data import load_training_data
    from darkgan.training.terms import partial_effect_maps

    idx = [int(i) for i in load_vocabulary(prepared_dataset).indices]
    lin = LinearEffectGenerator(prepared_dataset, "efficientat-mn04", idx, 2.0, ridge=0.1)
    alpha = 1 / (1 + np.exp(-lin._u))
    own = lin(lin.pitch, alpha)
    np.testing.assert_allclose(own, real_waves(lin.cache, lin.rows), atol=2e-4)
    up = alpha[:3].copy()
    up[:, 2] = 1 / (1 + np.exp(-(lin._u[:3, 2] + 1.5)))  # attribute 2's logit 1.5 higher, same nearest notes
    assert np.array_equal(lin.nearest(lin.pitch[:3], up), lin.rows[:3])
    beta = partial_effect_maps(load_training_data(prepared_dataset), 2.0, 0.1)[0][2]
    x = lin.cache.load(lin.rows[:3]) + 1.5 * beta
    want = magif_to_wave(torch.cat([lin.cache.normalizer.denormalize(x)[:, :1].clamp(*lin._logmag_range),
                                    lin.cache.normalizer.denormalize(x)[:, 1:].clamp(-1, 1)], 1)).numpy()
    got = lin(lin.pitch[:3], up)
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert float(np.abs(got - own[:3]).max()) > 1e-3
    tiny = LinearEffectGenerator(prepared_dataset, "efficientat-mn04", idx, 2.0, ridge=0.1, gain=1e-6)
    np.testing.assert_allclose(tiny(lin.pitch[:3], up), own[:3], atol=2e-4)
    with pytest.raises(DataError, match="vocabulary is not the checkpoint's"):
        LinearEffectGenerator(prepared_dataset, "efficientat-mn04", idx[:4], 2.0, ridge=0.1)


def _tiny_model(root, path):
    """A random-weight ``tiny`` generator with ``root``'s vocabulary and normaliser, loaded as a DarkGAN."""
    import torch

    from darkgan.data.cache import NoteCache
    from darkgan.generation.api import DarkGAN
    from darkgan.models.checkpoint import CheckpointConfig, save_checkpoint
    from darkgan.models.config import get_preset
    from darkgan.models.generator import Generator
    from darkgan.teacher.efficientat import WEIGHTS_SHA256
    from darkgan.teacher.vocabulary import load_vocabulary

    voc, cfg = load_vocabulary(root), get_preset("tiny")
    torch.manual_seed(0)
    idx = [int(i) for i in voc.indices]
    cc = CheckpointConfig(config=cfg, attributes=list(voc.names), class_indices=idx, pitch_range=(44, 70),
                          normalizer=NoteCache(root).normalizer.to_dict(),
                          teacher={"id": "efficientat-mn04", "weights_sha256": WEIGHTS_SHA256},
                          temperature=2.0, attributes_enabled=True, scale=cfg.model.n_scales - 1)
    return DarkGAN.load(save_checkpoint(path, Generator(cfg.model, 27, len(idx)), cc))


def test_effects_added_to_a_generator_move_a_single_edit_by_the_datas_own_effect(prepared_dataset, tmp_path):
    """``EffectAddedGenerator`` on a generator with the rendered notes' vocabulary: at gain 0 it is the
    generator (the notes of ``generator_fn``); with gain g a one-attribute edit moves the normalised
    MAG-IF by the generator's own response plus exactly g x that attribute's regressed effect."""
    import torch

    from darkgan.evaluation.oracle import EffectAddedGenerator
    from darkgan.evaluation.taggers import generator_fn
    from darkgan.training.data import load_training_data
    from darkgan.training.terms import partial_effect_maps

    model = _tiny_model(prepared_dataset, tmp_path / "tiny")
    k = len(model.attributes)
    rng = np.random.default_rng(0)
    pitch, alpha = np.array([48, 60, 67]), rng.uniform(0.02, 0.3, (3, k))
    same = EffectAddedGenerator(model, prepared_dataset, ridge=0.1, gain=0.0)
    np.testing.assert_allclose(same(pitch, alpha, seed=3), generator_fn(model)(pitch, alpha, 3), atol=1e-5)
    up = alpha.copy()
    up[:, 2] = 1 / (1 + np.exp(-(np.log(alpha[:, 2] / (1 - alpha[:, 2])) + 1.5)))  # logit 1.5 higher
    z = rng.standard_normal((3, model.latent_dim)).astype(np.float32)
    beta = partial_effect_maps(load_training_data(prepared_dataset), 2.0, 0.1)[0][2]
    norm = same._normalizer.normalize
    own = norm(same.magif(z, pitch, up)) - norm(same.magif(z, pitch, alpha))
    for gain in (0.5, 2.0):
        added = EffectAddedGenerator(model, prepared_dataset, ridge=0.1, gain=gain)
        moved = norm(added.magif(z, pitch, up)) - norm(added.magif(z, pitch, alpha))
        torch.testing.assert_close(moved - own, (gain * 1.5 * beta).expand_as(own), atol=2e-4, rtol=1e-3)
    assert float((gain * 1.5 * beta).abs().max()) > 1e-2  # the effect is there to be seen
    waves = added(pitch, up, seed=3)
    assert waves.shape == (3, 16000) and np.isfinite(waves).all() and np.abs(waves).max() <= 1.0


def test_effects_need_the_checkpoints_vocabulary(prepared_dataset, tmp_path):
    from darkgan.evaluation.oracle import EffectAddedGenerator

    model = _tiny_model(prepared_dataset, tmp_path / "tiny")
    model.config.class_indices = list(model.config.class_indices)[:4]
    with pytest.raises(DataError, match="vocabulary is not the checkpoint's"):
        EffectAddedGenerator(model, prepared_dataset, ridge=0.1)
