"""Losses of DarkGAN training and the EMA of the generator.

- Wasserstein critic/generator losses with gradient penalty (Gulrajani et al. 2017, Eq. 3,
  lambda = 10) and the PGGAN drift term ``eps * E[D(x_real)^2]`` (Karras et al. 2018, App. A.1,
  eps = 0.001). All terms are batch *means* (the reference sums the gradient penalty and drift
  over the batch; means make the weights independent of the batch size).
- Knowledge distillation (paper Sec. 3, Eq. 1-2): the student's probabilities at temperature T,
  ``q_i = sigmoid(z_i / T)``, are matched to targets ``p_i`` with the binary cross-entropy averaged
  over the K attributes (and the batch). Targets: the teacher's soft labels
  ``sigmoid(z_teacher_i / T)`` for real notes; the conditioning vector alpha for generated notes.
- Pitch: categorical cross-entropy (AC-GAN auxiliary classifier).
- teacher in the loop (ours, off in `paper`): the teacher labels the generated *waveform*
  (after random transforms) and its logits are matched to the conditioning
  (:func:`teacher_attribute_loss`); the critic's attribute head, trained on real notes only, is
  otherwise a weak and easily satisfied judge of timbre (issue 15).
- f0 (ours, off in every preset): a pitch loss on the generated *waveform*, the cross-entropy of
  its normalised autocorrelation at the periods of the asked pitch and of its neighbours
  (:func:`f0_autocorrelation_loss`). The critic's pitch head is trained on real notes only and the
  generator learns to satisfy it with notes a few semitones off; the autocorrelation cannot be
  satisfied that way.
- timbre consistency across pitch (ours, off in every preset): the same ``(z, alpha)`` generated
  at pitch p and at a neighbouring pitch p +- k should be the same instrument; the teacher's
  embeddings of the two notes are pulled together (:func:`timbre_consistency_loss`). A sample
  instrument plays one (z, alpha) on every key (issue 21), and the generators' timbre drifted
  with pitch at fixed (z, alpha).
- envelope range (ours, off in every preset): frame-to-frame energy changes of the generated
  notes are kept within the range of real notes' (:func:`envelope_range_loss`): the onset burst;
  and their batch mean at the onset matched to the real notes' (:func:`envelope_mean_loss`).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from darkgan.models.config import STEER_LOSSES
from darkgan.models.generator import attribute_logits


def critic_wasserstein_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """``E[D(fake)] - E[D(real)]`` (scalar). Shapes: ``[B]``, ``[B]``."""
    return fake_score.float().mean() - real_score.float().mean()


def generator_wasserstein_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """``-E[D(G(z))]`` (scalar)."""
    return -fake_score.float().mean()


def drift_loss(real_score: torch.Tensor, epsilon: float = 0.001) -> torch.Tensor:
    """``epsilon * E[D(real)^2]``: keeps the critic's output near 0 (PGGAN App. A.1)."""
    return epsilon * real_score.float().square().mean()


