"""Timbre transfer as a ranking in training (issue 15, ``train.loss_weights.g_retrieval``): the
loss's value by hand, the term on the shipped generator's real weights with the real EfficientAT
teacher and the shipped bank's real labels (it trains the latents), its reference attributes and
unit on the rendered dataset, its settings' validation, and a tiny training that uses it and
resumes exactly."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from darkgan.errors import DarkGANError
from darkgan.generation.bank import load_bank
from darkgan.models.checkpoint import load_generator
from darkgan.models.config import PRESETS, apply_overrides, get_preset
from darkgan.paths import shipped_checkpoint
from darkgan.training.data import load_training_data
from darkgan.training.losses import augment_for_teacher, teacher_retrieval_loss
from darkgan.training.terms import WaveTerms, reference_attributes

RUN = ["train.iterations=[0,0,0,0,1,2]", "train.fade_in_jumps=0", "train.log_every=1",
       "train.output_terms_from_scale=4", "train.loss_weights.g_retrieval=1", "train.retrieval_negatives=7"]


def test_retrieval_loss_by_hand():
    T, scale = 2.0, 0.1
    p = torch.tensor([[0.9, 0.1], [0.2, 0.7]])
    z = T * torch.log(p / (1 - p))  # logits whose soft labels are p
    own = torch.tensor([[0.8, 0.1], [0.2, 0.2]])
    refs = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.2, 0.7]])
    d = torch.stack([((p - own) ** 2).sum(-1)] + [((p - r) ** 2).sum(-1) for r in refs], dim=1)  # [2, 1 + 3]
    want = -torch.log_softmax(-d / scale, dim=1)[:, 0].mean()
    got = teacher_retrieval_loss(z, own, refs, T, scale)
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    # note 0 is nearest its own attributes, note 1 sits on reference 2: it costs more
    per = -torch.log_softmax(-d / scale, dim=1)[:, 0]
    assert float(per[1]) > math.log(4) > float(per[0])
    # labels equally far from every candidate: log(N + 1)
    flat = teacher_retrieval_loss(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]]),
                                  torch.tensor([[0.5, 0.5], [0.5, 0.5]]), T, 1.0)
    assert float(flat) == pytest.approx(math.log(3), rel=1e-6)
    assert float(teacher_retrieval_loss(z[:0], own[:0], refs, T, scale)) == 0.0
    for bad in [(z, own, refs[:0], T, scale), (z, own[:, :1], refs, T, scale), (z, own, refs, T, 0.0)]:
        with pytest.raises(ValueError, match="teacher_retrieval_loss"):
            teacher_retrieval_loss(*bad)


def test_reference_attributes_of_the_rendered_dataset(prepared_dataset):
    data = load_training_data(prepared_dataset)
    alpha, unit = reference_attributes(data, seed=0, temperature=2.0)
    n = min(8192, len(data.train_rows))
    assert alpha.shape == (n, len(data.attributes)) and float(alpha.min()) > 0 and float(alpha.max()) < 1
    want = torch.sigmoid(torch.as_tensor(np.asarray(data.logits)[np.sort(data.train_rows)], dtype=torch.float32) / 2)
    assert torch.allclose(alpha.sort(0).values, want.sort(0).values)  # every training note once
    head = alpha[:1024]
    d = torch.cdist(head, head).square()
    assert unit == pytest.approx(float(d[torch.triu_indices(len(head), len(head), 1).unbind()].median()), rel=1e-6)
    assert unit > 0 and reference_attributes(data, seed=0, temperature=2.0)[1] == unit


def _shipped_terms(prepared_dataset):
    """g_retrieval of the shipped generator in its own units, with the shipped bank's real labels
    (validation notes of the default dataset) as conditioning and references."""
    from darkgan.data.magif import Normalizer

    G, cc = load_generator(None)
    cfg = apply_overrides(get_preset("tiny"), ["train.loss_weights.g_retrieval=1", "train.retrieval_negatives=63"])
    wt = WaveTerms(cfg.train, load_training_data(prepared_dataset), torch.device("cpu"))
    bank = load_bank(shipped_checkpoint("default"), list(cc.attributes))
    alpha = torch.from_numpy(bank.alpha(np.arange(len(bank)), cc.temperature))
    wt.normalizer, wt.classes = Normalizer.from_dict(cc.normalizer), torch.tensor(cc.class_indices)
    wt.references, wt.retrieval_unit = alpha[64:], 0.1 * float(torch.cdist(alpha[:256], alpha[:256]).square().median())
    return G, cc, wt, alpha[:4], torch.tensor([5, 9, 14, 20])


def test_retrieval_term_on_the_shipped_generator_is_what_it_claims_and_trains_the_latents(prepared_dataset):
    """Real weights, real teacher, real labels: the term equals the loss recomputed by hand from
    the same transforms and negatives, and 5 Adam steps on the latents (same draws each step)
    lower it by > 10 % while the generator's weights stay untouched."""
    G, cc, wt, alpha, p = _shipped_terms(prepared_dataset)
    G.requires_grad_(False)
    torch.manual_seed(0)
    z = torch.randn(4, G.cfg.latent_dim, requires_grad=True)
    before = {k: v.clone() for k, v in G.state_dict().items()}

    def term():
        return wt.for_batch(p, alpha, torch.Generator().manual_seed(3))(G(z, p, alpha))["g_retrieval"]

    first = term()
    gen = torch.Generator().manual_seed(3)
    from darkgan.data.magif import magif_to_note

    wave = magif_to_note(wt.normalizer.denormalize(G(z, p, alpha).detach()))
    heard = augment_for_teacher(wave, tuple(wt.tc.teacher_transforms), gen)
    pick = torch.randint(len(wt.references), (63,), generator=gen)
    logits = wt.teacher.logits(heard).index_select(1, wt.classes)
    by_hand = teacher_retrieval_loss(logits, alpha, wt.references[pick], cc.temperature, wt.retrieval_unit)
    first = first.detach()
    assert float(first) == pytest.approx(float(by_hand), rel=1e-4)
    assert 0 < float(first) < 2 * math.log(64)
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        term().backward()
        opt.step()
    print("g_retrieval", float(first), "->", float(term().detach()))
    assert float(term().detach()) < 0.9 * float(first)
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in before.items())


def test_retrieval_settings_are_validated():
    base = get_preset("tiny")
    for bad, key in [("train.loss_weights.g_retrieval=-1", "g_retrieval"),
                     ("train.retrieval_negatives=0", "retrieval_negatives"),
                     ("train.retrieval_scale=0", "retrieval_scale"),
                     ("train.retrieval_scale=nan", "retrieval_scale")]:
        with pytest.raises(DarkGANError, match=key):
            apply_overrides(base, [bad])
    assert all(PRESETS[name]().train.loss_weights["g_retrieval"] == 0 for name in PRESETS)


@pytest.mark.slow  # three short runs, the teacher loaded in each
def test_tiny_training_with_retrieval_resumes_exactly(resumes_exactly):
    """The term trains from the coarse scale, and a run stopped after one step and resumed ends
    bit for bit where an uninterrupted one does (the negatives are drawn from the step's generator)."""
    a, _ = resumes_exactly(apply_overrides(get_preset("tiny"), RUN))
    assert a.finished and 0 < a.last_metrics["g_retrieval"] < 2 * math.log(8)
