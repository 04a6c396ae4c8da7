"""Waveform-level loss terms of the generator: f0 and the teacher in the loop.

The generated normalised MAG-IF ``[b, 2, 1024, 32]`` (at a coarser scale ``[b, 2, H_s, W_s]``,
nearest-up-sampled to that size first, for the teacher term only: ``train.output_terms_from_scale``)
is de-normalised and inverted to a waveform
``[b, 16000]`` as users hear it (differentiable, :func:`darkgan.data.magif.magif_to_note`); then

- ``g_f0``: :func:`darkgan.training.losses.f0_autocorrelation_loss` at the asked pitch (with
  ``train.f0_reference="real"``, only its excess over the batch's real notes',
  :func:`~darkgan.training.losses.f0_relative_loss`);
- ``g_teacher``: the teacher labels the waveform after random transforms
  (:func:`~darkgan.training.losses.augment_for_teacher`) and its logits of the K vocabulary
  classes are matched to the conditioning (:func:`~darkgan.training.losses.teacher_attribute_loss`).
  This is knowledge distillation (paper Sec. 3, Eq. 2) with the teacher itself, not the critic's
  attribute head, as the judge of generated notes (issue 15);
- ``g_consistency``: the first ``ceil(train.consistency_fraction * b)`` notes are generated a
  second time at a neighbouring pitch (same z and alpha, :attr:`BatchTerms.partner_pitch`) and
  the teacher's embeddings of each pair are pulled together
  (:func:`~darkgan.training.losses.timbre_consistency_loss`; no transforms: identical notes
  score 0), in units of unrelated real notes (:func:`unrelated_distance`; issue 21);
- ``g_increment``: the first ``ceil(train.increment_fraction * b)`` notes are generated a second
  time with one attribute raised by ``train.increment_delta`` standard deviations (same z and
  pitch); both are heard through identical random transforms and the teacher must hear the
  rise (:func:`~darkgan.training.losses.attribute_increment_loss`; issue 15).

- ``g_retrieval``: the teacher's soft labels of each note (the same transformed waveform as
  ``g_teacher``) must lie nearer the note's own conditioning than ``train.retrieval_negatives``
  training notes' attributes (:func:`~darkgan.training.losses.teacher_retrieval_loss`; issue 15's
  timbre-transfer retrieval test made a loss).

- ``g_steer``: the first ``ceil(train.steer_fraction * b)`` notes are generated twice more, with
  one attribute set alone to a value between its training 5th and 99th percentiles and with the
  same edit steered as in the data (the others moved by their regression on it); the single
  edit's output is pulled onto the steered edit's
  (:func:`~darkgan.training.losses.steer_distillation_loss`; issue 15; every scale, no teacher).

- ``g_partial``: the first ``ceil(train.partial_fraction * b)`` notes are generated once more with
  one attribute set alone to a value between its training 5th and 99th percentiles; the change
  must be that attribute's partial effect in the real notes (:func:`partial_effect_maps`: the
  regression of the normalised MAG-IF on every attribute and the pitch), pulled on with
  :func:`~darkgan.training.losses.edit_matching_loss` (issue 15; every scale, no teacher).

- ``g_envelope``: the frame-to-frame energy changes of the generated notes must stay within the
  real notes' range (:func:`~darkgan.training.losses.envelope_range_loss`, bounds from
  :func:`envelope_bounds`; last scale only; no inversion needed): the onset burst (issue 15);
  per frequency band (``train.envelope_bands_hz``, :func:`envelope_energy_db`) and, with
  ``train.envelope_match_steps`` (``train.envelope_match_tail_steps``), the batch mean of the
  onset's (release's) steps against the real notes'
  (:func:`~darkgan.training.losses.envelope_mean_loss`).

- ``g_tail``: the teacher hears each generated note from ``train.tail_from_s`` on alone, after the
  same random transforms, and must label it as it labels that span of the real note the note was
  asked as (:meth:`BatchTerms.tail_term`; issue 15; last scale only): the decay, which an onset
  click cannot stand in for.

- ``g_anchor``: a frozen reference generator (``train.anchor_generator``) makes the same request
  (z, pitch, alpha), synthesised with its own fade; the teacher's labels of each generated note
  must stay those of the reference's (:class:`AnchorGenerator`; last scale only): a fine-tune that
  changes one thing (the end of the note) keeps what the source made the teacher hear.

- ``g_anchor_body``: the same reference's normalised MAG-IF for the same request holds every frame
  but the last ``train.anchor_free_frames`` (:meth:`BatchTerms.anchor_body_term`; last scale only):
  an end-of-note fine-tune changes the end and keeps the body.

Partners of these terms are appended to the batch (:class:`Partners`) and generated in the same
forward, except ``g_steer``'s steered targets, which get a forward of their own without a graph
(:func:`darkgan.training.loop.train_step_g`).

The terms are data: :meth:`WaveTerms.for_batch` returns a :class:`BatchTerms`, a function from the
generated batch (partners appended) to a dict ``{name: scalar}`` that
:func:`darkgan.training.loop.train_step_g` weights with ``train.loss_weights``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from darkgan.data.magif import AUDIBLE_HZ, FADE_OUT_SAMPLES, N_BINS, N_FRAMES, SAMPLE_RATE, frame_energy_db, magif_to_note
from darkgan.errors import CheckpointError, DataError
from darkgan.models.generator import attribute_logits
from darkgan.training.losses import (attribute_increment_loss, augment_for_teacher, edit_matching_loss,
                                     envelope_mean_loss, envelope_profile_loss, envelope_range_loss, envelope_steps_db,
                                     f0_autocorrelation_loss, f0_relative_loss, mean_pairwise_cosine_distance,
                                     neighbour_pitches, raise_attribute, single_and_steered, single_edit,
                                     steer_distillation_loss, teacher_attribute_loss, teacher_retrieval_loss,
                                     timbre_consistency_loss)
from darkgan.training.regression import conditioning_regression


def attribute_weights(weights: dict[str, float], names: list[str]) -> torch.Tensor | None:
    """``train.teacher_attribute_weights`` as a ``[K]`` float32 vector over the vocabulary
    ``names`` (attributes not named weigh 1); None when the dict is empty.

    Raises:
        DataError: a name not in the vocabulary, or every weight 0.
    """
    if not weights:
        return None
    unknown = [k for k in weights if k not in names]
    if unknown:
        raise DataError(f"train.teacher_attribute_weights: {unknown[0]!r} is not in the dataset's vocabulary "
                        f"of {len(names)} attributes")
    w = torch.ones(len(names))
    for k, v in weights.items():
        w[names.index(k)] = float(v)
    if float(w.sum()) <= 0:
        raise DataError("train.teacher_attribute_weights: every attribute has weight 0")
    return w


def attribute_stats(logits: np.ndarray, rows: np.ndarray, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of ``z / T`` per attribute over the training notes.

    Args:
        logits: ``[N, K]`` raw teacher logits; rows: ``[n]`` training rows; temperature: T > 0.

    Returns:
        ``(mean [K], std [K])`` float32 tensors, std floored at 1e-3.
    """
    u = np.asarray(logits[np.asarray(rows)], dtype=np.float64) / float(temperature)
    return (torch.from_numpy(u.mean(0)).float(), torch.from_numpy(np.maximum(u.std(0), 1e-3)).float())