def interpolate(real: torch.Tensor, fake: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Random points on the lines between real and fake samples: ``u * real + (1 - u) * fake``,
    detached and requiring grad. Shapes: ``[B, ...]`` twice, ``u [B]`` in [0, 1]."""
    u = u.to(real.dtype).view(-1, *([1] * (real.dim() - 1)))
    return (u * real.detach() + (1 - u) * fake.detach()).requires_grad_(True)


def gradient_penalty(scores: torch.Tensor, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """WGAN-GP penalty ``E[(||grad_x D(x)||_2 - 1)^2]`` at the interpolates (unweighted).

    Args:
        scores: ``[B]`` critic scores computed from ``inputs`` (the graph must be kept).
        inputs: ``[B, ...]`` the interpolates (``requires_grad``).

    Returns:
        ``(penalty scalar, grad_norms [B])``; the penalty is differentiable (``create_graph``) so
        that it trains the critic.
    """
    (grad,) = torch.autograd.grad(scores.float().sum(), inputs, create_graph=True)
    norms = grad.float().flatten(1).norm(2, dim=1)
    return (norms - 1.0).square().mean(), norms.detach()


def teacher_soft_labels(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``sigmoid(z_teacher / T)`` (Eq. 1): the soft targets and conditioning values in [0, 1]."""
    return torch.sigmoid(teacher_logits.float() / temperature)


def distillation_loss(student_logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 2: mean binary cross-entropy between ``sigmoid(student_logits / T)`` and ``targets``.

    Shapes: ``[B, K]`` and ``[B, K]`` (targets in [0, 1]). Returns a scalar (0 when K = 0).
    Computed from logits (``binary_cross_entropy_with_logits``) for numerical stability.
    """
    if student_logits.shape[-1] == 0:
        return student_logits.float().sum() * 0.0
    return F.binary_cross_entropy_with_logits(student_logits.float() / temperature, targets.float().clamp(0, 1))


def pitch_loss(pitch_logits: torch.Tensor, pitch_index: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``pitch_logits [B, P]`` against ``pitch_index [B]`` (scalar)."""
    return F.cross_entropy(pitch_logits.float(), pitch_index.long())


#: Candidate pitches of :func:`f0_autocorrelation_loss`, in semitones from the asked one: the
#: half-octave on either side and the octave above (a note an octave below has the asked period
#: as its second peak, so it cannot be told apart by the autocorrelation and is left out).
F0_OFFSETS = tuple(range(-6, 7)) + (12,)


def f0_autocorrelation_loss(wave: torch.Tensor, midi: torch.Tensor, sample_rate: int = 16000,
                            offsets: tuple[int, ...] = F0_OFFSETS, temperature: float = 0.05,
                            reduction: str = "mean") -> torch.Tensor:
    """Pitch loss on waveforms: cross-entropy over candidate periods of the autocorrelation.

    For each note, the normalised autocorrelation ``r(tau) = R(tau) / R(0)`` (``R`` unbiased,
    mean removed, the whole note) is read at the periods ``tau_c = sample_rate / f(midi + o)`` of
    the candidates ``o`` in ``offsets`` (linear interpolation between integer lags); the logits
    ``r(tau_c) / temperature`` are scored with a cross-entropy whose target is the offset 0. This
    is the quantity YIN/pYIN (the pitch tracker of the evaluation) looks at, made differentiable;
    the paper has no such term (our addition, ``train.loss_weights.g_f0``, off by default).

    Args:
        wave: ``[B, N]`` waveform (any scale; a silent note scores uniformly, ``log(len(offsets))``).
        midi: ``[B]`` asked MIDI pitch (float or long).
        sample_rate: Hz. offsets: candidate offsets in semitones; 0 must be one of them.
        temperature: divides the autocorrelation values (in [-1, 1]) before the softmax.
        reduction: ``"mean"`` (the batch mean) or ``"none"`` (one value per note, ``[B]``).

    Returns:
        scalar, the batch mean (``log(len(offsets))`` for an uninformative note, 0 at best), or
        ``[B]`` with ``reduction="none"``.

    Raises:
        ValueError: bad shapes, no offset 0, a candidate period longer than the note, or an
            unknown ``reduction``.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if wave.dim() != 2 or midi.shape != wave.shape[:1]:
        raise ValueError(f"expected wave [B, N] and midi [B], got {list(wave.shape)} and {list(midi.shape)}")
    if 0 not in offsets:
        raise ValueError(f"offsets {offsets} must contain 0 (the asked pitch)")
    x = wave.float() - wave.float().mean(-1, keepdim=True)
    n = x.shape[-1]
    spec = torch.fft.rfft(x, n=2 * n)
    acf = torch.fft.irfft(spec.real.square() + spec.imag.square(), n=2 * n)[:, :n]
    lags = torch.arange(n, device=x.device, dtype=x.dtype)
    acf = acf * (n / (n - lags))  # unbiased: every lag averages over its own overlap
    r = acf / (acf[:, :1] + 1e-8 * n)
    cand = midi.float().view(-1, 1) + torch.tensor(offsets, device=x.device, dtype=torch.float32)
    tau = sample_rate / (440.0 * torch.pow(2.0, (cand - 69.0) / 12.0))  # [B, C] samples
    if float(tau.max()) >= n - 1:
        raise ValueError(f"a candidate period of {float(tau.max()):.0f} samples does not fit {n}-sample notes")
    i0 = tau.floor().long()
    frac = (tau - i0).to(r.dtype)
    score = torch.gather(r, 1, i0) * (1 - frac) + torch.gather(r, 1, i0 + 1) * frac
    target = torch.full((wave.shape[0],), offsets.index(0), device=x.device, dtype=torch.long)
    return F.cross_entropy(score / temperature, target, reduction=reduction)


def f0_relative_loss(wave: torch.Tensor, reference: torch.Tensor, midi: torch.Tensor,
                     sample_rate: int = 16000) -> torch.Tensor:
    """The waveform pitch loss relative to real notes: no note need be more periodic than its real one.

    ``mean_i max(0, L_f0(wave_i) - L_f0(reference_i))`` with ``L_f0`` the per-note
    :func:`f0_autocorrelation_loss`: each generated note is asked with the labels and pitch of a
    real note (``reference_i``, the training batch's), and pays only for the part of its pitch
    loss that the real note does not pay. Why: real percussive, bell-like and pure-tone notes have
    a weak or ambiguous autocorrelation at their period (on 4,096 training notes the mean loss is
    0.25; the top 5 % by the teacher's "Percussion" label pay 1.24, "Chime" 1.05, "Tuning fork"
    0.82), so the absolute term teaches the generator that no note may sound like them (the shipped
    default's notes asked with the top-5 % Percussion labels pay 0.27). Ours (issue 15).

    Args:
        wave: ``[B, N]`` generated waveforms (differentiable).
        reference: ``[B, N]`` the real notes (no gradient is taken through them).
        midi: ``[B]`` the asked (= the real notes') MIDI pitch.
        sample_rate: Hz.

    Returns:
        scalar >= 0 (0 when every generated note is at least as periodic as its real note).

    Raises:
        ValueError: as :func:`f0_autocorrelation_loss`, or ``reference`` not shaped as ``wave``.
    """
    if reference.shape != wave.shape:
        raise ValueError(f"reference {list(reference.shape)} must be shaped as wave {list(wave.shape)}")
    with torch.no_grad():
        floor = f0_autocorrelation_loss(reference, midi, sample_rate, reduction="none")
    return (f0_autocorrelation_loss(wave, midi, sample_rate, reduction="none") - floor).clamp(min=0).mean()


def augment_for_teacher(wave: torch.Tensor, transforms: tuple[str, ...], gen: torch.Generator | None = None,
                        sample_rate: int = 16000) -> torch.Tensor:
    """Random, differentiable transforms of generated notes before the teacher labels them.

    The teacher is a fixed network: a generator trained against it could satisfy it with
    patterns no listener hears (an adversarial example). Each transform changes the waveform in a
    way that leaves its timbre as people hear it intact, so only what survives them is rewarded:

    - ``"shift"``: delay by 0-50 ms (zeros in front, the end cut), a different STFT frame grid;
    - ``"noise"``: white noise at a random 25-45 dB below the note's RMS;
    - ``"tilt"``: a spectral tilt of -1.5..+1.5 dB per octave around 1 kHz (a gentle EQ).

    (Gain is not needed: the teacher peak-normalises its input.)

    Args:
        wave: ``[B, N]`` float waveforms at ``sample_rate`` Hz.
        transforms: names from :data:`darkgan.models.config.TEACHER_TRANSFORMS` (empty: identity).
        gen: CPU random generator (reproducible training), default the global one.

    Returns:
        ``[B, N]`` transformed waveforms (differentiable w.r.t. ``wave``).
    """
    b, n = wave.shape
    dev = wave.device

    def rand(*shape):
        return torch.rand(*shape, generator=gen).to(dev)

    x = wave.float()
    if "shift" in transforms:
        d = (rand(b) * 0.05 * sample_rate).long()
        idx = torch.arange(n, device=dev)[None, :] - d[:, None]
        x = torch.where(idx >= 0, torch.gather(x, 1, idx.clamp(min=0)), torch.zeros_like(x))
    if "tilt" in transforms:
        spec = torch.fft.rfft(x, dim=-1)
        f = torch.fft.rfftfreq(n, 1.0 / sample_rate).to(dev).clamp(min=20.0)
        db = (rand(b, 1) * 3.0 - 1.5) * torch.log2(f / 1000.0)[None, :]
        x = torch.fft.irfft(spec * torch.pow(10.0, db / 20.0), n=n, dim=-1)
    if "noise" in transforms:
        rms = x.detach().square().mean(-1, keepdim=True).sqrt()
        snr_db = 25.0 + 20.0 * rand(b, 1)
        x = x + torch.randn(b, n, generator=gen).to(dev) * rms * torch.pow(10.0, -snr_db / 20.0)
    return x


def batch_correlation(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Pearson correlation of each column of ``x`` and ``y`` over the rows (the batch).

    Shapes: ``[B, K]``, ``[B, K]`` -> ``[K]`` in [-1, 1]; a column constant over the batch gives 0
    (its norm is clamped at ``eps``) and no gradient. The rho_i of DarkGAN Sec. 4.4.2 over one
    batch (``train.teacher_loss="corr"``); it raises nothing (shapes must broadcast).
    """
    xc, yc = x - x.mean(0), y - y.mean(0)
    return (xc * yc).sum(0) / (xc.norm(dim=0) * yc.norm(dim=0)).clamp_min(eps)


def teacher_attribute_loss(teacher_logits: torch.Tensor, conditioning: torch.Tensor, temperature: float,
                           attr_std: torch.Tensor | None = None, kind: str = "std_mse",
                           weights: torch.Tensor | None = None, white: torch.Tensor | None = None) -> torch.Tensor:
    """The teacher-in-the-loop term: how far the teacher's labels of generated notes are from
    the attributes they were generated with.

    Args:
        teacher_logits: ``[B, K]`` the teacher's logits z (vocabulary columns) of the generated notes.
        conditioning: ``[B, K]`` the conditioning alpha in (0, 1) (``sigmoid(z_target / T)``).
        temperature: T of Eq. 1.
        attr_std: ``[K]`` training std of ``z / T`` per attribute (``"std_mse"`` only).
        kind: ``"corr"`` (ours, stop 52): ``mean_k (1 - r_k)`` with ``r_k`` the Pearson correlation
            over the batch of ``z_k / T`` and ``logit(alpha_k)`` (:func:`batch_correlation`), the
            attribute correlation rho_i of paper Sec. 4.4.2 as a loss: scale- and offset-free, so a
            prediction that correlates weakly cannot lower it by shrinking toward the mean note, as
            it lowers a squared error (``E(p - t)^2 = var p + var t - 2 cov + bias^2``);
            ``"std_mse"`` (ours): ``mean(((z / T - logit(alpha)) / attr_std)^2)``, the squared
            error in standardised logit units, so every attribute weighs the same and gradients
            do not vanish at alpha ~ 0.03; ``"bce"``: paper Eq. 2,
            ``BCE(sigmoid(z / T), alpha)`` averaged over attributes; ``"white_mse"`` (ours): the
            standardised error times ``white``, squared: errors along the soft labels' minor
            directions count as much as along the major ones.
        white: ``[K, K]`` the shrinkage whitening (``"white_mse"`` only;
            :func:`darkgan.training.terms.attribute_whitening`).
        weights: ``[K]`` per-attribute weights >= 0 with a positive mean
            (``train.teacher_attribute_weights``), divided by their mean; None: all 1. Under
            ``"white_mse"`` weight i scales column i of the whitened error, which the symmetric
            whitening keeps tied to attribute i (mixed with its correlated neighbours).

    Returns:
        scalar (0 when K = 0).

    Raises:
        ValueError: unknown ``kind``, ``"std_mse"`` without ``attr_std`` (``"white_mse"``: or
            ``white``), ``"corr"`` on fewer than 2 notes, or ``weights`` of
            another length, negative, or with mean 0.
    """
    if teacher_logits.shape[-1] == 0:
        return teacher_logits.float().sum() * 0.0
    if kind == "bce":
        if weights is None:
            return distillation_loss(teacher_logits, conditioning, temperature)
        err = F.binary_cross_entropy_with_logits(teacher_logits.float() / temperature,
                                                 conditioning.float().clamp(0, 1), reduction="none")
    elif kind == "corr":
        if teacher_logits.shape[0] < 2:
            raise ValueError("teacher_attribute_loss: kind 'corr' correlates over the batch and needs >= 2 notes")
        err = 1.0 - batch_correlation(teacher_logits.float() / temperature, attribute_logits(conditioning))
    elif kind in ("std_mse", "white_mse") and attr_std is not None and (kind == "std_mse" or white is not None):
        target = attribute_logits(conditioning)
        err = (teacher_logits.float() / temperature - target) / attr_std.float()
        err = (err @ white.float().to(err.device) if kind == "white_mse" else err).square()
    else:
        raise ValueError(f"teacher_attribute_loss: kind {kind!r} (std_mse needs attr_std; white_mse also white)")
    if weights is None:
        return err.mean()
    w = weights.float().to(err.device)
    # value checks on CPU tensors only: on a GPU they would synchronise every step
    if w.shape != err.shape[-1:] or (w.device.type == "cpu" and (bool((w < 0).any()) or float(w.mean()) <= 0)):
        raise ValueError(f"teacher_attribute_loss: weights must be [{err.shape[-1]}], >= 0, with a positive mean")
    return (err * (w / w.mean())).mean()


def neighbour_pitches(pitch_index: torch.Tensor, n_pitches: int, max_offset: int, u: torch.Tensor) -> torch.Tensor:
    """A neighbouring pitch ``p +- k`` for each ``pitch_index [m]`` (long, ``0..n_pitches - 1``).

    ``u [m]`` uniform in [0, 1) picks one of the ``2 * max_offset`` offsets
    ``+1, -1, +2, -2, ..., +max_offset, -max_offset`` semitones; an offset that leaves the range
    is flipped (``p - k`` instead of ``p + k``), so every result is in range when
    ``n_pitches >= 2 * max_offset``. Returns ``[m]`` long, never equal to ``pitch_index``.

    Raises:
        ValueError: ``max_offset < 1`` or ``n_pitches < 2 * max_offset``.
    """
    if max_offset < 1 or n_pitches < 2 * max_offset:
        raise ValueError(f"neighbour_pitches: {n_pitches} pitches cannot hold offsets up to +-{max_offset}")
    j = (u.to(pitch_index.device) * 2 * max_offset).long().clamp(0, 2 * max_offset - 1)
    k = j // 2 + 1
    up = pitch_index + k
    down = pitch_index - k
    plus = (j % 2 == 0)
    q = torch.where(plus, up, down)
    return torch.where((q < 0) | (q >= n_pitches), torch.where(plus, down, up), q)


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(a, b)`` row by row, computed as ``||a/|a| - b/|b| ||^2 / 2`` (the same value,
    exactly 0 for equal rows, a smooth gradient everywhere but the origin).

    Shapes: ``[B, D]``, ``[B, D]`` -> ``[B]`` in [0, 2].
    """
    a = a.float() / a.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b = b.float() / b.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return 0.5 * (a - b).square().sum(-1)


def mean_pairwise_cosine_distance(emb: torch.Tensor) -> float:
    """Mean :func:`cosine_distance` over every pair of rows of ``emb [n, D]`` (n >= 2): how far
    apart unrelated notes are, the unit of :func:`timbre_consistency_loss`."""
    i, j = torch.triu_indices(len(emb), len(emb), offset=1)
    return float(cosine_distance(emb[i], emb[j]).mean())


def timbre_consistency_loss(emb: torch.Tensor, emb_neighbour: torch.Tensor, unrelated: float) -> torch.Tensor:
    """Timbre consistency across pitch: the teacher-embedding distance of the same ``(z, alpha)``
    generated at two neighbouring pitches, in units of unrelated real notes.

    ``2 * mean(1 - cos(e_p, e_q)) / unrelated``: 0 when the two notes sound the same to the
    teacher, 2 when they are as far apart as two unrelated real training notes (``unrelated`` is
    their mean cosine distance, :func:`darkgan.training.terms.unrelated_distance`). The 2 makes a
    weight of 1 comparable to ``g_teacher``'s ``std_mse``, which scores a note against an
    unrelated note's labels ``E[(x - y)^2] / sigma^2 = 2``. The measure is the one of the
    instrument benchmark (issue 21: neighbouring keys' cosine distance, EfficientAT embedding).
    The idea of pitch-invariant timbre: GANstrument (Narita et al., ICASSP 2023, pitch-invariant
    instance conditioning); a fixed network's features as the distance: the perceptual loss of
    Johnson et al. (ECCV 2016). Ours: a direct penalty on pairs at fixed ``(z, alpha)``.

    Args:
        emb, emb_neighbour: ``[m, D]`` teacher embeddings of the pairs (``m`` may be 0: returns 0).
        unrelated: > 0, the reference distance.

    Returns:
        scalar, differentiable w.r.t. both embeddings.
    """
    if emb.shape[0] == 0:
        return emb.float().sum() * 0.0
    return 2.0 * cosine_distance(emb, emb_neighbour).mean() / float(unrelated)


def raise_attribute(conditioning: torch.Tensor, attr_index: torch.Tensor, delta: float,
                    attr_std: torch.Tensor) -> torch.Tensor:
    """The conditioning with one attribute per note raised by ``delta`` standard deviations.

    In logit units ``u = logit(alpha) = z / T``: ``u_i += delta * attr_std_i`` for ``i =
    attr_index[n]`` of each note ``n``, every other attribute unchanged; returned as alpha again.

    Args:
        conditioning: ``[m, K]`` alpha in (0, 1); attr_index: ``[m]`` long in ``0..K-1``;
        delta: the rise in standard deviations; attr_std: ``[K]`` training std of ``z / T``.

    Returns:
        ``[m, K]`` alpha in (0, 1), no gradient needed (an input of the generator).

    Source: ours (issue 15), the partner of :func:`attribute_increment_loss`.
    """
    u = attribute_logits(conditioning)
    rows = torch.arange(u.shape[0], device=u.device)
    i = attr_index.to(u.device)
    u[rows, i] = u[rows, i] + float(delta) * attr_std.to(u.device)[i]
    return torch.sigmoid(u).to(conditioning.dtype)


def attribute_increment_loss(base_logits: torch.Tensor, raised_logits: torch.Tensor, attr_index: torch.Tensor,
                             delta: float, temperature: float, attr_std: torch.Tensor) -> torch.Tensor:
    """Single-attribute control: the teacher must hear the rise it was asked for.

    A note and its partner share ``z`` and pitch; the partner's attribute ``i`` was raised by
    ``delta`` standard deviations (:func:`raise_attribute`). With ``d = (z'_i - z_i) / T /
    sigma_i`` the rise of the teacher's logit of attribute ``i`` in the same units, the loss is
    ``mean((d - delta)^2) / delta^2``: 0 when every rise is heard exactly, 1 when none is heard
    (the generator ignores a single attribute, as models conditioned on correlated soft labels
    learn to: the attribute-increment measures of paper Sec. 4.4.2 and the 5th -> 99th percentile
    rise test of ``benchmarks/control.py`` ask for exactly this). Ours (issue 15), a
    paired, differential form of the teacher-in-the-loop term: what the two notes share (the
    note's other attributes, the teacher's bias on this z) cancels.

    Args:
        base_logits, raised_logits: ``[m, K]`` the teacher's logits z (vocabulary columns) of the
            notes and of their partners (heard through identical transforms).
        attr_index: ``[m]`` long, the raised attribute of each pair.
        delta: > 0, the asked rise in standard deviations; temperature: T of Eq. 1;
        attr_std: ``[K]`` training std of ``z / T``.

    Returns:
        scalar (0 when ``m`` = 0), differentiable w.r.t. both logits.
    """
    if base_logits.shape[0] == 0:
        return base_logits.float().sum() * 0.0
    rows = torch.arange(base_logits.shape[0], device=base_logits.device)
    i = attr_index.to(base_logits.device)
    d = (raised_logits.float()[rows, i] - base_logits.float()[rows, i]) / temperature / attr_std.float()[i]
    return ((d - delta) / delta).square().mean()


def single_and_steered(conditioning: torch.Tensor, attr_index: torch.Tensor, target: torch.Tensor,
                       coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A single-attribute edit of each note and the same edit steered as in the data.

    In logit units ``u = logit(alpha) = z / T``: the edit sets ``u_i = t`` for ``i =
    attr_index[n]``, every other attribute unchanged; the steered edit moves every logit by its
    regression on ``u_i``, ``u + (t - u_i) C[i]``, and then sets ``u_i = t`` too
    (:meth:`darkgan.teacher.prior.AttributePrior.steer` with one asked attribute).

    Args:
        conditioning: ``[m, K]`` alpha in (0, 1); attr_index: ``[m]`` long; target: ``[m]`` the
            asked logits t; coefficients: ``[K, K]`` rows C[i]
            (:meth:`~darkgan.teacher.prior.AttributePrior.single_coefficients`).

    Returns:
        ``(single, steered)``, both ``[m, K]`` alpha in (0, 1), inputs of the generator.

    Source: ours (issue 15), the partners of :func:`steer_distillation_loss`.
    """
    single, step = single_edit(conditioning, attr_index, target)
    u = attribute_logits(conditioning).float()
    rows = torch.arange(u.shape[0], device=u.device)
    i = attr_index.to(u.device)
    steered = u + step[:, None] * coefficients.to(u)[i]
    steered[rows, i] = target.to(u).float()
    return single, torch.sigmoid(steered).to(conditioning.dtype)


def steer_distillation_loss(single: torch.Tensor, steered: torch.Tensor, base: torch.Tensor,
                            form: str = "match") -> torch.Tensor:
    """Single-attribute control learnt from the generator's own steered response.

    A note ``G(z, p, a)`` (``base``), the same ``z`` and pitch with one attribute set alone
    (``single``) and with that attribute set and the others steered as in the data (``steered``;
    :func:`single_and_steered`). The generator answers steered edits (the teacher hears 123 of 128
    attributes rise, YAMNet 38) but hardly single ones (9 and 2): soft labels are correlated, and a
    single edit asks for a vector no training note has. With ``d = single - sg(base)`` the single
    edit's change and ``t = sg(steered - base)`` the steered one (sg: no gradient), over the
    batch, in normalised MAG-IF units:

    - ``"match"``: ``L = sum ||d - t||^2 / sum ||t||^2``, the whole change must be the steered one.
      It cannot reach 0 unless the generator ignores its attributes: for its Jacobian J this asks
      ``J e_i = J c_i`` for every attribute, ``J = J R`` with R the attributes' correlation
      matrix (docs/training.md, "Losses");
    - ``"projection"``: ``L = sum_n ||t_n||^2 (1 - <d_n, t_n> / ||t_n||^2)^2 / sum_n ||t_n||^2``,
      only the change's component along the steered change must be the steered change; the rest
      is free. One scalar condition per attribute on J, which a generator can meet.

    Both are 1 when a single edit changes nothing and 0 when it sounds like the steered one. A
    distillation from the generator to itself; no teacher pass, so it costs two generator rows per
    pair and applies at every scale.

    Args:
        single: ``[m, 2, H, W]`` with gradient; steered, base: ``[m, 2, H, W]`` (detached here);
        form: one of :data:`darkgan.models.config.STEER_LOSSES`.

    Returns:
        scalar (0 when ``m`` = 0).

    Raises:
        ValueError: an unknown ``form``.

    Source: ours (issue 15).
    """
    base = base.detach().float()
    return edit_matching_loss(single.float() - base, steered.detach().float() - base, form)


def edit_matching_loss(change: torch.Tensor, target: torch.Tensor, form: str = "match") -> torch.Tensor:
    """How far the generator's change under an edit is from a target change (``g_steer``, ``g_partial``).

    With ``d_n`` the change of note n (flattened) and ``t_n`` its target (no gradient), over the batch:

    - ``"match"``: ``L = sum_n ||d_n - t_n||^2 / sum_n ||t_n||^2``, the whole change must be the target;
    - ``"projection"``: ``L = sum_n ||t_n||^2 (1 - <d_n, t_n> / ||t_n||^2)^2 / sum_n ||t_n||^2``, only
      the change's component along the target must be the target; the rest is free.

    Both are 1 when the edit changes nothing and 0 when its change is the target.

    Args:
        change: ``[m, ...]`` with gradient; target: ``[m, ...]`` (detached here);
        form: one of :data:`darkgan.models.config.STEER_LOSSES`.

    Returns:
        scalar float32 (0 when ``m`` = 0).

    Raises:
        ValueError: an unknown ``form``, or shapes that differ.

    Source: ours (issue 15).
    """
    if form not in STEER_LOSSES:
        raise ValueError(f"edit loss form must be one of {', '.join(STEER_LOSSES)}, got {form!r}")
    if change.shape != target.shape:
        raise ValueError(f"edit loss: change {tuple(change.shape)} vs target {tuple(target.shape)}")
    if change.shape[0] == 0:
        return change.float().sum() * 0.0
    d, t = change.float().flatten(1), target.detach().float().flatten(1)
    tt = t.square().sum(1)
    if form == "match":
        return (d - t).square().sum() / tt.sum().clamp_min(1e-8)
    a = (d * t).sum(1) / tt.clamp_min(1e-8)
    return (tt * (1.0 - a).square()).sum() / tt.sum().clamp_min(1e-8)


def single_edit(conditioning: torch.Tensor, attr_index: torch.Tensor, target: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each note's conditioning with one attribute's logit set, every other attribute unchanged.

    Args:
        conditioning: ``[m, K]`` alpha in (0, 1); attr_index: ``[m]`` long; target: ``[m]`` the asked
            logits ``t`` (``u = logit(alpha) = z / T``, paper Eq. 1).

    Returns:
        ``(single [m, K] alpha, step [m])``: the edited conditioning and how far each asked logit
        moved, ``t - u_i``.

    Source: ours (issue 15), the partners of ``g_partial``.
    """
    u = attribute_logits(conditioning).float()
    rows = torch.arange(u.shape[0], device=u.device)
    i, t = attr_index.to(u.device), target.to(u).float()
    step = t - u[rows, i]
    single = u.clone()
    single[rows, i] = t
    return torch.sigmoid(single).to(conditioning.dtype), step


def teacher_retrieval_loss(teacher_logits: torch.Tensor, conditioning: torch.Tensor, references: torch.Tensor,
                           temperature: float, scale: float) -> torch.Tensor:
    """Timbre transfer as a ranking: each generated note's teacher labels must lie nearer its own
    conditioning than any other note's attributes.

    With ``p_b = sigmoid(z_b / T)`` (Eq. 1) the teacher's soft labels of generated note ``b`` and
    ``d_bj = ||p_b - r_j||^2`` its squared Euclidean distance to candidate ``j`` (candidate 0 its
    own conditioning ``alpha_b``, then the ``N`` references), the loss is the cross-entropy of
    ``softmax_j(-d_bj / scale)`` against candidate 0 (InfoNCE, van den Oord et al. 2018). It is
    the retrieval test of ``benchmarks/control.py`` (:func:`darkgan.evaluation.metrics.control.retrieval`:
    the same distance, the note's own attributes ranked among others') made differentiable. Unlike
    ``g_teacher``'s ``std_mse``, which weighs the 128 attributes alike, the distance in
    probabilities is dominated by the attributes that vary most between notes (the guitar family,
    synthesizer, electronic tuner, brass: 10 attributes hold 45 % of the variance on the default
    dataset), so the term asks for what tells one note's timbre from another's. Ours (issue 15).

    Args:
        teacher_logits: ``[B, K]`` the teacher's logits of the generated notes (vocabulary columns).
        conditioning: ``[B, K]`` their conditioning alpha in (0, 1).
        references: ``[N, K]`` other notes' attributes alpha (N >= 1), e.g. random training notes'.
        temperature: T of Eq. 1; scale: > 0, the distance unit (e.g. a fraction of the median
            squared distance between unrelated notes' attributes).

    Returns:
        scalar (0 when B = 0), differentiable w.r.t. ``teacher_logits``; ``log(N + 1)`` when the
        labels are equally far from every candidate.

    Raises:
        ValueError: K differs between the inputs, no references, or ``scale <= 0``.
    """
    if not (teacher_logits.shape[-1] == conditioning.shape[-1] == references.shape[-1]) or references.shape[0] < 1:
        raise ValueError(f"teacher_retrieval_loss: logits {tuple(teacher_logits.shape)}, conditioning "
                         f"{tuple(conditioning.shape)}, references {tuple(references.shape)}")
    if not scale > 0:
        raise ValueError(f"teacher_retrieval_loss: scale must be > 0, got {scale}")
    if teacher_logits.shape[0] == 0:
        return teacher_logits.float().sum() * 0.0
    p = torch.sigmoid(teacher_logits.float() / temperature)  # [B, K]
    own = (p - conditioning.float()).square().sum(-1, keepdim=True)  # [B, 1]
    other = torch.cdist(p, references.float().to(p.device)).square()  # [B, N]
    logits = -torch.cat([own, other], dim=1) / float(scale)
    return F.cross_entropy(logits, torch.zeros(p.shape[0], dtype=torch.long, device=p.device))


def envelope_steps_db(energy_db: torch.Tensor) -> torch.Tensor:
    """Frame-to-frame changes of an energy envelope: ``[B, ..., W]`` dB -> ``[B, ..., W - 1]`` dB
    (``E[f + 1] - E[f]``; :func:`darkgan.data.magif.frame_energy_db`)."""
    return energy_db[..., 1:] - energy_db[..., :-1]


def envelope_profile_loss(profile_db: torch.Tensor, target_db: torch.Tensor, band_db: torch.Tensor) -> torch.Tensor:
    """Temporal envelopes outside the band real notes with the same labels and pitch keep to.

    ``mean_{b,f} relu(|p_bf - t_bf| - w_f)^2 / w_f^2`` with ``p`` a generated note's envelope in dB
    below its loudest frame, ``t`` the envelope expected of a real note with its labels and pitch
    and ``w`` the real notes' spread around that expectation (their residual standard deviation,
    times ``train.profile_band``): an envelope anywhere within the band is free, so the
    generator keeps the real notes' variety; one that the labels rule out (a struck note that
    rings on, a sustained one that sags) pays quadratically, in units of the band. Ours (issue 15,
    stop 48); the model of ``t`` and ``w``: :func:`darkgan.training.terms.envelope_profile_model`.

    Args:
        profile_db: ``[B, W]`` generated envelopes (:func:`darkgan.training.terms.envelope_profile`).
        target_db: ``[B, W]`` the expected envelopes; band_db: ``[W]`` > 0.

    Returns:
        scalar >= 0 (0 when every frame is within its band), differentiable w.r.t. ``profile_db``.

    Raises:
        ValueError: shapes differ, or a band is not > 0.
    """
    if profile_db.shape != target_db.shape or band_db.shape != profile_db.shape[-1:]:
        raise ValueError(f"expected profile and target [B, W] and band [W], got {list(profile_db.shape)}, "
                         f"{list(target_db.shape)} and {list(band_db.shape)}")
    if not bool((band_db > 0).all()):
        raise ValueError("the envelope band must be > 0 dB in every frame")
    band = band_db.to(profile_db)
    return ((profile_db - target_db.to(profile_db)).abs() - band).clamp(min=0).div(band).square().mean()


def envelope_range_loss(energy_db: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Onset and offset bursts: frame-to-frame energy changes outside what real notes ever do.

    Generated notes began with a burst: the first STFT frame 14-20 dB louder than the second
    (median of 256 notes of the shipped default / control), against at most 3 dB in 512 real
    crops (0.1 % quantile), heard as a thump and the main cause of their inception KID (frames
    0-2 limited: KID 7,631 -> 3,483 and 60,154 -> 9,185 x1e-4 on 500 notes). At this training
    budget the critic does not penalise it and the waveform terms reward it (the teacher hears
    attacks). This hinge leaves every change inside the real notes' range ``[lo, hi]`` free
    and penalises the excess quadratically, in units of 10 dB:
    ``mean_{b,f} (relu(lo_f - s_bf)^2 + relu(s_bf - hi_f)^2) / 100`` with ``s`` the steps of
    :func:`envelope_steps_db`. Ours (issue 15).

    Args:
        energy_db: ``[B, W]`` frame energies of the generated notes (dB), or ``[B, n, W]`` those of
            ``n`` frequency bands (:func:`darkgan.training.terms.envelope_energy_db`).
        lo, hi: ``[W - 1]`` (``[n, W - 1]``) per-step bounds (dB), e.g. the 0.5 % and 99.5 %
            quantiles of real notes (:func:`darkgan.training.terms.envelope_bounds`).

    Returns:
        scalar >= 0 (0 when every step is in range), differentiable w.r.t. ``energy_db``.

    Raises:
        ValueError: the bounds do not have ``W - 1`` entries.
    """
    s = envelope_steps_db(energy_db.float())
    if lo.shape != s.shape[1:] or hi.shape != s.shape[1:]:
        raise ValueError(f"envelope bounds must be {list(s.shape[1:])}, got {list(lo.shape)} and {list(hi.shape)}")
    lo, hi = lo.to(s), hi.to(s)
    return ((lo - s).clamp(min=0).square() + (s - hi).clamp(min=0).square()).mean() / 100.0


def envelope_mean_loss(energy_db: torch.Tensor, mean_db: torch.Tensor, n_steps: int, n_tail: int = 0) -> torch.Tensor:
    """An onset (and a release) every generated note shares: the batch mean of the first ``n_steps``
    frame-to-frame energy changes (and of the last ``n_tail`` frames' levels) against the real notes'.

    :func:`envelope_range_loss` bounds each note, so a burst that every note makes at the edge of
    the real notes' range costs nothing (stop 50: frame 1 of the fine-tunes' notes 3-6 dB above
    frame 2 in each band, real notes' median 0.1 dB; the 5 % of real notes that do so set the
    bound). Matching the batch's first moment asks the batch to onset as the data does:
    ``mean_{(n,) f < n_steps} (mean_b s_bnf - m_nf)^2 / 100`` (units of 10 dB), ``s`` the steps of
    :func:`envelope_steps_db`. The batch is asked with real notes' labels and pitches, so its mean
    has the data's as target. Ours (issue 15, ``train.envelope_match_steps``).

    The release is matched as a level, not as steps (``train.envelope_match_tail_steps``, stop 58):
    the last ``n_tail`` frames' energies relative to the frame before them (the cumulative sums of
    the last ``n_tail`` steps), ``mean_{(n,) k} (mean_b c_bnk - r_nk)^2 / 100``. The stop-54
    default's last three frames were 4-5 dB darker than real crops' relative to 0.5-0.9 s (issue
    15 item 7), a drift of a fraction of a dB per step that a match of single steps barely pays
    for; a level pays for all of it. The onset's and the release's terms are averaged together.

    Args:
        energy_db: ``[B, W]`` or ``[B, n, W]`` frame energies (dB) of the generated notes.
        mean_db: ``[W - 1]`` (``[n, W - 1]``) the real notes' mean steps
            (:func:`darkgan.training.terms.real_envelope_steps`).
        n_steps: leading steps matched, in [0, W - 1]; n_tail: trailing steps matched, in
            [0, W - 1]; at least one of them >= 1.

    Returns:
        scalar >= 0, differentiable w.r.t. ``energy_db``.

    Raises:
        ValueError: ``mean_db`` does not fit the steps, or ``n_steps`` / ``n_tail`` out of range.
    """
    s = envelope_steps_db(energy_db.float())
    w = s.shape[-1]
    if mean_db.shape != s.shape[1:] or not (0 <= n_steps <= w and 0 <= n_tail <= w and n_steps + n_tail >= 1):
        raise ValueError(f"envelope mean must be {list(s.shape[1:])} with 0 <= n_steps, n_tail <= {w} and one >= 1, "
                         f"got {list(mean_db.shape)}, {n_steps} and {n_tail}")
    gap = s.mean(0) - mean_db.to(s)
    parts = [gap[..., :n_steps]]  # the onset's steps
    if n_tail:
        parts.append(gap[..., w - n_tail:].cumsum(-1))  # the release's levels re the frame before it
    return torch.cat(parts, -1).square().mean() / 100.0


def pitch_accuracy(pitch_logits: torch.Tensor, pitch_index: torch.Tensor) -> float:
    """Fraction of argmax predictions equal to ``pitch_index``."""
    return float((pitch_logits.argmax(-1) == pitch_index).float().mean())


def attribute_accuracy(student_logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of (note, attribute) pairs where the student and the target agree on ``> 0.5``
    (NaN when K = 0)."""
    if student_logits.shape[-1] == 0:
        return float("nan")
    return float(((student_logits > 0) == (targets > 0.5)).float().mean())


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for every parameter; buffers are copied.

    Both modules must have the same architecture (``model`` may be DDP-wrapped).
    """
    model = getattr(model, "module", model)
    ema_params = list(ema.parameters())
    params = [p.detach() for p in model.parameters()]
    if len(ema_params) != len(params):
        raise ValueError("EMA and model architectures differ")
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
