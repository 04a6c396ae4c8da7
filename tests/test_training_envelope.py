"""The onset burst (issue 15, ``train.loss_weights.g_envelope``): real rendered notes never drop
more than a few dB from their first STFT frame to the second, the shipped generator's notes do;
the hinge is 0 on real notes, positive on the generator's, its gradient reaches the generator and
one step lowers it; settings are validated; a tiny run with the term resumes exactly."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from darkgan.data.magif import N_FRAMES, Normalizer, frame_energy_db
from darkgan.errors import DarkGANError
from darkgan.generation.api import DarkGAN
from darkgan.models.checkpoint import load_generator
from darkgan.models.config import ENVELOPE_STEPS, PRESETS, apply_overrides, get_preset
from darkgan.training.data import load_training_data
from darkgan.training.losses import envelope_mean_loss, envelope_range_loss, envelope_steps_db
from darkgan.training.loop import extend_on_resume
from darkgan.training.terms import WaveTerms, envelope_bounds, envelope_energy_db, real_envelope_steps


def _real_logmag(data) -> torch.Tensor:
    return data.cache.load(np.asarray(data.train_rows), normalize=False)[:, 0].float()


def test_frame_energy_is_the_db_sum_of_squared_magnitudes():
    mag = torch.rand(2, 5, 3) + 0.1
    want = 10 * torch.log10((mag ** 2).sum(1))
    assert torch.allclose(frame_energy_db(torch.log(mag), min_hz=0), want, atol=1e-4)
    # by default the bins below 20 Hz (0, 7.8 and 15.6 Hz of the 1024) are not counted
    mag = torch.rand(2, 1024, 3) + 0.1
    want = 10 * torch.log10((mag[:, 3:] ** 2).sum(1))
    assert torch.allclose(frame_energy_db(torch.log(mag)), want, atol=1e-4)
    mag[:, :3] = 1e3  # an infrasonic swell
    assert torch.allclose(frame_energy_db(torch.log(mag)), want, atol=1e-4)


def test_envelope_loss_units_and_bounds():
    lo, hi = torch.tensor([-3.0, -3.0]), torch.tensor([10.0, 10.0])
    e = torch.tensor([[0.0, -2.0, 5.0], [0.0, -23.0, -3.0]])  # steps: [-2, 7] in range; [-23, 20]
    # (-3 - -23)^2 + (20 - 10)^2 = 400 + 100 over 4 steps, in units of (10 dB)^2
    assert float(envelope_range_loss(e, lo, hi)) == pytest.approx(500 / 4 / 100)
    assert float(envelope_range_loss(e[:1], lo, hi)) == 0.0
    with pytest.raises(ValueError, match="envelope bounds"):
        envelope_range_loss(e, lo[:1], hi)


def test_real_notes_have_no_onset_burst_and_are_in_range(prepared_dataset):
    data = load_training_data(prepared_dataset)
    lo, hi = envelope_bounds(data, seed=0, quantile=0.005)
    steps = envelope_steps_db(frame_energy_db(_real_logmag(data)))
    assert lo.shape == hi.shape == (31,) and bool((lo < hi).all())
    assert -8.0 < float(lo[0]) < 0.0  # rendered notes: frame 1 at most a few dB below frame 0
    assert float(torch.quantile(steps[:, 0], 0.5)) > -1.0
    assert float(envelope_range_loss(frame_energy_db(_real_logmag(data)), lo, hi)) < 1e-3
    again = envelope_bounds(data, seed=0, quantile=0.005)
    assert torch.equal(lo, again[0]) and torch.equal(hi, again[1])  # resume recomputes the same


def test_band_envelopes_see_the_bright_onset_click(prepared_dataset):
    """``train.envelope_bands_hz``: the bands add up to the audible energy, real notes stay in
    their per-band range, and a bright click at the onset leaves it above 4 kHz (frame 1 up a
    dozen dB, then down again; real notes move a few dB). The default until stop 53 made that
    click itself; the default since, trained with these bands, starts as real notes do."""
    data = load_training_data(prepared_dataset)
    real = _real_logmag(data)
    bands = envelope_energy_db(real, (1000.0, 4000.0))
    assert bands.shape == (len(real), 3, N_FRAMES) and torch.equal(envelope_energy_db(real), frame_energy_db(real))
    total = torch.logsumexp(bands * (math.log(10.0) / 10.0), dim=1) * (10.0 / math.log(10.0))
    assert torch.allclose(total, frame_energy_db(real), atol=1e-3)
    lo, hi = envelope_bounds(data, seed=0, quantile=0.005, bands_hz=(1000.0, 4000.0))
    assert lo.shape == hi.shape == (3, 31) and float(envelope_range_loss(bands, lo, hi)) < 1e-3
    model = DarkGAN.load("default")
    rows = np.asarray(data.train_rows)[:32]
    z = torch.randn(len(rows), model.latent_dim, generator=torch.Generator().manual_seed(0))
    bank = model.validation_attributes()  # the shipped bank's notes, a random draw
    alpha = bank[np.random.default_rng(0).choice(len(bank), len(rows), replace=False)]
    gen = model.generate_magif(z, data.cache.pitch[rows], alpha).float()[:, 0]
    high = envelope_steps_db(envelope_energy_db(gen, (4000.0,)))[:, 1, :2].median(0).values
    real_high = envelope_steps_db(envelope_energy_db(real, (4000.0,)))[:, 1, :2].median(0).values
    assert abs(float(high[0]) - float(real_high[0])) < 6 and abs(float(high[1]) - float(real_high[1])) < 6
    click = real.clone()
    click[:, real.shape[1] // 2:, 1] += 1.5  # natural-log magnitude: +13 dB above 4 kHz in frame 1
    click_high = envelope_steps_db(envelope_energy_db(click, (4000.0,)))[:, 1, :2].median(0).values
    assert float(click_high[0]) > float(real_high[0]) + 6 and float(click_high[1]) < float(real_high[1]) - 6
    assert float(envelope_range_loss(envelope_energy_db(click, (1000.0, 4000.0)), lo, hi)) > 0.005  # real: < 1e-3


def test_envelope_mean_loss_asks_the_batch_to_onset_as_the_data_does(prepared_dataset):
    """``train.envelope_match_steps``: real notes match their own mean; a burst every note makes
    (small enough to stay within the real notes' range, where the hinge is blind) is paid in
    units of (10 dB)^2."""
    e = torch.tensor([[0.0, 4.0, 1.0, 1.0], [0.0, 2.0, -1.0, -1.0]])  # steps [4, -3, 0], [2, -3, 0]
    mean = torch.tensor([0.0, 0.0, 0.0])
    assert float(envelope_mean_loss(e, mean, 2)) == pytest.approx((3.0 ** 2 + 3.0 ** 2) / 2 / 100)
    assert float(envelope_mean_loss(e, mean, 3)) == pytest.approx(18.0 / 3 / 100)
    for bad in (0, 4):
        with pytest.raises(ValueError, match="envelope mean"):
            envelope_mean_loss(e, mean, bad)
    data = load_training_data(prepared_dataset)
    steps = real_envelope_steps(data, seed=0, bands_hz=(4000.0,))
    real = envelope_energy_db(_real_logmag(data), (4000.0,))
    assert steps.shape == (len(data.train_rows), 2, 31) == envelope_steps_db(real).shape
    assert float(envelope_mean_loss(real, steps.mean(0), 3)) < 1e-6  # every training note drawn: its own mean
    burst = real.clone()
    burst[:, :, 1] += 3.0  # every note's frame 1 up 3 dB in both bands: steps 0, 1, 2 move by +3, -3, 0
    assert float(envelope_mean_loss(burst, steps.mean(0), 3)) == pytest.approx((9 + 9 + 0) / 3 / 100, rel=1e-3)


def test_envelope_tail_match_asks_the_batch_to_end_as_the_data_does(prepared_dataset):
    """``train.envelope_match_tail_steps`` (stop 58): real notes match their own release; a release
    every note begins a frame early (its last three frames 4 dB darker, as the stop-54 default's)
    is paid as a level in every later frame, not as one step; the onset match is blind to it."""
    data = load_training_data(prepared_dataset)
    mean = real_envelope_steps(data, seed=0, bands_hz=(4000.0,)).mean(0)
    real = envelope_energy_db(_real_logmag(data), (4000.0,))
    assert float(envelope_mean_loss(real, mean, 0, 15)) < 1e-6
    early = real.clone()
    early[:, :, -3:] -= 4.0  # levels of frames 29-31 relative to frame 16: -4 dB each
    assert float(envelope_mean_loss(early, mean, 0, 15)) == pytest.approx(3 * 16 / 15 / 100, rel=1e-3)
    assert float(envelope_mean_loss(early, mean, 3, 0)) < 1e-6
    assert float(envelope_mean_loss(early, mean, 3, 15)) == pytest.approx(3 * 16 / 18 / 100, rel=1e-3)
    with pytest.raises(ValueError, match="envelope mean"):
        envelope_mean_loss(early, mean, 0, 0)
    for bad in (-1, 32):
        with pytest.raises(DarkGANError, match="train.envelope_match_tail_steps must be in"):
            apply_overrides(get_preset("tiny"), [f"train.envelope_match_tail_steps={bad}"])


def test_drop_steps_free_the_decays_of_real_notes(prepared_dataset):
    """``train.envelope_drop_steps``: the lower bound stays on the onset's steps only, so real notes
    that decay faster than the 5 % quantile (the percussive ones) no longer pay for it."""
    data = load_training_data(prepared_dataset)
    lo, hi = envelope_bounds(data, seed=0, quantile=0.05)
    lo2, hi2 = envelope_bounds(data, seed=0, quantile=0.05, drop_steps=2)
    assert torch.equal(lo2[:2], lo[:2]) and torch.equal(hi2, hi) and bool(torch.isneginf(lo2[2:]).all())
    energy = frame_energy_db(_real_logmag(data))
    steps = envelope_steps_db(energy)
    per_note = [float(envelope_range_loss(energy[i:i + 1], lo, hi)) for i in range(len(energy))]
    per_note2 = [float(envelope_range_loss(energy[i:i + 1], lo2, hi2)) for i in range(len(energy))]
    fastest = int(steps[:, 2:].min(1).values.argmin())  # the steepest decay after the onset
    assert per_note[fastest] > 0 and per_note2[fastest] < per_note[fastest]
    assert all(b <= a + 1e-7 for a, b in zip(per_note, per_note2))
    by_hand = ((lo2[:2] - steps[:, :2]).clamp(min=0).square().sum() + (steps - hi).clamp(min=0).square().sum())
    assert float(envelope_range_loss(energy, lo2, hi2)) == pytest.approx(float(by_hand) / steps.numel() / 100, rel=1e-5)


def test_envelope_term_on_the_shipped_generator(prepared_dataset):
    """Real weights: the shipped baseline's notes (trained without the term) start with a burst the
    real notes never have; the term sees it, its gradient reaches the generator, and one optimiser
    step lowers it."""
    G, cc = load_generator("paper-small")
    G.requires_grad_(True)
    cfg = apply_overrides(get_preset("tiny"), ["train.loss_weights.g_envelope=1"])
    data = load_training_data(prepared_dataset)
    wt = WaveTerms(cfg.train, data, torch.device("cpu"))
    assert wt.envelope and wt.teacher is None and wt.active
    wt.normalizer = Normalizer.from_dict(cc.normalizer)  # the shipped generator's own units
    torch.manual_seed(0)
    z, p = torch.randn(16, G.cfg.latent_dim), torch.arange(16) + 4  # MIDI 48..63 of the shipped range
    alpha = torch.full((16, G.n_attributes), 0.05) if G.n_attributes else None
    terms = wt.for_batch(p, alpha, torch.Generator().manual_seed(0))
    out = G(z, p, alpha)
    onset = envelope_steps_db(frame_energy_db(wt.normalizer.denormalize(out.detach())[:, 0]))[:, 0]
    assert float(onset.median()) < float(wt.envelope_lo[0]) - 3.0  # the burst: far below any real note
    loss = terms(out)["g_envelope"]
    assert set(terms(out.detach())) == {"g_envelope"} and float(loss.detach()) > 0
    matched = WaveTerms(apply_overrides(cfg, ["train.envelope_match_steps=3"]).train, data, torch.device("cpu"))
    matched.normalizer = wt.normalizer  # + the batch-mean match of the onset's steps: the burst costs more
    assert matched.envelope_mean.shape == (31,) and wt.envelope_mean is None
    more = matched.for_batch(p, alpha, torch.Generator().manual_seed(0))(out.detach())["g_envelope"]
    assert float(more) > float(loss.detach()) + 1e-3
    # relative to the batch's own real notes (train.envelope_match_reference=batch): they match themselves
    by_batch = WaveTerms(apply_overrides(cfg, ["train.envelope_match_steps=3", "train.envelope_match_reference=batch"]).train,
                         data, torch.device("cpu"))
    by_batch.normalizer = wt.normalizer
    assert by_batch.needs_real and by_batch.envelope_mean is None and not wt.needs_real
    with pytest.raises(ValueError, match="real notes of the batch"):
        by_batch.for_batch(p, alpha, torch.Generator().manual_seed(0))
    real = data.cache.load(np.asarray(data.train_rows)[:16], normalize=False).float()
    terms_b = by_batch.for_batch(p, alpha, torch.Generator().manual_seed(0), real=real)
    own = envelope_range_loss(frame_energy_db(wt.normalizer.denormalize(wt.normalizer.normalize(real))[:, 0]),
                              by_batch.envelope_lo, by_batch.envelope_hi)
    assert float(terms_b(wt.normalizer.normalize(real))["g_envelope"]) == pytest.approx(float(own), abs=1e-5)
    assert float(terms_b(out.detach())["g_envelope"]) > float(loss.detach()) + 1e-3
    opt = torch.optim.Adam(G.parameters(), lr=1e-3)
    loss.backward()
    assert float(G.format.weight.grad.abs().max()) > 0
    opt.step()
    with torch.no_grad():
        assert float(terms(G(z, p, alpha))["g_envelope"]) < float(loss.detach())


def test_envelope_settings_are_validated():
    base = get_preset("tiny")
    for bad, key in [("train.loss_weights.g_envelope=-1", "g_envelope"),
                     ("train.envelope_quantile=0", "envelope_quantile"),
                     ("train.envelope_quantile=0.5", "envelope_quantile"),
                     ("train.envelope_quantile=nan", "envelope_quantile"),
                     ("train.envelope_drop_steps=-1", "envelope_drop_steps"),
                     ("train.envelope_drop_steps=32", "envelope_drop_steps"),
                     ("train.envelope_match_steps=-1", "envelope_match_steps"),
                     ("train.envelope_match_steps=32", "envelope_match_steps"),
                     ("train.envelope_match_reference=model", "envelope_match_reference"),
                     ("train.envelope_bands_hz=[4000,1000]", "envelope_bands_hz"),
                     ("train.envelope_bands_hz=[8000]", "envelope_bands_hz"),
                     ("train.envelope_bands_hz=[nan]", "envelope_bands_hz")]:
        with pytest.raises(DarkGANError, match=key):
            apply_overrides(base, [bad])
    assert all(PRESETS[name]().train.loss_weights["g_envelope"] == 0 for name in PRESETS)
    # a run may switch the term on or tighten its bounds when resumed (a fine-tune), like any weight
    new = extend_on_resume(base, ["train.loss_weights.g_envelope=20", "train.envelope_quantile=0.05",
                                  "train.envelope_drop_steps=2", "train.envelope_bands_hz=[4000]"], 0)
    assert new.train.loss_weights["g_envelope"] == 20 and new.train.envelope_quantile == 0.05
    assert new.train.envelope_drop_steps == 2 and base.train.envelope_drop_steps == ENVELOPE_STEPS == N_FRAMES - 1
    assert new.train.envelope_bands_hz == (4000.0,) and base.train.envelope_bands_hz == ()
    with pytest.raises(DarkGANError, match="envelope_quantile"):
        extend_on_resume(base, ["train.envelope_quantile=0.7"], 0)


@pytest.mark.slow  # two short runs
def test_tiny_training_with_envelope_resumes_exactly(resumes_exactly):
    run = ["train.iterations=[0,0,0,0,0,2]", "train.fade_in_jumps=0", "train.log_every=1",
           "train.loss_weights.g_envelope=1"]
    a, B = resumes_exactly(apply_overrides(get_preset("tiny"), run))
    assert a.finished and math.isfinite(a.last_metrics["g_envelope"]) and a.last_metrics["g_envelope"] >= 0
    assert B["config"].config.train.loss_weights["g_envelope"] == 1