def standardized_logits(logits: np.ndarray, rows: np.ndarray, temperature: float) -> np.ndarray:
    """The training notes' ``std_logit`` conditioning: ``(z / T - mean) / std`` (:func:`attribute_stats`).

    Args:
        logits: ``[N, K]`` raw teacher logits; rows: ``[n]`` training rows; temperature: T > 0.

    Returns:
        ``[n, K]`` float64, each column of mean 0 and std 1 (or below 1 where the std was floored).
    """
    mean, std = attribute_stats(logits, rows, temperature)
    u = np.asarray(logits[np.asarray(rows)], dtype=np.float64) / float(temperature)
    return (u - mean.double().numpy()) / std.double().numpy()


def attribute_whitening(logits: np.ndarray, rows: np.ndarray, temperature: float, eps: float) -> torch.Tensor:
    """The shrinkage whitening of ``model.attr_input = "white_logit"``: ``W [K, K]`` float32.

    ``c = (z / T - mean) / std`` over the training notes (:func:`attribute_stats`), covariance
    ``C = V diag(lambda) V^T`` (mean eigenvalue 1); ``W = V diag(s) V^T`` with
    ``s_k = sqrt(g / (lambda_k + eps))`` and ``g`` such that ``c W`` keeps the total variance K
    (``sum_k g lambda_k / (lambda_k + eps) = K``). ``eps -> 0`` is ZCA whitening, ``eps -> inf``
    the identity; symmetric, so each coordinate of ``c W`` stays tied to its attribute. Standard
    input whitening (LeCun et al., "Efficient BackProp", 1998, Sec. 4.3), shrunk so that the
    directions of almost no variance (74 of our 128 eigenvalues are below 0.1) are not blown up.

    Args:
        logits: ``[N, K]`` raw teacher logits; rows: ``[n >= 2]`` training rows; temperature: T > 0;
        eps: the shrinkage (> 0).

    Raises:
        ValueError: ``eps <= 0`` or fewer than 2 rows.
    """
    if not eps > 0 or len(rows) < 2:
        raise ValueError(f"attribute_whitening: needs eps > 0 and >= 2 rows, got {eps}, {len(rows)}")
    c = standardized_logits(logits, rows, temperature)
    lam, vec = np.linalg.eigh(np.cov(c, rowvar=False, bias=True))
    lam = np.clip(lam, 0.0, None)
    gain = c.shape[1] / float(np.sum(lam / (lam + eps)))
    w = (vec * np.sqrt(gain / (lam + eps))) @ vec.T
    return torch.from_numpy(w).float()


#: The attribute percentiles of issue 15's rise test (5th -> 99th), one home: the range of a
#: ``g_steer`` edit here and the two levels of ``benchmarks/control.py``'s rise test.
RISE_PERCENTILES = (5.0, 99.0)


def steer_statistics(logits: np.ndarray, rows: np.ndarray, temperature: float
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What ``g_steer`` needs of the training notes' logits ``u = z / T``.

    Args:
        logits: ``[N, K]`` raw teacher logits; rows: ``[n >= 2]`` training rows; temperature: T > 0.

    Returns:
        ``(coefficients [K, K], lo [K], hi [K])`` float32: the single-attribute regression rows of
        the :class:`~darkgan.teacher.prior.AttributePrior` fitted on those notes, and each
        attribute's :data:`RISE_PERCENTILES` of ``u``.

    Raises:
        DataError: fewer than 2 training notes.
    """
    from darkgan.teacher.prior import AttributePrior

    z = np.asarray(logits[np.asarray(rows)], dtype=np.float64)
    if len(z) < 2:
        raise DataError(f"train.loss_weights.g_steer > 0 needs at least 2 training notes, got {len(z)}")
    coef = AttributePrior.from_logits(z, temperature).single_coefficients()
    lo, hi = np.percentile(z / float(temperature), RISE_PERCENTILES, axis=0)
    return tuple(torch.from_numpy(np.asarray(a)).float() for a in (coef, lo, hi))


@torch.no_grad()
def partial_effect_maps(data, temperature: float, ridge: float = 0.0, chunk: int = 1024
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each attribute's partial (own) effect on the real notes' normalised MAG-IF, the targets of ``g_partial``.

    Over the n training notes, every time-frequency cell of the normalised MAG-IF ``x [n, 2, 1024, 32]``
    is regressed on the K attribute logits ``u = z / T`` (paper Eq. 1) and one indicator per
    pitch: ``x = sum_i u_i beta_i + c_pitch + e``. ``beta_i`` is how the notes change when
    ``u_i`` rises by 1 with every other attribute and the pitch held fixed: the change the
    rise test asks of a single edit (``benchmarks/control.py``, issue 15), measured in the
    data itself rather than heard by a tagger. A ridge penalty ``ridge * n * sd(u_i)^2`` on
    each attribute's coefficient (the standardised coefficients' L2) shrinks the effects of
    attributes the others nearly determine; the pitch indicators are not penalised.

    Args:
        data: a :class:`~darkgan.training.data.TrainingData` with attributes; temperature: T > 0;
        ridge: >= 0; chunk: notes read from the cache at a time.

    Returns:
        ``(beta [K, 2, 1024, 32], lo [K], hi [K])`` float32: the effects per unit of ``u`` and
        each attribute's :data:`RISE_PERCENTILES` of ``u``.

    Raises:
        DataError: no attributes, or ``ridge = 0`` with no more training notes than the K + P
            coefficients (P pitches).

    Source: ours (issue 15): :func:`darkgan.training.regression.conditioning_regression`.
    """
    fit = conditioning_regression(data, temperature, lambda rows: data.cache.load(rows, normalize=True).flatten(1),
                                  ridge, chunk, "g_partial")
    k = fit.beta.shape[0]
    lo, hi = np.percentile(fit.u, RISE_PERCENTILES, axis=0)
    return (torch.from_numpy(fit.beta).float().reshape(k, 2, N_BINS, N_FRAMES),
            torch.from_numpy(lo).float(), torch.from_numpy(hi).float())


def draw_edits(draws: torch.Tensor, pool: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The single-attribute edits of ``g_steer`` and ``g_partial`` from uniform draws.

    Args:
        draws: ``[m, 2]`` uniform in [0, 1); pool: ``[P]`` long, the attributes that may be edited
            (:func:`attribute_pool`); lo, hi: ``[K]`` each attribute's :data:`RISE_PERCENTILES` of
            ``u = z / T``.

    Returns:
        ``(attr_index [m] long, target [m])``: attribute ``pool[floor(draws[:, 0] * P)]``, its asked
        logit ``lo + draws[:, 1] * (hi - lo)``.
    """
    i = pool[(draws[:, 0] * len(pool)).long().clamp(max=len(pool) - 1)]
    return i, lo[i] + draws[:, 1] * (hi - lo)[i]


def attribute_pool(names: tuple[str, ...], vocabulary: list[str], key: str = "train.steer_attributes"
                   ) -> torch.Tensor:
    """``[n]`` long: the vocabulary indices of ``names`` (the setting ``key``), or all K when
    ``names`` is empty.

    Raises:
        DataError: a name not in the vocabulary, or a name twice.
    """
    if not names:
        return torch.arange(len(vocabulary))
    unknown = [n for n in names if n not in vocabulary]
    if unknown:
        raise DataError(f"{key}: {unknown[0]!r} is not in the dataset's vocabulary "
                        f"of {len(vocabulary)} attributes")
    if len(set(names)) != len(names):
        raise DataError(f"{key}: an attribute is named twice")
    return torch.tensor([vocabulary.index(n) for n in names], dtype=torch.long)


def check_teacher_vocabulary(teacher, class_indices: list[int], attributes: list[str], where: str) -> None:
    """Raise :class:`DataError` (one line) if ``teacher``'s classes at ``class_indices`` are not
    the vocabulary ``attributes`` (a teacher other than the one that labelled the data)."""
    names = list(teacher.class_names)
    if max(class_indices, default=-1) >= len(names) or [names[i] for i in class_indices] != list(attributes):
        raise DataError(f"{where}: teacher {teacher.id} has other classes than the vocabulary "
                        f"(e.g. {attributes[:2]}); label the data with the same teacher")


def envelope_energy_db(logmag: torch.Tensor, bands_hz: tuple[float, ...] = ()) -> torch.Tensor:
    """The energy envelopes ``g_envelope`` bounds: ``[B, F, W]`` natural-log magnitudes ->
    ``[B, W]`` the audible energy (:func:`~darkgan.data.magif.frame_energy_db`) when ``bands_hz``
    is empty, else ``[B, len(bands_hz) + 1, W]`` the energy of each band between 20 Hz, the
    ``bands_hz`` (Hz, increasing) and 8 kHz, in dB (``train.envelope_bands_hz``)."""
    if not bands_hz:
        return frame_energy_db(logmag)
    edges = (AUDIBLE_HZ, *bands_hz, None)
    return torch.stack([frame_energy_db(logmag, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])], dim=-2)


@torch.no_grad()
def envelope_bounds(data, seed: int, quantile: float, n: int = 2048, drop_steps: int = N_FRAMES - 1,
                    bands_hz: tuple[float, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """The range of real notes' frame-to-frame energy changes, the bounds of ``g_envelope``.

    Args:
        data: :class:`~darkgan.training.data.TrainingData`; ``n`` training notes are drawn with
            ``seed`` (all of them when fewer), read un-normalised from the cache.
        quantile: q in (0, 0.5): the bounds are the q and 1 - q quantiles, per step.
        drop_steps: ``lo`` is kept for the first ``drop_steps`` steps and ``-inf`` (any drop
            allowed) after them (``train.envelope_drop_steps``): 31 bounds every step, 2 only the
            onset's frames 0 -> 1 -> 2, leaving percussive decays free.
        bands_hz: the band splits of :func:`envelope_energy_db` (``train.envelope_bands_hz``).

    Returns:
        ``(lo, hi)`` float32 dB, each ``[31]`` (no bands) or ``[n_bands, 31]`` per band
        (:func:`~darkgan.training.losses.envelope_steps_db` of :func:`envelope_energy_db`); on the
        default data with q = 0.005 the first step's ``lo`` is about -3 dB.

    Raises:
        DataError: no training notes.
    """
    q = torch.tensor([quantile, 1.0 - quantile], dtype=torch.float64)
    lo, hi = torch.quantile(real_envelope_steps(data, seed, n, bands_hz).double(), q, dim=0).float()
    lo[..., drop_steps:] = -math.inf
    return lo, hi


@torch.no_grad()
def real_envelope_steps(data, seed: int, n: int = 2048, bands_hz: tuple[float, ...] = ()) -> torch.Tensor:
    """``[n, 31]`` (``[n, n_bands, 31]``) float32 dB: the frame-to-frame energy changes
    (:func:`envelope_energy_db`) of ``n`` training notes drawn with ``seed`` (all when fewer), the
    real side of ``g_envelope`` (:func:`envelope_bounds`, and the mean of
    ``train.envelope_match_steps``). Raises :class:`DataError` without training notes."""
    rows = np.asarray(data.train_rows)
    if len(rows) == 0:
        raise DataError("train.loss_weights.g_envelope > 0 needs training notes")
    rng = np.random.default_rng([int(seed), 0xE7])
    rows = np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))
    return torch.cat([envelope_steps_db(envelope_energy_db(data.cache.load(rows[i:i + 256], normalize=False)[:, 0].float(),
                                                           bands_hz)) for i in range(0, len(rows), 256)])


def envelope_profile(logmag: torch.Tensor) -> torch.Tensor:
    """``[B, F, W]`` natural-log magnitudes -> ``[B, W]`` the temporal energy envelope in dB below the
    note's loudest frame (:func:`~darkgan.data.magif.frame_energy_db` minus its maximum; <= 0)."""
    e = frame_energy_db(logmag)
    return e - e.max(dim=-1, keepdim=True).values


@dataclass
class ProfileModel:
    """The temporal envelope expected of a real note with given labels and pitch (``g_profile``).

    Attributes:
        beta: ``[K, W]`` dB per unit of each attribute's ``u = z / T``.
        pitch_coef: ``[n_pitches, W]`` dB, one intercept per pitch of the training range.
        band: ``[W]`` dB, the real notes' residual standard deviation around the prediction.
    """

    beta: torch.Tensor
    pitch_coef: torch.Tensor
    band: torch.Tensor

    def predict(self, u: torch.Tensor, pitch_index: torch.Tensor) -> torch.Tensor:
        """``u [b, K]``, ``pitch_index [b]`` (0 = the range's lowest) -> ``[b, W]`` the expected
        :func:`envelope_profile` in dB."""
        return u.to(self.beta) @ self.beta + self.pitch_coef[pitch_index]

    def to(self, device) -> "ProfileModel":
        """The same model with its three tensors on ``device``."""
        return ProfileModel(self.beta.to(device), self.pitch_coef.to(device), self.band.to(device))


@torch.no_grad()
def envelope_profile_model(data, temperature: float, ridge: float, chunk: int = 1024) -> ProfileModel:
    """Fit :class:`ProfileModel`: every frame of the real training notes' :func:`envelope_profile`
    regressed on their conditioning and pitch (:func:`~darkgan.training.regression.conditioning_regression`).

    On the default data the fit explains 60 % of the validation split's envelopes (unseen
    instruments; R^2 over notes and frames, ridge 0.01): the labels say how a note decays. The
    shipped default's notes, asked with the same labels and pitches, follow it late in the note
    (correlation 0.51 at frame 24; real notes 0.87) but not at the attack (frame 4: -0.35; real
    +0.55): every note loses ~6 dB in its first 120 ms, sustained or struck, and its percussive
    requests stay 18 dB above their real notes at 0.75 s (heard by the teacher as Reverberation
    and Echo rather than Percussion, Marimba, Glockenspiel). Measured with
    ``benchmarks/envelope_profile.py``.

    Args:
        data: :class:`~darkgan.training.data.TrainingData` with attributes; temperature: T;
        ridge: >= 0 (``train.profile_ridge``); chunk: notes read at a time.

    Returns:
        the :class:`ProfileModel` (float32, CPU).

    Pitches of the range without training notes get intercepts interpolated between their
    neighbours'. Source: ours (issue 15, stop 48); the regression is
    :func:`~darkgan.training.regression.conditioning_regression`.

    Raises:
        DataError: no attributes, or too few notes for ``ridge = 0``.
    """
    fit = conditioning_regression(
        data, temperature, lambda rows: envelope_profile(data.cache.load(rows, normalize=False)[:, 0].float()),
        ridge, chunk, "g_profile", "train.profile_ridge")
    midi = np.arange(int(data.n_pitches)) + int(data.pitch_range[0])
    pitch_coef = np.stack([np.interp(midi, fit.levels, fit.pitch_coef[:, f]) for f in range(fit.pitch_coef.shape[1])], 1)
    return ProfileModel(torch.from_numpy(fit.beta).float(), torch.from_numpy(pitch_coef).float(),
                        torch.from_numpy(fit.residual_sd).float())


@torch.no_grad()
def unrelated_distance(teacher, data, seed: int, n: int = 64, fade: int = FADE_OUT_SAMPLES) -> float:
    """The mean teacher-embedding cosine distance between unrelated real notes: ``n`` training
    notes (drawn with ``seed``, inverted from the cache by :func:`magif_to_note` as generated
    notes are), every pair of them. The unit of ``g_consistency``.

    Returns:
        a float > 0. Raises: DataError: fewer than 2 training notes, or all notes alike.
    """
    rows = np.asarray(data.train_rows)
    if len(rows) < 2:
        raise DataError("train.loss_weights.g_consistency > 0 needs at least 2 training notes")
    rows = np.sort(np.random.default_rng([int(seed), 0xC0]).choice(rows, size=min(n, len(rows)), replace=False))
    wave = magif_to_note(torch.from_numpy(np.asarray(data.cache.magif[rows], dtype=np.float32)), fade)
    d = mean_pairwise_cosine_distance(teacher.embedding(wave).cpu())
    if not d > 1e-6:
        raise DataError(f"g_consistency: the {len(rows)} reference notes all sound alike to the teacher")
    return d


@torch.no_grad()
def reference_attributes(data, seed: int, temperature: float, n: int = 8192) -> tuple[torch.Tensor, float]:
    """The negatives of ``g_retrieval``: the attributes ``alpha = sigmoid(z / T)`` of up to ``n``
    training notes (drawn with ``seed``), and their distance unit, the median squared Euclidean
    distance between two of them (pairs of the first 1,024).

    Returns:
        ``([n, K] float32, unit > 0)``. Raises: DataError: fewer than 2 training notes, or all alike.
    """
    rows = np.asarray(data.train_rows)
    if len(rows) < 2:
        raise DataError("train.loss_weights.g_retrieval > 0 needs at least 2 training notes")
    rows = np.sort(np.random.default_rng([int(seed), 0xE7]).choice(rows, size=min(n, len(rows)), replace=False))
    alpha = torch.sigmoid(torch.as_tensor(np.asarray(data.logits)[rows], dtype=torch.float32) / float(temperature))
    head = alpha[:1024]
    d = torch.cdist(head, head).square()
    unit = float(d[torch.triu_indices(len(head), len(head), 1).unbind()].median())
    if not unit > 1e-12:
        raise DataError(f"g_retrieval: the {len(rows)} training notes' attributes are all alike")
    return alpha, unit


class AnchorGenerator:
    """The frozen reference of the ``g_anchor`` and ``g_anchor_body`` terms: a trained generator and
    how its notes are heard (:attr:`fade`, its ``model.synthesis_fade``).

    Args:
        path: a generator checkpoint (folder, run folder or shipped name, as ``--checkpoint``).
        data: the run's :class:`~darkgan.training.data.TrainingData` (pitch range, vocabulary).
        device: where it runs (float32, ``eval()``, no gradients).

    Raises:
        CheckpointError: unreadable checkpoint, or another pitch range or vocabulary than the
            run's (one line naming the path).
    """

    def __init__(self, path: str, data, device: torch.device):
        from darkgan.models.checkpoint import load_generator

        self.generator, cfg = load_generator(path, device=device)
        self.generator.requires_grad_(False)
        if (self.generator.n_pitches != int(data.n_pitches) or tuple(cfg.pitch_range) != tuple(data.pitch_range)
                or list(cfg.attributes) != list(data.attributes)):
            raise CheckpointError(f"{path}: train.anchor_generator needs this run's pitch range and vocabulary "
                                  f"(it has MIDI {cfg.pitch_range[0]}..{cfg.pitch_range[1]} and "
                                  f"{len(cfg.attributes)} attributes)")
        self.normalizer, self.fade = cfg.get_normalizer(), int(cfg.config.model.synthesis_fade)

    @torch.no_grad()
    def magif(self, z: torch.Tensor, pitch_index: torch.Tensor, conditioning: torch.Tensor) -> torch.Tensor:
        """``[b, 2, 1024, 32]`` the reference's raw (de-normalised) MAG-IF of ``z [b, Z]``,
        ``pitch_index [b]``, ``conditioning [b, K]``."""
        return self.normalizer.denormalize(self.generator(z.float(), pitch_index, conditioning.float()).float())


@dataclass
class Partners:
    """Extra notes generated in the batch's forward: note ``rows[j]`` of the batch again (its z)
    at ``pitch[j]`` with ``conditioning[j]``; the first ``n_consistency`` rows are the
    ``g_consistency`` partners (another pitch), the next ``len(attr_index)`` the ``g_increment``
    partners (one attribute raised, :attr:`attr_index`), the last ``2 * n_steer`` the ``g_steer``
    partners: ``n_steer`` single edits, then the same edits steered. The ``n_partial`` ``g_partial``
    single edits come just before the ``g_steer`` partners, their attributes in
    :attr:`partial_index` and the asked logits' steps ``t - u_i`` in :attr:`partial_step`.

    Shapes: rows, pitch ``[M]`` long; conditioning ``[M, K]``; attr_index ``[n_increment]``;
    partial_index, partial_step ``[n_partial]``.
    """

    rows: torch.Tensor
    pitch: torch.Tensor
    conditioning: torch.Tensor
    n_consistency: int
    attr_index: torch.Tensor
    n_steer: int = 0
    n_partial: int = 0
    partial_index: torch.Tensor | None = None
    partial_step: torch.Tensor | None = None


class WaveTerms:
    """Builds the ``g_f0`` / ``g_teacher`` / ``g_consistency`` / ``g_increment`` / ``g_envelope`` /
    ``g_retrieval`` / ``g_steer`` / ``g_partial`` / ``g_tail`` / ``g_anchor`` / ``g_anchor_body``
    terms for one run.

    Args:
        tc: the :class:`~darkgan.models.config.TrainConfig` (weights, T, teacher loss and
            transforms, consistency and increment settings).
        data: the :class:`~darkgan.training.data.TrainingData` (normaliser, pitch range, labels).
        device: where the teacher runs.
        fade: samples of the fade synthesis ends every note with (``model.synthesis_fade``,
            :func:`~darkgan.data.magif.magif_to_note`): the terms hear generated and real notes
            as users will.

    Raises:
        DataError: ``g_teacher``, ``g_increment``, ``g_retrieval``, ``g_steer`` or ``g_partial > 0`` on a
            dataset without attributes, a ``train.steer_attributes`` or ``train.partial_attributes``
            name not in the vocabulary, too few notes for ``g_partial``'s regression
            (:func:`partial_effect_maps`), a teacher
            whose classes do not match the vocabulary, or ``g_consistency > 0`` on fewer than
            ``2 * train.consistency_max_offset`` pitches. WeightsError: the teacher's weights are
            missing. CheckpointError: ``train.anchor_generator`` unreadable or of another pitch
            range or vocabulary (:class:`AnchorGenerator`).
    """

    def __init__(self, tc, data, device: torch.device, fade: int = FADE_OUT_SAMPLES):
        self.tc, self.normalizer, self.lo = tc, data.normalizer, int(data.pitch_range[0])
        self.fade = int(fade)
        self.n_pitches = int(data.n_pitches)
        self.f0 = tc.loss_weights.get("g_f0", 0.0) > 0
        self.labels = tc.loss_weights.get("g_teacher", 0.0) > 0
        self.consistency = tc.loss_weights.get("g_consistency", 0.0) > 0
        self.increment = tc.loss_weights.get("g_increment", 0.0) > 0
        self.envelope = tc.loss_weights.get("g_envelope", 0.0) > 0
        self.profile = tc.loss_weights.get("g_profile", 0.0) > 0
        self.retrieval = tc.loss_weights.get("g_retrieval", 0.0) > 0
        self.steer = tc.loss_weights.get("g_steer", 0.0) > 0
        self.partial = tc.loss_weights.get("g_partial", 0.0) > 0
        self.tail = tc.loss_weights.get("g_tail", 0.0) > 0
        self.anchor = tc.loss_weights.get("g_anchor", 0.0) > 0
        self.anchor_body = tc.loss_weights.get("g_anchor_body", 0.0) > 0
        self.teacher = None
        for key, on in (("g_teacher", self.labels), ("g_increment", self.increment), ("g_retrieval", self.retrieval),
                        ("g_steer", self.steer), ("g_partial", self.partial), ("g_profile", self.profile),
                        ("g_tail", self.tail), ("g_anchor", self.anchor)):
            if on and not data.n_attributes:
                raise DataError(f"train.loss_weights.{key} > 0 needs attributes (the baseline has none)")
        if self.consistency and self.n_pitches < 2 * tc.consistency_max_offset:
            raise DataError(f"train.loss_weights.g_consistency: {self.n_pitches} pitches cannot hold neighbours up "
                            f"to +-{tc.consistency_max_offset} semitones (train.consistency_max_offset)")
        if tc.teacher_attribute_weights and not (self.labels or self.tail or self.anchor):
            raise DataError("train.teacher_attribute_weights weigh the g_teacher, g_tail and g_anchor terms, which "
                            "are off (train.loss_weights.g_teacher = g_tail = g_anchor = 0)")
        hears = self.labels or self.increment or self.retrieval or self.tail or self.anchor
        if hears or self.consistency:
            from darkgan.teacher import load_teacher

            self.teacher = load_teacher((data.teacher or {}).get("id") or "efficientat-mn04", device=str(device))
        if hears:
            check_teacher_vocabulary(self.teacher, list(data.class_indices), list(data.attributes), "teacher")
            self.classes = torch.tensor(list(data.class_indices), dtype=torch.long, device=device)
            self.attr_std = attribute_stats(data.logits, data.train_rows, tc.temperature)[1].to(device)
            self.attr_white = (attribute_whitening(data.logits, data.train_rows, tc.temperature, tc.teacher_white_eps)
                               .to(device) if tc.teacher_loss == "white_mse" else None)
            self.attr_weights = attribute_weights(tc.teacher_attribute_weights, list(data.attributes))
            if self.attr_weights is not None:
                self.attr_weights = self.attr_weights.to(device)
        self.anchor_generator = (AnchorGenerator(tc.anchor_generator, data, device)
                                 if self.anchor or self.anchor_body else None)
        if self.consistency:
            self.unrelated = unrelated_distance(self.teacher, data, tc.seed, fade=self.fade)
        if self.retrieval:
            self.references, unit = reference_attributes(data, tc.seed, tc.temperature)
            self.references, self.retrieval_unit = self.references.to(device), tc.retrieval_scale * unit
        if self.steer:
            self.steer_coef, self.steer_lo, self.steer_hi = (t.to(device) for t in steer_statistics(
                data.logits, data.train_rows, tc.temperature))
            self.steer_pool = attribute_pool(tc.steer_attributes, list(data.attributes)).to(device)
        if self.partial:
            self.partial_pool = attribute_pool(tc.partial_attributes, list(data.attributes),
                                               "train.partial_attributes").to(device)
            self.partial_beta, self.partial_lo, self.partial_hi = (t.to(device) for t in partial_effect_maps(
                data, tc.temperature, tc.partial_ridge))
        if self.profile:
            model = envelope_profile_model(data, tc.temperature, tc.profile_ridge)
            self.profile_model = ProfileModel(model.beta, model.pitch_coef, tc.profile_band * model.band).to(device)
        if self.envelope:
            match = tc.envelope_match_steps or tc.envelope_match_tail_steps
            self.envelope_mean = (real_envelope_steps(data, tc.seed, bands_hz=tc.envelope_bands_hz).mean(0).to(device)
                                  if match and tc.envelope_match_reference == "data" else None)
            self.envelope_lo, self.envelope_hi = (t.to(device) for t in
                                                  envelope_bounds(data, tc.seed, tc.envelope_quantile,
                                                                  drop_steps=tc.envelope_drop_steps,
                                                                  bands_hz=tc.envelope_bands_hz))

    @property
    def active(self) -> bool:
        return (self.f0 or self.labels or self.consistency or self.increment or self.envelope or self.retrieval
                or self.steer or self.partial or self.profile or self.tail or self.anchor or self.anchor_body)

    @property
    def needs_real(self) -> bool:
        """Whether a term is relative to the batch's real notes (``train.f0_reference`` or
        ``train.profile_reference`` ``"real"``, or ``train.envelope_match_reference`` ``"batch"``,
        with its term on; ``g_tail`` always)."""
        return (self.tail or (self.f0 and self.tc.f0_reference == "real")
                or (self.profile and self.tc.profile_reference == "real")
                or (self.envelope and (self.tc.envelope_match_steps or self.tc.envelope_match_tail_steps) > 0
                    and self.tc.envelope_match_reference == "batch"))

    def n_pairs(self, b: int) -> int:
        """How many notes of a batch of ``b`` get a neighbouring-pitch partner (0 when off)."""
        return min(b, math.ceil(self.tc.consistency_fraction * b)) if self.consistency else 0

    def n_increments(self, b: int) -> int:
        """How many notes of a batch of ``b`` get a raised-attribute partner (0 when off)."""
        return min(b, math.ceil(self.tc.increment_fraction * b)) if self.increment else 0

    def n_steers(self, b: int) -> int:
        """How many notes of a batch of ``b`` get ``g_steer`` partners (0 when off)."""
        return min(b, math.ceil(self.tc.steer_fraction * b)) if self.steer else 0

    def n_partials(self, b: int) -> int:
        """How many notes of a batch of ``b`` get a ``g_partial`` partner (0 when off)."""
        return min(b, math.ceil(self.tc.partial_fraction * b)) if self.partial else 0

    def for_batch(self, pitch_index: torch.Tensor, conditioning: torch.Tensor, gen: torch.Generator,
                  u: torch.Tensor | None = None, v: torch.Tensor | None = None,
                  w: torch.Tensor | None = None, e: torch.Tensor | None = None,
                  real: torch.Tensor | None = None) -> "BatchTerms":
        """The :data:`~darkgan.training.loop.OutputTerms` of one batch.

        Args:
            pitch_index: ``[b]`` long; conditioning: ``[b, K]`` alpha; gen: the step's random
                generator (the transforms);
            u: ``[b]`` uniform draws for the consistency partners' pitches (needed when
                ``g_consistency`` is on); v: ``[b]`` uniform draws for the raised attributes
                (needed when ``g_increment`` is on); w: ``[b, 2]`` uniform draws for the ``g_steer``
                edits (attribute, value between its percentiles; needed when ``g_steer`` is on);
                e: ``[b, 2]`` the same for the ``g_partial`` edits (needed when ``g_partial`` is on);
            real: ``[b, 2, 1024, 32]`` the un-normalised real notes whose labels and pitch the batch
                is asked with (needed when :attr:`needs_real`: ``g_f0`` on with
                ``train.f0_reference="real"``, ``g_profile`` on with ``train.profile_reference="real"``,
                ``g_envelope``'s match with ``train.envelope_match_reference="batch"``, or ``g_tail`` on).

        Raises:
            ValueError: a needed draw or the real notes are missing.
        """
        b = int(pitch_index.shape[0])
        if self.needs_real and real is None:
            raise ValueError("g_tail, g_f0 with train.f0_reference='real', g_profile with train.profile_reference='real' "
                             "or g_envelope with train.envelope_match_reference='batch' needs the real notes of the batch")
        real = real if self.needs_real else None
        m, n, s, q = self.n_pairs(b), self.n_increments(b), self.n_steers(b), self.n_partials(b)
        if (m and u is None) or (n and v is None) or (s and w is None) or (q and e is None):
            raise ValueError("g_consistency needs the draws u, g_increment the draws v, g_steer the draws w, "
                             "g_partial the draws e")
        if not (m or n or s or q):
            return BatchTerms(self, pitch_index, conditioning, gen, None, real)
        dev = pitch_index.device
        near = (neighbour_pitches(pitch_index[:m], self.n_pitches, self.tc.consistency_max_offset, u[:m])
                if m else pitch_index[:0])
        k = conditioning.shape[1]
        attr = (v[:n].to(dev) * k).long().clamp(max=k - 1) if n else pitch_index[:0]
        raised = [raise_attribute(conditioning[:n], attr, self.tc.increment_delta, self.attr_std)] if n else []
        edits = []
        if s:
            i, t = draw_edits(w[:s].to(dev), self.steer_pool, self.steer_lo, self.steer_hi)
            edits = list(single_and_steered(conditioning[:s], i, t, self.steer_coef))
        partial, p_index, p_step = [], None, None
        if q:
            p_index, t = draw_edits(e[:q].to(dev), self.partial_pool, self.partial_lo, self.partial_hi)
            single, p_step = single_edit(conditioning[:q], p_index, t)
            partial = [single]
        rows = torch.cat([torch.arange(m, device=dev), torch.arange(n, device=dev), torch.arange(q, device=dev)]
                         + [torch.arange(s, device=dev)] * (2 if s else 0))
        partners = Partners(rows=rows, pitch=torch.cat([near.to(pitch_index), pitch_index[:n], pitch_index[:q]]
                                                       + [pitch_index[:s]] * (2 if s else 0)),
                            conditioning=torch.cat([conditioning[:m]] + raised + partial + edits),
                            n_consistency=m, attr_index=attr, n_steer=s, n_partial=q, partial_index=p_index,
                            partial_step=p_step)
        return BatchTerms(self, pitch_index, conditioning, gen, partners, real)


class BatchTerms:
    """The output terms of one batch: ``terms(out)`` with ``out [b + M, 2, H, W]`` the generated
    notes of the batch followed by their :attr:`partners` -> ``{name: scalar}``.

    Attributes:
        partners: the :class:`Partners` that :func:`~darkgan.training.loop.train_step_g`
            generates with the batch (None: no ``g_consistency`` nor ``g_increment``).
        real: ``[b, 2, 1024, 32]`` the batch's real notes, un-normalised, when ``g_f0``,
            ``g_profile``, ``g_tail`` or ``g_envelope``'s match is relative to them (:attr:`WaveTerms.needs_real`);
            else None.
    """

    def __init__(self, wt: WaveTerms, pitch_index: torch.Tensor, conditioning: torch.Tensor, gen: torch.Generator,
                 partners: Partners | None, real: torch.Tensor | None = None):
        self.wt, self.pitch_index, self.conditioning, self.gen = wt, pitch_index, conditioning, gen
        self.partners, self.real = partners, real
        self._reference = None  # the anchor's raw MAG-IF of the batch's requests, made once per batch

    def reference_magif(self, z: torch.Tensor) -> torch.Tensor:
        """``[b, 2, 1024, 32]`` the anchor generator's raw MAG-IF of the batch's requests (latents
        ``z [b, Z]``), made once and shared by ``g_anchor`` and ``g_anchor_body``."""
        if self._reference is None:
            self._reference = self.wt.anchor_generator.magif(z, self.pitch_index, self.conditioning)
        return self._reference

    def __call__(self, out: torch.Tensor, z: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``out [b + M, 2, H, W]`` the generated batch and its partners; ``z [b + M, Z]`` their
        latents (needed by ``g_anchor`` and ``g_anchor_body``, whose reference makes the same
        request) -> ``{name: scalar}``.

        Raises:
            ValueError: ``g_anchor`` or ``g_anchor_body`` on without ``z``.
        """
        wt, b, pr = self.wt, int(self.pitch_index.shape[0]), self.partners
        if (wt.anchor or wt.anchor_body) and z is None:
            name = "g_anchor" if wt.anchor else "g_anchor_body"
            raise ValueError(f"{name} needs the batch's latents z (its reference makes the same request)")
        final = tuple(out.shape[-2:]) == (N_BINS, N_FRAMES)
        terms = {}
        if pr is not None and pr.n_steer:
            s, o = pr.n_steer, int(out.shape[0]) - 2 * pr.n_steer
            terms["g_steer"] = steer_distillation_loss(out[o:o + s], out[o + s:], out[:s], wt.tc.steer_loss)
            out = out[:o]  # the wave terms below hear the batch and the other partners only
        if pr is not None and pr.n_partial:
            q, o = pr.n_partial, int(out.shape[0]) - pr.n_partial
            terms["g_partial"] = edit_matching_loss(out[o:] - out[:q].detach(), self._partial_target(out.shape[-2:]),
                                                    wt.tc.partial_loss)
            out = out[:o]
        if (wt.envelope or wt.profile) and final:
            terms.update(self._envelope_terms(wt.normalizer.denormalize(out[:b])[:, 0]))
        if wt.anchor_body and final:
            terms["g_anchor_body"] = self.anchor_body_term(out[:b], z[:b])
        if not (wt.f0 or wt.labels or wt.consistency or wt.increment or wt.retrieval or wt.tail or wt.anchor):
            return terms  # the envelope terms need no waveform
        if not final:  # a coarser scale: blurred, full size (no pitch to hear: f0 waits)
            out = torch.nn.functional.interpolate(out, size=(N_BINS, N_FRAMES), mode="nearest")
        wave_all = magif_to_note(wt.normalizer.denormalize(out), wt.fade)
        f0_wave = wave_all[:b]
        hears = wt.labels or wt.retrieval or wt.consistency or wt.increment or wt.tail or wt.anchor
        if hears and wt.tc.teacher_gradient == "magnitude":  # the teacher's gradient reaches the magnitude only
            wave_all = magif_to_note(wt.normalizer.denormalize(torch.cat([out[:, :1], out[:, 1:].detach()], 1)), wt.fade)
        wave = wave_all[:b]
        relative = final and (wt.tail or (wt.f0 and wt.tc.f0_reference == "real"))
        real_wave = magif_to_note(self.real.float(), wt.fade) if relative else None
        if wt.f0 and final:
            midi = (wt.lo + self.pitch_index).float()
            terms["g_f0"] = (f0_relative_loss(f0_wave, real_wave, midi)
                             if wt.tc.f0_reference == "real" else f0_autocorrelation_loss(f0_wave, midi))
        if wt.tail and final:
            terms["g_tail"] = self.tail_term(wave, real_wave)
        if wt.labels or wt.retrieval or (wt.anchor and final):
            terms.update(self._label_terms(wave, z[:b] if z is not None else None, final))
        if wt.consistency and pr is not None:
            m = pr.n_consistency
            emb = wt.teacher.embedding(torch.cat([wave[:m], wave_all[b:b + m]]), grad=True)
            terms["g_consistency"] = timbre_consistency_loss(emb[:m], emb[m:], wt.unrelated)
        if wt.increment and pr is not None:
            terms["g_increment"] = self._increment(wave, wave_all[b + pr.n_consistency:])
        return terms

    def _envelope_terms(self, logmag: torch.Tensor) -> dict[str, torch.Tensor]:
        """``g_envelope`` and ``g_profile`` of the batch's log magnitudes ``[b, 1024, 32]`` (no waveform)."""
        wt, b, terms = self.wt, int(self.pitch_index.shape[0]), {}
        if wt.envelope:
            energy = envelope_energy_db(logmag, wt.tc.envelope_bands_hz)
            terms["g_envelope"] = envelope_range_loss(energy, wt.envelope_lo, wt.envelope_hi)
            if wt.tc.envelope_match_steps or wt.tc.envelope_match_tail_steps:
                mean = (wt.envelope_mean if wt.envelope_mean is not None else envelope_steps_db(
                    envelope_energy_db(self.real[:, 0].float(), wt.tc.envelope_bands_hz)).mean(0))
                terms["g_envelope"] = terms["g_envelope"] + envelope_mean_loss(
                    energy, mean, wt.tc.envelope_match_steps, wt.tc.envelope_match_tail_steps)
        if wt.profile:
            target = (envelope_profile(self.real[:, 0].float()) if wt.tc.profile_reference == "real" else
                      wt.profile_model.predict(attribute_logits(self.conditioning[:b]).float(), self.pitch_index))
            terms["g_profile"] = envelope_profile_loss(envelope_profile(logmag), target, wt.profile_model.band)
        return terms

    def _label_terms(self, wave: torch.Tensor, z: torch.Tensor | None, final: bool) -> dict[str, torch.Tensor]:
        """``g_teacher``, ``g_retrieval`` and (last scale) ``g_anchor`` of the batch's notes ``wave [b, N]``,
        heard once through the run's random transforms; ``z [b, Z]`` their latents (``g_anchor``)."""
        wt, terms = self.wt, {}
        drawn = self.gen.get_state()  # g_anchor hears its reference through the same transforms
        heard = augment_for_teacher(wave, tuple(wt.tc.teacher_transforms), self.gen)
        logits = wt.teacher.logits(heard, grad=True).index_select(1, wt.classes)
        if wt.anchor and final:
            terms["g_anchor"] = self.anchor_term(logits, z, drawn)
        if wt.labels:
            terms["g_teacher"] = teacher_attribute_loss(logits, self.conditioning, wt.tc.temperature, wt.attr_std,
                                                        wt.tc.teacher_loss, wt.attr_weights, wt.attr_white)
        if wt.retrieval:
            pick = torch.randint(len(wt.references), (wt.tc.retrieval_negatives,), generator=self.gen,
                                 device=self.gen.device)
            terms["g_retrieval"] = teacher_retrieval_loss(logits, self.conditioning, wt.references[pick.to(logits.device)],
                                                          wt.tc.temperature, wt.retrieval_unit)
        return terms

    def anchor_term(self, logits: torch.Tensor, z: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
        """``g_anchor``: the teacher's logits of the generated notes (after the run's transforms, as
        ``g_teacher`` hears them) against its labels of the reference generator's notes for the same
        request, synthesised with the reference's own fade and heard through the same transforms
        (the random generator's state ``drawn`` before them is replayed), so the reference's own
        notes pay nothing whatever the draw and the term cannot teach a pre-emphasis against the
        transforms (ours, stop 62).

        A per-note target that the source generator has shown it can meet: where ``g_teacher``'s
        correlation over a batch of 8-16 notes says little about one attribute, this says, for each
        note and all K attributes, what the source made the teacher hear. The error is
        :func:`~darkgan.training.losses.teacher_attribute_loss`'s ``"std_mse"`` (standardised logit
        units at T, ``train.teacher_attribute_weights`` applied) with the reference's
        ``sigmoid(z_ref / T)`` as the target.

        Args:
            logits: ``[b, K]`` the teacher's logits (vocabulary columns) of the batch's generated notes.
            z: ``[b, Z]`` the batch's latents.
            drawn: the state of the step's random generator before the generated notes' transforms.

        Returns:
            scalar.
        """
        wt = self.wt
        after = self.gen.get_state()
        self.gen.set_state(drawn)
        with torch.no_grad():
            ref = magif_to_note(self.reference_magif(z), wt.anchor_generator.fade)
            ref = augment_for_teacher(ref, tuple(wt.tc.teacher_transforms), self.gen)
            target = torch.sigmoid(wt.teacher.logits(ref).index_select(1, wt.classes).float() / wt.tc.temperature)
        self.gen.set_state(after)
        return teacher_attribute_loss(logits, target, wt.tc.temperature, wt.attr_std, "std_mse", wt.attr_weights)

    def anchor_body_term(self, out: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``g_anchor_body``: the mean squared error, in the run's normalised MAG-IF units, between
        the batch's generated notes ``out [b, 2, 1024, 32]`` and the reference generator's notes for
        the same request (``z [b, Z]``, the batch's pitches and attributes), over every frame but the
        last ``train.anchor_free_frames`` (ours, stop 63).

        An end-of-note fine-tune may then change how notes end and nothing else: the body, where
        the teacher hears most of what the source taught the generator, stays the source's. Both
        channels (log magnitude and instantaneous frequency) are held, so pitch is kept too.

        Returns:
            scalar (0 for the reference's own notes).
        """
        wt = self.wt
        keep = int(out.shape[-1]) - int(wt.tc.anchor_free_frames)
        with torch.no_grad():
            ref = wt.normalizer.normalize(self.reference_magif(z))
        return (out[..., :keep].float() - ref[..., :keep]).pow(2).mean()

    def tail_term(self, wave: torch.Tensor, real_wave: torch.Tensor) -> torch.Tensor:
        """``g_tail``: the teacher hears each generated note from ``train.tail_from_s`` on alone and
        must label it as it labels the same span of the real note whose labels and pitch it was
        asked with (ours, issue 15).

        The teacher hears a struck note's Percussion in its decay as well as in its attack (its
        labels of 512 real validation notes from 0.2 s on correlate with their Percussion label at
        0.73; the whole note 0.91) while the shipped generator's tails carry little of it (0.18;
        ``benchmarks/tail_labels.py``): they said "percussive" with an onset click, which ``g_teacher`` on the whole note rewards
        and this term cannot hear. The generated tail goes through the run's random transforms
        (:func:`~darkgan.training.losses.augment_for_teacher`); the real tail is labelled clean,
        without gradients, as the data's labels are. The error is ``g_teacher``'s
        (``train.teacher_loss``, at T), with the real tail's ``sigmoid(z / T)`` as the target.

        Args:
            wave: ``[b, N]`` the batch's generated notes (16 kHz); real_wave: ``[b, N]`` its real
                notes, inverted the same way.

        Returns:
            scalar.
        """
        wt = self.wt
        start = int(round(wt.tc.tail_from_s * SAMPLE_RATE))
        with torch.no_grad():
            target = torch.sigmoid(wt.teacher.logits(real_wave[:, start:]).index_select(1, wt.classes).float()
                                   / wt.tc.temperature)
        heard = augment_for_teacher(wave[:, start:], tuple(wt.tc.teacher_transforms), self.gen)
        z = wt.teacher.logits(heard, grad=True).index_select(1, wt.classes)
        return teacher_attribute_loss(z, target, wt.tc.temperature, wt.attr_std, wt.tc.teacher_loss, wt.attr_weights,
                                      wt.attr_white)

    def _partial_target(self, size) -> torch.Tensor:
        """``[q, 2, H, W]``: ``gain * beta_i * (t - u_i)`` of each ``g_partial`` edit, average-pooled
        to the current scale's ``size = (H, W)`` (its training targets are the notes pooled alike)."""
        wt, pr = self.wt, self.partners
        beta = wt.partial_beta[pr.partial_index]
        if tuple(size) != tuple(beta.shape[-2:]):
            beta = torch.nn.functional.adaptive_avg_pool2d(beta, tuple(size))
        return wt.tc.partial_gain * pr.partial_step.to(beta)[:, None, None, None] * beta

    def _increment(self, wave: torch.Tensor, raised: torch.Tensor) -> torch.Tensor:
        """``g_increment`` of the notes ``wave[:n]`` and their partners ``raised [n, N]``, both
        heard through the same random transforms (the generator's state is replayed)."""
        wt, n = self.wt, int(raised.shape[0])
        tr, state = tuple(wt.tc.teacher_transforms), self.gen.get_state()
        base = augment_for_teacher(wave[:n], tr, self.gen)
        self.gen.set_state(state)
        up = augment_for_teacher(raised, tr, self.gen)
        z = wt.teacher.logits(torch.cat([base, up]), grad=True).index_select(1, wt.classes)
        return attribute_increment_loss(z[:n], z[n:], self.partners.attr_index, wt.tc.increment_delta,
                                        wt.tc.temperature, wt.attr_std)
